"""A hub request as the generateContent body sent upstream.

Gemini takes the model and streaming from the URL: neither is in the body.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from tollway.errors import bad_request
from tollway.protocols.gemini.fields import Json
from tollway.protocols.gemini.generation import generation_from_hub, tool_choice_from_hub

# Gemini 3 refuses a replayed function call without the thought signature it
# came with; a conversation carried through the hub has lost it, and this is
# the value Google documents for "no signature to give". Older models need none.
SKIP_SIGNATURE = "skip_thought_signature_validator"
_UNSIGNED_MODELS = re.compile(r"(models/)?gemini-(1|2)[.-]")
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)
DEFAULT_IMAGE_MIME = "image/jpeg"


def request_from_hub(hub: Json) -> Json:
    messages = hub.get("messages")
    if not isinstance(messages, list):
        raise bad_request("'messages' must be an array.", "messages")
    model = hub.get("model")
    signed = not (isinstance(model, str) and _UNSIGNED_MODELS.match(model))
    system, contents = _Contents(signed).build(messages)
    if not contents:  # Gemini refuses a request without contents
        contents, system = [{"role": "user", "parts": system}], []
    body: Json = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = _tools(hub.get("tools"))
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
        choice = tool_choice_from_hub(hub.get("tool_choice"))
        if choice is not None:
            body["toolConfig"] = choice
    config = generation_from_hub(hub)
    if config:
        body["generationConfig"] = config
    return _writable(body)


def _writable(body: Json) -> Json:
    """``body``, if a JSON writer takes it: function arguments parsed from the
    hub's strings, and schemas one level deeper than the hub's, may nest past
    the 255 levels orjson writes."""
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise bad_request("The request nests JSON too deeply to be sent to Gemini.") from None
    return body


class _Contents:
    """Hub messages as Gemini contents: consecutive turns of one role merged,
    tool results as function responses named after the call they answer."""

    def __init__(self, signed: bool) -> None:
        self.signed = signed
        self.names: dict[str, str] = {}  # tool call id -> function name
        self.system: list[Json] = []
        self.contents: list[Json] = []

    def build(self, messages: list[Any]) -> tuple[list[Json], list[Json]]:
        for i, message in enumerate(messages):
            path = f"messages[{i}]"
            if not isinstance(message, dict):
                raise bad_request(f"'{path}' must be an object.", path)
            role = message.get("role")
            content = message.get("content")
            if role in ("system", "developer"):
                self.system += _text_parts(content, f"{path}.content")
            elif role == "user":
                self._add("user", _user_parts(content, f"{path}.content"))
            elif role == "assistant":
                self._add("model", self._model_parts(message, path))
            elif role in ("tool", "function"):
                self._add("user", [self._response(message, path)])
            else:
                raise bad_request(f"'{path}.role' is not a chat role.", f"{path}.role")
        return self.system, self.contents

    def _add(self, role: str, parts: list[Json]) -> None:
        if not parts:
            return  # Gemini refuses a content without parts
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"] += parts
        else:
            self.contents.append({"role": role, "parts": parts})

    def _model_parts(self, message: Json, path: str) -> list[Json]:
        parts = [p for p in _text_parts(message.get("content"), f"{path}.content") if p["text"]]
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise bad_request(f"'{path}.tool_calls' must be an array.", f"{path}.tool_calls")
        for j, call in enumerate(calls):
            part = self._call(call, f"{path}.tool_calls[{j}]")
            if self.signed and j == 0:  # Gemini signs the first call of a turn
                part["thoughtSignature"] = SKIP_SIGNATURE
            parts.append(part)
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            parts.append(self._call({"function": legacy}, f"{path}.function_call"))
        return parts

    def _call(self, call: Any, path: str) -> Json:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str):
            raise bad_request(f"'{path}' must name a function.", path)
        call_id = call.get("id")
        self.names[call_id if isinstance(call_id, str) else name] = name
        return {"functionCall": {"name": name, "args": _arguments(function.get("arguments"), path)}}

    def _response(self, message: Json, path: str) -> Json:
        key = message.get("tool_call_id") if message.get("role") == "tool" else message.get("name")
        name = self.names.get(key) if isinstance(key, str) else None
        if name is None:
            raise bad_request(f"'{path}' answers no earlier tool call.", f"{path}.tool_call_id")
        text = "".join(part["text"] for part in _text_parts(message.get("content"), path))
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = None
        response = parsed if isinstance(parsed, dict) else {"content": text}
        return {"functionResponse": {"name": name, "response": response}}


def _arguments(arguments: Any, path: str) -> Json:
    if arguments is None or arguments == "":
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        message = f"'{path}.function.arguments' must be a JSON object in a string."
        raise bad_request(message, f"{path}.function.arguments")
    return parsed


def _text_parts(content: Any, path: str) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise bad_request(f"'{path}[{i}]' must be a text part.", path)
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise bad_request(f"'{path}[{i}].text' must be a string.", path)
            parts.append({"text": text})
        return parts
    raise bad_request(f"'{path}' must be a string or an array of parts.", path)


def _user_parts(content: Any, path: str) -> list[Json]:
    if not isinstance(content, list):
        return _text_parts(content, path)
    return [_user_part(part, f"{path}[{i}]") for i, part in enumerate(content)]


def _user_part(part: Any, path: str) -> Json:
    kind = part.get("type") if isinstance(part, dict) else None
    value = part.get(kind) if isinstance(part, dict) and isinstance(kind, str) else None
    if kind == "text" and isinstance(value, str):
        return {"text": value}
    if kind == "image_url":
        url = value.get("url") if isinstance(value, dict) else value
        if isinstance(url, str):
            return _image(url, path)
    if kind == "input_audio" and isinstance(value, dict):
        data, audio_format = value.get("data"), value.get("format")
        if isinstance(data, str) and isinstance(audio_format, str):
            return {"inlineData": {"mimeType": f"audio/{audio_format}", "data": data}}
    if kind == "file" and isinstance(value, dict):
        found = _DATA_URL.fullmatch(str(value.get("file_data")))
        if found is not None:
            return {"inlineData": {"mimeType": found[1], "data": found[2]}}
    raise bad_request(f"'{path}' is a part Gemini cannot be sent.", path)


def _image(url: str, path: str) -> Json:
    found = _DATA_URL.fullmatch(url)
    if found is not None:
        return {"inlineData": {"mimeType": found[1], "data": found[2]}}
    if not url.startswith(("https://", "http://")):
        raise bad_request(f"'{path}.image_url.url' must be an http(s) or data URL.", path)
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    mime = guessed if guessed and guessed.startswith("image/") else DEFAULT_IMAGE_MIME
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _tools(value: Any) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("'tools' must be an array.", "tools")
    declarations = []
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"'tools[{i}]' must be a function tool.", f"tools[{i}]")
        declaration: Json = {"name": function["name"]}
        if isinstance(function.get("description"), str):
            declaration["description"] = function["description"]
        if isinstance(function.get("parameters"), dict):
            # JSON Schema as given: Gemini's OpenAPI subset would refuse parts of it.
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return declarations
