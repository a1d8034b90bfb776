"""Reading a request body that is JSON or multipart/form-data (as the openai
SDK sends uploads), encoding its fields again for the upstream, and changing
one text field of a body so encoded (a channel's model name). Used by the
video, image-edit and audio endpoints.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from tollway.errors import ApiError, bad_request
from tollway.relay.inbound import read_body, read_json


@dataclass
class Form:
    """A request's fields in the order sent: a JSON object, or the parts of a
    multipart/form-data body (files kept as uploads)."""

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


async def read_form(request: Request, max_bytes: int) -> Form:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in ("", "application/json"):
        payload, _ = await read_json(request, max_bytes)
        return Form(list(payload.items()))
    if media_type != "multipart/form-data":
        raise ApiError(
            415,
            f"Send the request as application/json or multipart/form-data, not {media_type}.",
            "unsupported_media_type",
        )
    body = await read_body(request, max_bytes)

    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once()).parse()
    except MultiPartException as exc:
        raise bad_request(f"The multipart body could not be read: {exc.message}") from exc
    return Form(form.multi_items(), form)


async def encode_multipart(items: list[tuple[str, Any]]) -> tuple[bytes, str]:
    boundary = "tollway" + secrets.token_hex(16)
    out: list[bytes] = []
    for name, value in items:
        head = f"--{boundary}\r\n{_disposition(name)}"
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


def is_multipart(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "multipart/form-data"


def text_field(body: bytes, content_type: str, name: str) -> str | None:
    """The value of the text part ``name`` of a body ``encode_multipart``
    wrote (the last when it repeats, as ``Form.get`` reads), or None."""
    spans = _text_spans(body, content_type, name)
    if not spans:
        return None
    start, end = spans[-1]
    return body[start:end].decode(errors="replace")


def with_field(body: bytes, content_type: str, name: str, value: str) -> bytes:
    """``body`` (as ``encode_multipart`` wrote it) with the value of its text
    part ``name`` (each, if it repeats) replaced and every other byte kept;
    ``body`` itself when it has no such part."""
    spans = _text_spans(body, content_type, name)
    if not spans:
        return body
    out: list[bytes] = []
    kept_from = 0
    for start, end in spans:
        out += [body[kept_from:start], value.encode()]
        kept_from = end
    out.append(body[kept_from:])
    return b"".join(out)


def _text_spans(body: bytes, content_type: str, name: str) -> list[tuple[int, int]]:
    """Where the values of the text parts named ``name`` lie, in one pass:
    each delimiter is found from the one before, and a part is the one asked
    for when its headers are exactly what ``encode_multipart`` writes for a
    text part of that name (a file part's go on with its filename). A body
    not framed as ``encode_multipart`` frames one has none."""
    boundary = _boundary(content_type)
    if boundary is None or not body.startswith(b"--" + boundary + b"\r\n"):
        return []
    delimiter = b"\r\n--" + boundary
    head = _disposition(name).encode() + b"\r\n\r\n"
    spans: list[tuple[int, int]] = []
    part = len(boundary) + 4  # past the first "--boundary\r\n"
    while True:
        end = body.find(delimiter, part)
        if end < 0:
            return []
        if body.startswith(head, part):
            spans.append((part + len(head), end))
        part = end + len(delimiter) + 2
        after = body[part - 2 : part]
        if after == b"--":  # the closing delimiter
            return spans
        if after != b"\r\n":
            return []


def _boundary(content_type: str) -> bytes | None:
    for param in content_type.partition(";")[2].split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"').encode() or None
    return None


def _disposition(name: str) -> str:
    """The header that opens a part (a file's goes on with its filename)."""
    return f'Content-Disposition: form-data; name="{_quoted(name)}"'


def _quoted(text: str) -> str:
    """A name as a part header carries it: quotes and control characters
    percent-escaped (as browsers do), so the upstream can read the part."""
    return "".join(
        f"%{ord(c):02X}" if c == '"' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )
