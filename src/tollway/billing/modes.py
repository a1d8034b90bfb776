"""Which billing method a call is billed by and what each mode is.

Pure: the decision is a function of the token's mode and the model's prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.types import BillingMethod, BillingMode, Model


@dataclass(frozen=True, slots=True)
class ModeInfo:
    mode: BillingMode
    name: str
    description: str
    recommended: bool
    applicable: bool


MODE_INFO: dict[BillingMode, ModeInfo] = {
    info.mode: info
    for info in (
        ModeInfo(
            BillingMode.PAY_PER_USE_PRIORITY,
            "Pay-per-Use Priority",
            "Bills by tokens when a model supports both methods; switches to pay-per-call "
            "for models that are only sold per call. Reaches every model.",
            recommended=True,
            applicable=True,
        ),
        ModeInfo(
            BillingMode.PAY_PER_USE,
            "Pay-per-Use",
            "Charges by input and output tokens. Text and multimodal models, and token-billed "
            "image models such as gpt-image-1.",
            recommended=False,
            applicable=True,
        ),
        ModeInfo(
            BillingMode.PAY_PER_CALL,
            "Pay-per-Call",
            "A fixed charge per call, whatever the tokens. Image and video models "
            "(except gpt-image-1).",
            recommended=False,
            applicable=True,
        ),
        ModeInfo(
            BillingMode.PAY_PER_CALL_PRIORITY,
            "Pay-per-Call Priority",
            "Bills per call when a model supports both methods; switches to pay-per-use "
            "for models that are only sold by tokens. For mainly image/video use.",
            recommended=False,
            applicable=True,
        ),
        ModeInfo(
            BillingMode.HYBRID,
            "Hybrid Billing",
            "Uses each model's default method. Not applicable: billing is hard to predict; "
            "use Pay-per-Use Priority instead.",
            recommended=False,
            applicable=False,
        ),
    )
}

# The order modes are listed in everywhere: recommended first, hybrid last.
MODE_ORDER: tuple[BillingMode, ...] = tuple(MODE_INFO)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a token's mode cannot call a model, and how to fix it."""

    mode: BillingMode
    model_id: str
    model_methods: tuple[BillingMethod, ...]
    working_modes: tuple[BillingMode, ...]

    @property
    def message(self) -> str:
        methods = " and ".join(m.value for m in self.model_methods) or "no method"
        fixes = ", ".join(m.value for m in self.working_modes)
        return (
            f"This token's billing mode is {self.mode.value} ({MODE_INFO[self.mode].name}), "
            f"which cannot call model '{self.model_id}': the model is billed {methods} only. "
            f"Modes that can call it: {fixes}. Fix: edit the token's billing mode to "
            f"{BillingMode.PAY_PER_USE_PRIORITY.value} (recommended, reaches every model), "
            f"or use a token in one of those modes."
        )


def hybrid_refusal_message() -> str:
    return (
        "Billing mode 'hybrid' (Hybrid Billing) is not applicable: it makes billing hard to "
        f"predict. Use '{BillingMode.PAY_PER_USE_PRIORITY.value}' (Pay-per-Use Priority, "
        "recommended), which reaches every model."
    )


def resolve_method(mode: BillingMode, model: Model) -> BillingMethod | Refusal:
    """The method this call is billed by under ``mode``, or why it is refused."""
    method = _method_for(mode, model)
    if method is not None:
        return method
    return Refusal(mode, model.id, _ordered(model.methods), working_modes(model))


def methods_in_order(mode: BillingMode, model: Model) -> tuple[BillingMethod, ...]:
    """The methods ``mode`` may bill ``model`` by, preferred first: a priority
    mode falls back to its second method when no channel serves the first."""
    if mode is BillingMode.HYBRID:
        return (model.effective_default_method,) if model.methods else ()
    return _IN_ORDER[mode][model.per_use is not None, model.per_call is not None]


def working_modes(model: Model, allow_hybrid: bool = False) -> tuple[BillingMode, ...]:
    """The applicable modes that can call ``model`` (hybrid only when enabled)."""
    return tuple(
        mode
        for mode in MODE_ORDER
        if (allow_hybrid or mode is not BillingMode.HYBRID) and _method_for(mode, model)
    )


def can_call(mode: BillingMode, model: Model) -> bool:
    return _method_for(mode, model) is not None


# (preferred, fallback) per mode; hybrid is handled apart (the model's default).
_PREFERENCE: dict[BillingMode, tuple[BillingMethod, BillingMethod | None]] = {
    BillingMode.PAY_PER_USE: (BillingMethod.PER_USE, None),
    BillingMode.PAY_PER_CALL: (BillingMethod.PER_CALL, None),
    BillingMode.PAY_PER_USE_PRIORITY: (BillingMethod.PER_USE, BillingMethod.PER_CALL),
    BillingMode.PAY_PER_CALL_PRIORITY: (BillingMethod.PER_CALL, BillingMethod.PER_USE),
}


def _in_order(mode: BillingMode) -> dict[tuple[bool, bool], tuple[BillingMethod, ...]]:
    """For each (priced per use, priced per call): the mode's methods in order."""
    preferred, fallback = _PREFERENCE[mode]
    table = {}
    for per_use in (False, True):
        for per_call in (False, True):
            priced = {BillingMethod.PER_USE: per_use, BillingMethod.PER_CALL: per_call}
            table[per_use, per_call] = tuple(
                m for m in (preferred, fallback) if m is not None and priced[m]
            )
    return table


# Worked out once: this is on every call's path.
_IN_ORDER = {mode: _in_order(mode) for mode in _PREFERENCE}


def _method_for(mode: BillingMode, model: Model) -> BillingMethod | None:
    methods = model.methods
    if not methods:
        return None
    if mode is BillingMode.HYBRID:
        return model.effective_default_method
    preferred, fallback = _PREFERENCE[mode]
    if preferred in methods:
        return preferred
    if fallback is not None and fallback in methods:
        return fallback
    return None


def _ordered(methods: frozenset[BillingMethod]) -> tuple[BillingMethod, ...]:
    return tuple(m for m in BillingMethod if m in methods)
