"""A hub request (OpenAI chat completions) as the Messages API body sent
upstream. What OpenAI's API has and Anthropic's does not is left out; what
cannot be said to Anthropic at all is refused with a 400."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tollway.errors import bad_request

Json = dict[str, Any]

# Anthropic requires max_tokens; OpenAI does not. The relay normally sets it
# from the model's limits before this is reached.
DEFAULT_MAX_TOKENS = 4096
_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def request_from_hub(hub: Json) -> Json:
    if hub.get("n") not in (None, 1):
        raise bad_request("Anthropic models answer one choice: 'n' must be 1.", param="n")
    system, turns = _split(hub.get("messages"))
    body: Json = {"model": hub.get("model"), "max_tokens": _max_tokens(hub)}
    if system:
        body["system"] = system[0]["text"] if len(system) == 1 else system
    body["messages"] = [_compact(turn) for turn in _alternating(turns)]
    _sampling(hub, body)
    body.update(_tools(hub))
    if isinstance(hub.get("user"), str):
        body["metadata"] = {"user_id": hub["user"]}
    if hub.get("stream") is True:
        body["stream"] = True
    return _writable(body)


def _writable(body: Json) -> Json:
    """``body``, if a JSON writer takes it: tool arguments parsed from the
    hub's strings may nest past the 255 levels orjson writes."""
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise bad_request("The request nests JSON too deeply to be sent to Anthropic.") from None
    return body


def _max_tokens(hub: Json) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = hub.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return DEFAULT_MAX_TOKENS


def _sampling(hub: Json, body: Json) -> None:
    temperature = hub.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        # OpenAI's range is 0-2, Anthropic's 0-1: a hotter request than
        # Anthropic allows gets its hottest rather than a refusal.
        body["temperature"] = min(max(temperature, 0), 1)
    if _is_number(hub.get("top_p")):
        body["top_p"] = hub["top_p"]
    stop = hub.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list):
        sequences = [s for s in stop if isinstance(s, str) and s]
        if sequences:
            body["stop_sequences"] = sequences


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _split(messages: Any) -> tuple[list[Json], list[tuple[str, list[Json]]]]:
    """System text blocks, and the other messages as (role, blocks)."""
    if not isinstance(messages, list):
        raise bad_request("'messages' must be a list.", param="messages")
    system: list[Json] = []
    turns: list[tuple[str, list[Json]]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"messages[{i}].content"))
        else:
            turns.append(_turn(message, f"messages[{i}]"))
    return system, turns


def _turn(message: Json, where: str) -> tuple[str, list[Json]]:
    role = message.get("role")
    if role == "user":
        return "user", _user_blocks(message.get("content"), f"{where}.content")
    if role == "assistant":
        return "assistant", _assistant_blocks(message, where)
    if role == "tool":
        return "user", [_tool_result(message, where)]
    raise bad_request(
        f"'{where}.role' {role!r} has no Anthropic form (system, user, assistant, tool).",
        param=f"{where}.role",
    )


def _text_blocks(content: Any, where: str) -> list[Json]:
    """Text content (a string or text parts) as non-empty text blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise bad_request(f"'{where}' must be a string or a list of parts.", param=where)
    blocks = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            raise bad_request(f"'{where}[{i}]' must be a text part.", param=f"{where}[{i}]")
        value = part.get("text", part.get("refusal"))
        if isinstance(value, str) and value:
            blocks.append({"type": "text", "text": value})
    return blocks


def _user_blocks(content: Any, where: str) -> list[Json]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{where}[{i}]"))
        elif kind == "text":
            blocks.extend(_text_blocks([part], f"{where}[{i}]"))
        else:
            raise bad_request(
                f"'{where}[{i}]' is a {kind!r} part; Anthropic models take text and images.",
                param=f"{where}[{i}]",
            )
    return blocks


def _image(value: Any, where: str) -> Json:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        raise bad_request(f"'{where}.image_url.url' must be a string.", param=where)
    found = _DATA_URL.fullmatch(url)
    if found is not None:
        source = {"type": "base64", "media_type": found[1], "data": found[2]}
        return {"type": "image", "source": source}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(
        f"'{where}.image_url.url' must be an http(s) URL or a base64 data URL.", param=where
    )


def _assistant_blocks(message: Json, where: str) -> list[Json]:
    """Text, then tool calls; reasoning is not sent back (Anthropic only takes
    thinking it signed)."""
    blocks = _text_blocks(message.get("content"), f"{where}.content")
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise bad_request(f"'{where}.tool_calls' must be a list.", param=f"{where}.tool_calls")
    for i, call in enumerate(calls or ()):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{i}]"))
    return blocks


def _tool_use(call: Any, where: str) -> Json:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(call.get("id"), str):
        raise bad_request(f"'{where}' must have an id and a function.", param=where)
    name = function.get("name")
    if not isinstance(name, str):
        raise bad_request(f"'{where}.function.name' must be a string.", param=where)
    return {"type": "tool_use", "id": call["id"], "name": name, "input": _arguments(function)}


def _arguments(function: Json) -> Json:
    """A call's arguments as an object; what does not parse as one is sent as
    {} (Anthropic takes only an object, and the call already happened)."""
    try:
        parsed = orjson.loads(function.get("arguments") or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _tool_result(message: Json, where: str) -> Json:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise bad_request(f"'{where}.tool_call_id' must be a string.", param=f"{where}")
    content = message.get("content")
    result: Json = {"type": "tool_result", "tool_use_id": call_id}
    blocks = _text_blocks(content, f"{where}.content")
    if isinstance(content, str):
        result["content"] = content
    elif blocks:
        result["content"] = blocks
    return result


def _alternating(turns: list[tuple[str, list[Json]]]) -> list[Json]:
    """Consecutive turns of one role merged (Anthropic requires user and
    assistant to alternate); turns with nothing to say are left out."""
    merged: list[Json] = []
    for role, blocks in turns:
        if not blocks:
            continue
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"].extend(blocks)
        else:
            merged.append({"role": role, "content": list(blocks)})
    return merged


def _compact(message: Json) -> Json:
    """A message of one text block written as a plain string, as people write it."""
    blocks = message["content"]
    if len(blocks) == 1 and blocks[0]["type"] == "text" and set(blocks[0]) == {"type", "text"}:
        return {"role": message["role"], "content": blocks[0]["text"]}
    return message


def _tools(hub: Json) -> Json:
    body: Json = {}
    tools = hub.get("tools")
    if isinstance(tools, list) and tools:
        body["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(hub.get("tool_choice"))
    if hub.get("parallel_tool_calls") is False and (choice or body.get("tools")):
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice = {**choice, "disable_parallel_tool_use": True}
    if choice is not None:
        body["tool_choice"] = choice
    return body


def _tool(tool: Any, where: str) -> Json:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        raise bad_request(f"'{where}' must be a function tool.", param=where)
    name = function.get("name")
    if not isinstance(name, str):
        raise bad_request(f"'{where}.function.name' must be a string.", param=where)
    described: Json = {"name": name}
    if isinstance(function.get("description"), str):
        described["description"] = function["description"]
    schema = function.get("parameters")
    # Anthropic requires a schema; a function without parameters takes none.
    no_arguments = {"type": "object", "properties": {}}
    described["input_schema"] = schema if isinstance(schema, dict) else no_arguments
    return described


def _tool_choice(choice: Any) -> Json | None:
    if isinstance(choice, str):
        named = _TOOL_CHOICES.get(choice)
        return dict(named) if named is not None else None
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    return None
