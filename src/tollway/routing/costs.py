"""What a channel's upstream charges the operator for a call: by the
channel's own prices for the model, or the catalog's times its multiplier
(None when the channel records no cost)."""

from __future__ import annotations

from tollway.billing.pricing import PricingError, bill
from tollway.state import Channel
from tollway.types import BillingMethod, Model, Usage

# The call the ``cheapest`` strategy compares channels by.
REFERENCE_USAGE = Usage(input_tokens=1000, output_tokens=1000, items=1, seconds=1)


def upstream_cost(
    channel: Channel, model: Model, method: BillingMethod, usage: Usage
) -> int | None:
    """The upstream's cost of ``usage`` in nano-USD, if the channel records it."""
    if channel.cost_multiplier is None and not channel.cost_models:
        return None
    own = channel.cost_models.get(model.id)
    try:
        if own is not None:
            return bill(own, method, usage).total_nano
        if channel.cost_multiplier is not None:
            return bill(model, method, usage, channel.cost_multiplier).total_nano
    except PricingError:  # its prices lack the method (or the size) the call used
        return None
    return None


def reference_cost(channel: Channel, model: Model, method: BillingMethod) -> int | None:
    return upstream_cost(channel, model, method, REFERENCE_USAGE)
