"""An inbound generateContent body as a hub (OpenAI chat completions) request.

The model and streaming are in Gemini's URL, not its body: the caller sets
``hub["model"]`` and ``hub["stream"]``.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from typing import Any

import orjson

from tollway.errors import bad_request
from tollway.protocols.gemini.fields import (
    Json,
    get,
    has,
    join,
    need_bool,
    need_list,
    need_name,
    need_object,
    need_str,
)
from tollway.protocols.gemini.generation import generation_to_hub, tool_choice_to_hub
from tollway.protocols.gemini.schemas import json_schema

MAX_CONTENTS = 10_000
MAX_PARTS = 10_000
MAX_TOOLS = 128  # function declarations, as Gemini (and OpenAI) allow
# A part is one of these (a proto oneof); the gateway translates the first five.
PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def request_to_hub(payload: Any) -> Json:
    """A generateContent body as a hub request; a 400 naming the field when it
    is not one (or asks for what the hub cannot carry)."""
    body = need_object(payload, "body")
    messages: list[Json] = []
    system = get(body, "systemInstruction")
    if system is not None:
        messages.append(_system_message(system))
    contents = get(body, "contents")
    if contents is None:
        raise bad_request("'contents' is required.", "contents")
    messages += _Conversation().messages(need_list(contents, "contents", MAX_CONTENTS))
    hub: Json = {"messages": messages}
    tools = _tools(get(body, "tools"))
    config = get(body, "toolConfig")
    if tools:
        hub["tools"] = tools
    if config is not None:
        hub.update(tool_choice_to_hub(config, tools))
    generation = get(body, "generationConfig")
    if generation is not None:
        hub.update(generation_to_hub(generation))
    return hub


def _system_message(system: Any) -> Json:
    content = need_object(system, "systemInstruction")
    given = get(content, "parts", "systemInstruction")
    parts = need_list(given, "systemInstruction.parts", MAX_PARTS)
    texts = []
    for i, part in enumerate(parts):
        path = f"systemInstruction.parts[{i}]"
        if _kind(part, path) != "text":
            raise bad_request(f"'{path}' must be a text part.", path)
        texts.append(need_str(part["text"], f"{path}.text"))
    if len(texts) == 1:
        return {"role": "system", "content": texts[0]}
    return {"role": "system", "content": [{"type": "text", "text": text} for text in texts]}


def _kind(part: Any, path: str) -> str:
    """Which data a part carries (exactly one of ``PART_DATA``)."""
    need_object(part, path)
    kinds = [name for name in PART_DATA if has(part, name)]
    if len(kinds) != 1:
        named = ", ".join(PART_DATA[:5])
        how = "no data" if not kinds else f"more than one of {', '.join(kinds)}"
        raise bad_request(f"'{path}' has {how}: a part holds one of {named}.", path)
    if kinds[0] not in PART_DATA[:5]:
        raise bad_request(f"'{join(path, kinds[0])}' parts are not supported here.", path)
    thought = get(part, "thought", path)
    if thought is not None and need_bool(thought, join(path, "thought")) and kinds[0] != "text":
        raise bad_request(f"'{path}' is a thought but holds no text.", path)
    return kinds[0]


class _Conversation:
    """Gemini contents in order, as hub messages: function calls get ids, and
    each function response the id of the earliest unanswered call of its name."""

    def __init__(self) -> None:
        self.calls = 0
        self.ids: set[str] = set()
        self.pending: defaultdict[str, deque[str]] = defaultdict(deque)

    def messages(self, contents: list[Any]) -> list[Json]:
        messages: list[Json] = []
        for i, content in enumerate(contents):
            path = f"contents[{i}]"
            need_object(content, path)
            role = get(content, "role", path)
            parts = need_list(get(content, "parts", path), join(path, "parts"), MAX_PARTS)
            if role == "model":
                messages.append(self._assistant(parts, path))
            elif role in (None, "user", "function"):
                messages += self._user(parts, path)
            else:
                raise bad_request(f"'{path}.role' must be 'user' or 'model'.", join(path, "role"))
        return messages

    def _assistant(self, parts: list[Any], path: str) -> Json:
        texts: list[str] = []
        calls: list[Json] = []
        for j, part in enumerate(parts):
            where = f"{path}.parts[{j}]"
            kind = _kind(part, where)
            if kind == "functionCall":
                calls.append(self._call(get(part, kind), join(where, kind)))
            elif kind != "text":
                raise bad_request(f"'{where}': model contents hold text and function calls.", where)
            elif not get(part, "thought", where):  # thoughts are the model's, not the prompt's
                texts.append(need_str(part["text"], join(where, "text")))
        text = "".join(texts) if texts or not calls else None
        message: Json = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        return message

    def _call(self, call: Any, path: str) -> Json:
        need_object(call, path)
        name = need_name(get(call, "name"), join(path, "name"))
        args = get(call, "args")
        arguments = _json_text({} if args is None else need_object(args, join(path, "args")), path)
        given = get(call, "id")
        call_id = need_str(given, join(path, "id"), nonempty=True) if given is not None else None
        call_id = call_id or f"call_{self.calls}"
        self.calls += 1
        self.ids.add(call_id)
        self.pending[name].append(call_id)
        function = {"name": name, "arguments": arguments}
        return {"id": call_id, "type": "function", "function": function}

    def _user(self, parts: list[Any], path: str) -> list[Json]:
        """Tool results first (they answer the calls just made), then the rest."""
        results: list[Json] = []
        content: list[Json] = []
        for j, part in enumerate(parts):
            where = f"{path}.parts[{j}]"
            kind = _kind(part, where)
            if kind == "functionResponse":
                results.append(self._result(get(part, kind), join(where, kind)))
            elif kind == "functionCall":
                raise bad_request(f"'{where}': function calls belong in model contents.", where)
            elif not (kind == "text" and get(part, "thought", where)):
                content.append(_user_part(kind, get(part, kind), join(where, kind)))
        if not content:
            return results
        if len(content) == 1 and content[0]["type"] == "text":
            return [*results, {"role": "user", "content": content[0]["text"]}]
        return [*results, {"role": "user", "content": content}]

    def _result(self, result: Any, path: str) -> Json:
        need_object(result, path)
        name = need_name(get(result, "name"), join(path, "name"))
        response = need_object(get(result, "response"), join(path, "response"))
        given = get(result, "id")
        call_id = need_str(given, join(path, "id")) if given is not None else None
        waiting = self.pending[name]
        if call_id in self.ids:
            if call_id in waiting:
                waiting.remove(call_id)
        elif waiting:
            call_id = waiting.popleft()
        else:
            message = f"'{path}' answers no earlier functionCall named '{name}'."
            raise bad_request(message, join(path, "name"))
        return {"role": "tool", "tool_call_id": call_id, "content": _json_text(response, path)}


def _user_part(kind: str, data: Any, path: str) -> Json:
    if kind == "text":
        return {"type": "text", "text": need_str(data, path)}
    need_object(data, path)
    mime = get(data, "mimeType", path)
    mime_path = join(path, "mimeType")
    if kind == "inlineData":
        _need_image(need_str(mime, mime_path), mime_path)
        encoded = need_str(get(data, "data"), join(path, "data"))
        if _BASE64.fullmatch(encoded) is None:
            raise bad_request(f"'{path}.data' must be base64.", join(path, "data"))
        url = f"data:{mime};base64,{encoded.replace('-', '+').replace('_', '/')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if mime is not None:
        _need_image(need_str(mime, mime_path), mime_path)
    uri = need_str(get(data, "fileUri", path), join(path, "fileUri"))
    if not uri.startswith(("https://", "http://")):
        raise bad_request(f"'{path}.fileUri' must be an http(s) URL.", join(path, "fileUri"))
    return {"type": "image_url", "image_url": {"url": uri}}


def _need_image(mime: str, path: str) -> None:
    if not mime.startswith("image/"):
        message = f"'{path}' is '{mime[:80]}': only images (image/*) are supported here."
        raise bad_request(message, path)


def _json_text(value: Json, path: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson's JSONEncodeError: nested too deep
        raise bad_request(f"'{path}' is nested too deeply.", path) from None


def _tools(value: Any) -> list[Json]:
    if value is None:
        return []
    tools: list[Json] = []
    for i, tool in enumerate(need_list(value, "tools", MAX_TOOLS, nonempty=False)):
        path = f"tools[{i}]"
        need_object(tool, path)
        for key in tool:
            if key not in ("functionDeclarations", "function_declarations"):
                message = f"'{path}.{key}' is not supported: only functionDeclarations."
                raise bad_request(message, path)
        declared = get(tool, "functionDeclarations", path)
        where = join(path, "functionDeclarations")
        for j, declaration in enumerate(need_list(declared, where, MAX_TOOLS, nonempty=False)):
            tools.append(_function(declaration, f"{where}[{j}]"))
    names = [tool["function"]["name"] for tool in tools]
    if len(tools) > MAX_TOOLS or len(set(names)) != len(names):
        raise bad_request(f"'tools' must declare at most {MAX_TOOLS} distinct functions.", "tools")
    return tools


def _function(declaration: Any, path: str) -> Json:
    need_object(declaration, path)
    function: Json = {"name": need_name(get(declaration, "name"), join(path, "name"))}
    description = get(declaration, "description", path)
    if description is not None:
        function["description"] = need_str(description, join(path, "description"))
    schema = get(declaration, "parameters", path)
    raw = get(declaration, "parametersJsonSchema", path)
    if schema is not None and raw is not None:
        message = f"'{path}' gives both parameters and parametersJsonSchema."
        raise bad_request(message, join(path, "parameters"))
    if schema is not None:
        function["parameters"] = json_schema(schema, join(path, "parameters"))
    elif raw is not None:
        function["parameters"] = need_object(raw, join(path, "parametersJsonSchema"))
    return {"type": "function", "function": function}
