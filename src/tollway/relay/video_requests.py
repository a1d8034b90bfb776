"""What a video request asks for, checked before anything is held: the
create body (JSON, or multipart/form-data as the openai SDK sends it) and
its re-encoding for the upstream, the model, the billing method, and the
seconds and size each video model makes.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from tollway.billing.holds import parse_size
from tollway.billing.pricing import PricingError, UnpricedVariant, price_call
from tollway.errors import ApiError, bad_request, forbidden
from tollway.gateway import Gateway
from tollway.relay.call import decide, read_body, read_json, resolve_model
from tollway.relay.endpoints import VIDEOS, MeteredEndpoint, check_quoted
from tollway.state import TokenInfo
from tollway.types import BillingMethod, Model, Usage, parse_count
from tollway.video_jobs import video_usage

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
    # the guide's reseller product: one price for its 10-second video
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


# --- reading a create request -------------------------------------------------


@dataclass
class VideoForm:
    """A create request's fields in the order sent: a JSON object, or the parts
    of a multipart/form-data body (files kept as uploads)."""

    items: list[tuple[str, Any]]
    form: FormData | None = None

    def get(self, name: str) -> Any:
        found = None
        for key, value in self.items:
            if key == name:
                found = value
        return found

    async def encode(self, overrides: dict[str, str]) -> tuple[bytes, str]:
        """The body to send upstream, in the client's encoding, with ``overrides``."""
        if self.form is None:
            return orjson.dumps({**dict(self.items), **overrides}), "application/json"
        kept = [(k, v) for k, v in self.items if k not in overrides]
        return await encode_multipart([*kept, *overrides.items()])

    async def close(self) -> None:
        if self.form is not None:
            await self.form.close()


async def read_video_form(request: Request, max_bytes: int) -> VideoForm:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in ("", "application/json"):
        payload, _ = await read_json(request, max_bytes)
        return VideoForm(list(payload.items()))
    if media_type != "multipart/form-data":
        raise ApiError(
            415,
            f"Send the video request as application/json or multipart/form-data, not {media_type}.",
            "unsupported_media_type",
        )
    body = await read_body(request, max_bytes)

    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once()).parse()
    except MultiPartException as exc:
        raise bad_request(f"The multipart body could not be read: {exc.message}") from exc
    return VideoForm(form.multi_items(), form)


async def encode_multipart(items: list[tuple[str, Any]]) -> tuple[bytes, str]:
    boundary = "tollway" + secrets.token_hex(16)
    out: list[bytes] = []
    for name, value in items:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
        if isinstance(value, UploadFile):
            await value.seek(0)
            data = await value.read()
            kind = value.content_type or "application/octet-stream"
            head += f'; filename="{_quoted(value.filename or name)}"\r\nContent-Type: {kind}'
        else:
            data = str(value).encode()
        out += [head.encode(), b"\r\n\r\n", data, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _quoted(text: str) -> str:
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def text_field(form: VideoForm, name: str) -> str | int | None:
    value = form.get(name)
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


def video_model(
    gw: Gateway, token: TokenInfo, name: Any, endpoint: MeteredEndpoint = VIDEOS
) -> Model:
    if name is not None and not isinstance(name, str):
        raise bad_request("'model' must be a string.", param="model")
    return resolve_model(gw, token, {"model": name or DEFAULT_MODEL}, endpoint)


def video_method(token: TokenInfo, model: Model) -> BillingMethod:
    method = decide(token, model)
    if method is BillingMethod.PER_USE:
        raise forbidden(
            f"This token's billing mode ({token.billing_mode.value}) bills model '{model.id}' "
            "per_use, but a video reports no tokens to bill. Fix: use a token in "
            "pay_per_call or pay_per_call_priority mode for this model.",
            "billing_mode_mismatch",
        )
    return method


def hold_for(model: Model, method: BillingMethod, seconds: int, size: str) -> int:
    """The video's price for the seconds asked: what is held, and at most charged."""
    try:
        return price_call(model, method, video_usage(seconds, size)).total_nano
    except UnpricedVariant as exc:
        sizes = ", ".join(dict.fromkeys(key.partition("/")[0] for key in exc.priced))
        raise bad_request(
            f"Model '{model.id}' has no price for size {size}. It is priced for: {sizes}.",
            param="size",
        ) from None
    except PricingError as exc:
        raise bad_request(str(exc), param="model") from None


def video_request_usage(model: Model, payload: Mapping[str, Any]) -> Usage:
    """What a create body would be priced by (a quote): its seconds and size,
    the model's defaults filled in; a 400 ApiError for values it refuses."""
    check_quoted(model, payload)  # the refusal the call itself would get
    form = VideoForm(list(payload.items()))
    seconds = seconds_of(model, text_field(form, "seconds"))
    return video_usage(seconds, size_of(model, text_field(form, "size")))
