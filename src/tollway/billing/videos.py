"""What billing reads of a video request: the seconds and size a video
model makes (checked before anything is held; a request naming none gets the
model's defaults, and the gateway always tells the upstream, so it bills
what is made), and the usage a video is priced by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tollway.billing.holds import parse_size
from tollway.billing.shapes import CallShape, VideoShape
from tollway.errors import bad_request
from tollway.types import Model, Usage, parse_count

DEFAULT_MODEL = "sora-2"  # OpenAI's default when a request names none


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """The durations and sizes a video model makes, and what a request naming
    none gets (the gateway always tells the upstream, so it bills what is made)."""

    seconds: tuple[int, ...]
    default_seconds: int
    sizes: tuple[str, ...] | None  # None: any WIDTHxHEIGHT
    default_size: str


SORA_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
VEO_SIZES = ("1280x720", "720x1280", "1920x1080", "1080x1920")
# By model id prefix, first match. (Capabilities, not prices: the catalog's
# schema has no place for them yet. A size that is allowed here but missing
# from a model's per-size price table is still refused, by the table.)
MODEL_OPTIONS: tuple[tuple[str, VideoOptions], ...] = (
    # a reseller's per-video product (the billing-modes guide's example): one
    # price for its 10-second video
    ("sora_video2", VideoOptions((10,), 10, None, "720x1280")),
    ("sora-2", VideoOptions((4, 8, 12), 4, SORA_SIZES, "720x1280")),
    ("veo-2", VideoOptions((5, 6, 7, 8), 8, VEO_SIZES[:2], "1280x720")),
    ("veo-", VideoOptions((4, 6, 8), 8, VEO_SIZES, "1280x720")),
)
OTHER_VIDEO_MODELS = VideoOptions(tuple(range(1, 61)), 4, None, "1280x720")


def video_options(model: Model) -> VideoOptions:
    for prefix, options in MODEL_OPTIONS:
        if model.id.startswith(prefix):
            return options
    return OTHER_VIDEO_MODELS


def text_field(fields: Mapping[str, Any], name: str) -> str | int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad_request(f"'{name}' must be a string.", param=name)
    return value


def prompt_of(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("'prompt' must be a non-empty string.", param="prompt")
    return value


def seconds_of(model: Model, raw: str | int | None) -> int:
    options = video_options(model)
    if raw is None:
        return options.default_seconds
    text = str(raw).strip()
    if parse_count(text) in options.seconds:
        return int(text)
    raise bad_request(
        f"Model '{model.id}' makes videos of {_choices(options.seconds)} seconds, not {raw!r}. "
        f"Leave 'seconds' out for {options.default_seconds}.",
        param="seconds",
    )


def _choices(seconds: tuple[int, ...]) -> str:
    if len(seconds) > 6 and seconds == tuple(range(seconds[0], seconds[-1] + 1)):
        return f"{seconds[0]} to {seconds[-1]}"
    quoted = [f"'{s}'" for s in seconds]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def size_of(model: Model, raw: str | int | None) -> str:
    options = video_options(model)
    if raw is None:
        return options.default_size
    if isinstance(raw, str) and parse_size(raw) and (options.sizes is None or raw in options.sizes):
        return raw
    allowed = ", ".join(options.sizes) if options.sizes else "WIDTHxHEIGHT, e.g. 1280x720"
    raise bad_request(
        f"Model '{model.id}' makes videos of size {allowed}; not {raw!r}.", param="size"
    )


def video_shape(model: Model, fields: Mapping[str, Any]) -> CallShape:
    """A create request's seconds and size (the model's defaults filled in);
    a 400 for values the model does not make."""
    seconds = seconds_of(model, text_field(fields, "seconds"))
    size = size_of(model, text_field(fields, "size"))
    return CallShape(body_bytes=0, video=VideoShape(seconds, size))


def video_usage(seconds: int, size: str, items: int = 1) -> Usage:
    """What a video is priced by: one item of ``seconds``, at its size's entry
    of a per-size price table (videos have no quality tier: the table's own
    default fills it in)."""
    return Usage(items=items, seconds=seconds, variant=f"{size}/")  # as hold_usage
