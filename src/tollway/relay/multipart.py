"""Reading a request body that is JSON or multipart/form-data (as the openai
SDK sends uploads), and encoding its fields again for the upstream. Used by
the video, image-edit and audio endpoints.
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
    """A name as a part header carries it: quotes and control characters
    percent-escaped (as browsers do), so the upstream can read the part."""
    return "".join(
        f"%{ord(c):02X}" if c == '"' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )
