"""Every cell of SPEC §2's decision table, and the refusal it gives."""

import pytest

from tollway.billing.modes import (
    MODE_INFO,
    MODE_ORDER,
    Refusal,
    can_call,
    resolve_method,
    working_modes,
)
from tollway.types import BillingMethod, BillingMode, Model, ModelKind, PerCallPrice, PerUsePrice

USE, CALL = BillingMethod.PER_USE, BillingMethod.PER_CALL
PU = PerUsePrice(input_mtok=5_000_000_000, output_mtok=15_000_000_000)
PC = PerCallPrice(price_nano=50_000_000)

USE_ONLY = Model("gpt-4o", ModelKind.MULTIMODAL, "openai", per_use=PU)
CALL_ONLY = Model("flux-1.1-pro", ModelKind.IMAGE, "bfl", per_call=PC)
BOTH_DEFAULT_CALL = Model(
    "both-call", ModelKind.IMAGE, "google", per_use=PU, per_call=PC, default_method=CALL
)
BOTH_DEFAULT_USE = Model(
    "both-use", ModelKind.TEXT, "deepseek", per_use=PU, per_call=PC, default_method=USE
)
REFUSED = None

# mode -> (per_use only, per_call only, both with default per_call)
TABLE = {
    BillingMode.PAY_PER_USE: (USE, REFUSED, USE),
    BillingMode.PAY_PER_CALL: (REFUSED, CALL, CALL),
    BillingMode.PAY_PER_USE_PRIORITY: (USE, CALL, USE),
    BillingMode.PAY_PER_CALL_PRIORITY: (USE, CALL, CALL),
    BillingMode.HYBRID: (USE, CALL, CALL),  # the model's default method
}
CELLS = [
    (mode, model, expected)
    for mode, row in TABLE.items()
    for model, expected in zip((USE_ONLY, CALL_ONLY, BOTH_DEFAULT_CALL), row, strict=True)
]


@pytest.mark.parametrize(("mode", "model", "expected"), CELLS)
def test_decision_table(mode: BillingMode, model: Model, expected: BillingMethod | None) -> None:
    got = resolve_method(mode, model)
    if expected is REFUSED:
        assert isinstance(got, Refusal)
        assert not can_call(mode, model)
    else:
        assert got is expected
        assert can_call(mode, model)


def test_hybrid_follows_each_models_default() -> None:
    assert resolve_method(BillingMode.HYBRID, BOTH_DEFAULT_USE) is USE
    assert resolve_method(BillingMode.HYBRID, BOTH_DEFAULT_CALL) is CALL


def test_refusal_names_mode_methods_and_fix() -> None:
    refusal = resolve_method(BillingMode.PAY_PER_CALL, USE_ONLY)
    assert isinstance(refusal, Refusal)
    assert refusal.working_modes == (
        BillingMode.PAY_PER_USE_PRIORITY,
        BillingMode.PAY_PER_USE,
        BillingMode.PAY_PER_CALL_PRIORITY,
    )
    msg = refusal.message
    assert "pay_per_call (Pay-per-Call)" in msg
    assert "'gpt-4o'" in msg and "billed per_use only" in msg
    assert "edit the token's billing mode to pay_per_use_priority" in msg


def test_refusal_for_per_call_model_under_pay_per_use() -> None:
    refusal = resolve_method(BillingMode.PAY_PER_USE, CALL_ONLY)
    assert isinstance(refusal, Refusal)
    assert BillingMode.PAY_PER_CALL in refusal.working_modes
    assert BillingMode.PAY_PER_USE not in refusal.working_modes
    assert "billed per_call only" in refusal.message


def test_working_modes_include_hybrid_only_when_enabled() -> None:
    assert BillingMode.HYBRID not in working_modes(USE_ONLY)
    assert BillingMode.HYBRID in working_modes(USE_ONLY, allow_hybrid=True)


def test_a_model_without_prices_is_callable_by_no_mode() -> None:
    bare = Model("bare", ModelKind.TEXT, "x")
    assert all(not can_call(mode, bare) for mode in BillingMode)


def test_mode_info_lists_all_five_with_the_guides_names() -> None:
    assert set(MODE_ORDER) == set(BillingMode)
    assert MODE_ORDER[0] is BillingMode.PAY_PER_USE_PRIORITY
    assert MODE_INFO[BillingMode.PAY_PER_USE_PRIORITY].recommended
    assert [m for m in MODE_ORDER if MODE_INFO[m].recommended] == [BillingMode.PAY_PER_USE_PRIORITY]
    assert not MODE_INFO[BillingMode.HYBRID].applicable
    assert MODE_INFO[BillingMode.PAY_PER_CALL_PRIORITY].name == "Pay-per-Call Priority"
