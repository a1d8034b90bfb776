"""An inbound Messages API request, checked field by field and read as a hub
request (OpenAI chat completions). The client's payload is never changed.

What only Anthropic can carry (documents, Anthropic's own tools) is checked
and read for billing, not translated: native.py."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import bad_request
from tollway.protocols.anthropic.checks import (
    flag,
    fraction,
    items,
    obj,
    require,
    text,
    whole,
)
from tollway.protocols.anthropic.native import (
    DOCUMENT,
    SERVER_BLOCKS,
    check_anthropic_tool,
    document_parts,
    is_custom,
)

Json = dict[str, Any]

# The most max_tokens may ask for: far past any model's limit, and small
# enough for every later sum (a hold, a database column) to stay in 32 bits.
MAX_TOKENS_CEILING = 2**31 - 1
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
USER_BLOCKS = ("text", "image", DOCUMENT, "tool_result")
ASSISTANT_BLOCKS = ("text", "tool_use", "thinking", "redacted_thinking", *SERVER_BLOCKS)
RESULT_BLOCKS = ("text", "image", DOCUMENT)
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def request_to_hub(payload: Any) -> Json:
    """A ``/v1/messages`` body as a hub request; ApiError (400) when invalid."""
    body = obj(payload, "body")
    hub: Json = {"model": text(body.get("model"), "model", empty=False)}
    hub["messages"] = _system(body.get("system")) + _messages(body.get("messages"))
    hub["max_tokens"] = whole(body.get("max_tokens"), "max_tokens", 1, MAX_TOKENS_CEILING)
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            hub[field] = fraction(body[field], field)
    if body.get("top_k") is not None:
        # Checked as Anthropic would; OpenAI's API has no top_k to carry it.
        whole(body["top_k"], "top_k", 0, MAX_TOKENS_CEILING)
    if body.get("stop_sequences") is not None:
        hub["stop"] = _stop_sequences(body["stop_sequences"])
    if body.get("stream") is not None:
        hub["stream"] = flag(body["stream"], "stream")
    _thinking(body.get("thinking"))
    hub.update(_tools(body.get("tools"), body.get("tool_choice")))
    user = _user(body.get("metadata"))
    if user is not None:
        hub["user"] = user
    return hub


def _system(value: Any) -> list[Json]:
    """The top-level system prompt as the hub's first message (none when empty)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}]
    blocks = items(value, "system")
    parts = []
    for i, block in enumerate(blocks):
        where = f"system[{i}]"
        require(
            isinstance(block, dict) and block.get("type") == "text",
            f"'{where}' must be a text block.",
            where,
        )
        parts.append({"type": "text", "text": text(block.get("text"), f"{where}.text")})
    return [{"role": "system", "content": parts}] if parts else []


def _messages(value: Any) -> list[Json]:
    messages = items(value, "messages", empty=False)
    hub: list[Json] = []
    for i, message in enumerate(messages):
        hub.extend(_message(message, f"messages[{i}]"))
    return hub


def _message(value: Any, where: str) -> list[Json]:
    message = obj(value, where)
    role = message.get("role")
    require(role in ("user", "assistant"), f"'{where}.role' must be user or assistant.", where)
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = items(content, f"{where}.content", empty=False)
    if role == "user":
        return _user_turn(blocks, f"{where}.content")
    return [_assistant_turn(blocks, f"{where}.content")]


def _block(value: Any, where: str, allowed: tuple[str, ...]) -> Json:
    block = obj(value, where)
    kind = block.get("type")
    require(
        isinstance(kind, str) and kind in allowed,
        f"'{where}' has type {kind!r}; this message takes {', '.join(allowed)} blocks.",
        f"{where}.type",
    )
    return block


def _user_turn(blocks: list[Any], where: str) -> list[Json]:
    """A user message's blocks in order: tool results become tool messages,
    the blocks between them user messages of their own. OpenAI's tool
    messages carry text only, so a result's images follow the results in a
    user message (after all of them: tool messages must follow their call)."""
    turn: list[Json] = []
    parts: list[Json] = []
    shown: list[Json] = []  # images from tool results
    for i, value in enumerate(blocks):
        block = _block(value, f"{where}[{i}]", USER_BLOCKS)
        if block["type"] != "tool_result":
            parts.extend(_parts(block, f"{where}[{i}]"))
            continue
        if parts:
            turn.append({"role": "user", "content": parts})
            parts = []
        result, images = _tool_result(block, f"{where}[{i}]")
        turn.append(result)
        shown.extend(images)
    if shown or parts:
        turn.append({"role": "user", "content": shown + parts})
    return turn


def _parts(block: Json, where: str) -> list[Json]:
    """A text, image or document block as hub content parts."""
    if block["type"] == DOCUMENT:
        return document_parts(block, where)
    return [_part(block, where)]


def _part(block: Json, where: str) -> Json:
    """A text or image block as a hub content part."""
    if block["type"] == "text":
        return {"type": "text", "text": text(block.get("text"), f"{where}.text")}
    return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), where)}}


def _image_url(value: Any, where: str) -> str:
    source = obj(value, f"{where}.source")
    kind = source.get("type")
    if kind == "url":
        url = text(source.get("url"), f"{where}.source.url")
        require(
            url.startswith(("https://", "http://")),
            f"'{where}.source.url' must be an http(s) URL.",
            f"{where}.source.url",
        )
        return url
    require(kind == "base64", f"'{where}.source.type' must be base64 or url.", f"{where}.source")
    media = source.get("media_type")
    require(
        isinstance(media, str) and media in IMAGE_MEDIA_TYPES,
        f"'{where}.source.media_type' must be one of {', '.join(sorted(IMAGE_MEDIA_TYPES))}.",
        f"{where}.source.media_type",
    )
    data = text(source.get("data"), f"{where}.source.data", empty=False)
    return f"data:{media};base64,{data}"


def _tool_result(block: Json, where: str) -> tuple[Json, list[Json]]:
    """The tool message, and the images the result showed."""
    call_id = text(block.get("tool_use_id"), f"{where}.tool_use_id", empty=False)
    if block.get("is_error") is not None:
        flag(block["is_error"], f"{where}.is_error")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return {"role": "tool", "tool_call_id": call_id, "content": content or ""}, []
    texts: list[Json] = []
    images: list[Json] = []
    for i, value in enumerate(items(content, f"{where}.content")):
        inner = _block(value, f"{where}.content[{i}]", RESULT_BLOCKS)
        for part in _parts(inner, f"{where}.content[{i}]"):
            (texts if part["type"] == "text" else images).append(part)
    return {"role": "tool", "tool_call_id": call_id, "content": texts or ""}, images


def _assistant_turn(blocks: list[Any], where: str) -> Json:
    """Text joined, tool_use as tool calls; thinking and server tool blocks
    are dropped (the hub has no place for them, and only Anthropic could
    check a thinking block's signature)."""
    texts: list[str] = []
    calls: list[Json] = []
    for i, value in enumerate(blocks):
        block = _block(value, f"{where}[{i}]", ASSISTANT_BLOCKS)
        if block["type"] == "text":
            texts.append(text(block.get("text"), f"{where}[{i}].text"))
        elif block["type"] == "tool_use":
            calls.append(_tool_call(block, f"{where}[{i}]"))
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: Json, where: str) -> Json:
    call_id = text(block.get("id"), f"{where}.id", empty=False)
    name = text(block.get("name"), f"{where}.name", empty=False)
    arguments = obj(block.get("input"), f"{where}.input")
    try:
        encoded = orjson.dumps(arguments).decode()
    except orjson.JSONEncodeError:
        # Nesting deeper than JSON encoders take, or integers past 64 bits.
        raise bad_request(f"'{where}.input' cannot be written as JSON.", f"{where}.input") from None
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}


def _stop_sequences(value: Any) -> list[str]:
    sequences = items(value, "stop_sequences")
    return [text(s, f"stop_sequences[{i}]", empty=False) for i, s in enumerate(sequences)]


def _thinking(value: Any) -> None:
    """Checked as Anthropic would; the hub (OpenAI) has no thinking budget."""
    if value is None:
        return
    thinking = obj(value, "thinking")
    kind = thinking.get("type")
    require(kind in ("enabled", "disabled", "adaptive"), "Unknown 'thinking.type'.", "thinking")
    if kind == "enabled":
        whole(thinking.get("budget_tokens"), "thinking.budget_tokens", 1024, MAX_TOKENS_CEILING)


def _user(value: Any) -> str | None:
    if value is None:
        return None
    user = obj(value, "metadata").get("user_id")
    return None if user is None else text(user, "metadata.user_id")


def _tools(tools: Any, choice: Any) -> Json:
    hub: Json = {}
    if tools is not None:
        read = [_tool(t, f"tools[{i}]") for i, t in enumerate(items(tools, "tools"))]
        if any(tool is not None for tool in read):
            hub["tools"] = [tool for tool in read if tool is not None]
    if choice is not None:
        hub.update(_tool_choice(obj(choice, "tool_choice")))
    return hub


def _tool(value: Any, where: str) -> Json | None:
    """A custom tool as a hub function; one of Anthropic's own tools is
    checked and left out (None)."""
    tool = obj(value, where)
    if not is_custom(tool):
        check_anthropic_tool(tool, where)
        return None
    function: Json = {"name": text(tool.get("name"), f"{where}.name", empty=False)}
    if tool.get("description") is not None:
        function["description"] = text(tool["description"], f"{where}.description")
    function["parameters"] = obj(tool.get("input_schema"), f"{where}.input_schema")
    return {"type": "function", "function": function}


def _tool_choice(choice: Json) -> Json:
    kind = choice.get("type")
    require(
        kind in ("auto", "any", "tool", "none"),
        "'tool_choice.type' must be auto, any, tool or none.",
        "tool_choice.type",
    )
    hub: Json = {}
    if kind == "tool":
        name = text(choice.get("name"), "tool_choice.name", empty=False)
        hub["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        hub["tool_choice"] = TOOL_CHOICES[str(kind)]
    serial = choice.get("disable_parallel_tool_use")
    if serial is not None and flag(serial, "tool_choice.disable_parallel_tool_use"):
        hub["parallel_tool_calls"] = False
    return hub
