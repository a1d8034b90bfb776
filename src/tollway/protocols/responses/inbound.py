"""A Responses API request (``POST /v1/responses``) as a hub request.

Every field the gateway reads has a type and a range, checked first (in
``checks``: a 400 in OpenAI's shape otherwise). What chat completions can say
is translated: ``instructions`` and ``input`` items become ``messages``, flat
function tools become chat's nested ones, ``max_output_tokens`` becomes
``max_tokens``, ``reasoning.effort`` ``reasoning_effort`` and ``text.format``
``response_format``. What only a Responses upstream can carry (hosted tools
such as ``web_search``, item references, computer calls ...) is left out of
the hub and named by ``native_only``: such a request can go to an OpenAI
channel as it came, and nowhere else.
"""

from __future__ import annotations

from typing import Any

from tollway.errors import bad_request
from tollway.protocols.responses.checks import ROLES, check_fields

Json = dict[str, Any]

# Items chat completions has no words for: a Responses upstream takes them as they are.
TRANSLATED_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})


def request_to_hub(payload: Json) -> Json:
    """The hub request for a Responses body (a 400 for a field out of type or range)."""
    check_fields(payload)
    messages: list[Json] = []
    instructions = payload.get("instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(messages_of(payload.get("input")))
    if not messages:
        raise bad_request("'input' must be a non-empty string or array of items.", param="input")
    if all(message["role"] == "system" for message in messages):
        messages.append({"role": "user", "content": ""})  # only untranslated items: never sent
    hub: Json = {"model": payload.get("model"), "messages": messages}
    if payload.get("stream") is True:
        hub["stream"] = True
        hub["stream_options"] = {"include_usage": True}
    _copy_options(payload, hub)
    tools = [_tool(tool) for tool in payload.get("tools") or () if tool.get("type") == "function"]
    if tools:
        hub["tools"] = tools
        choice = _tool_choice(payload.get("tool_choice"))
        if choice is not None:
            hub["tool_choice"] = choice
    return hub


def sent_natively(payload: Json) -> Json:
    """The body an upstream that speaks Responses is sent: the client's, with
    nothing stored there (the gateway stores responses itself)."""
    return {**payload, "store": False}


def native_only(payload: Json) -> list[str]:
    """What in a (checked) request chat completions cannot carry."""
    found = []
    for index, tool in enumerate(payload.get("tools") or ()):
        if tool.get("type") != "function":
            found.append(f"tools[{index}] of type '{tool.get('type')}'")
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") != "function":
        found.append(f"tool_choice of type '{choice.get('type')}'")
    items = payload.get("input")
    for index, item in enumerate(items if isinstance(items, list) else ()):
        kind = item_type(item)
        if kind not in TRANSLATED_ITEMS:
            found.append(f"input[{index}] of type '{kind}'")
        elif kind == "message" and isinstance(item.get("content"), list):
            for part in item["content"]:
                if part.get("type") == "input_image" and not part.get("image_url"):
                    found.append(f"input[{index}] with an image by file_id")
    return found


def item_type(item: Json) -> str:
    """An input item's type: a message may leave it out."""
    kind = item.get("type")
    return kind if isinstance(kind, str) else "message"


# -- translation -------------------------------------------------------------


def messages_of(items: Any) -> list[Json]:
    """Input items (checked) as chat messages: a run of function calls is one
    assistant message with its tool calls; reasoning and untranslatable items
    are left out."""
    if items is None:
        return []
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    messages: list[Json] = []
    for item in items:
        kind = item_type(item)
        if kind == "message":
            messages.append(_message(item))
        elif kind == "function_call":
            _add_call(messages, item)
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": _output(item)}
            )
    return messages


def _message(item: Json) -> Json:
    role = ROLES[item["role"]]
    content = item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    if role != "user":  # system and assistant turns carry text only
        return {"role": role, "content": "".join(_texts(content))}
    return {"role": role, "content": [_part(part) for part in content]}


def _texts(parts: list[Json]) -> list[str]:
    texts = []
    for part in parts:
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
    return texts


def _part(part: Json) -> Json:
    kind = part["type"]
    if kind == "input_image":
        image: Json = {"url": part.get("image_url") or ""}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        names = ("file_id", "file_data", "filename")
        return {"type": "file", "file": {name: part[name] for name in names if part.get(name)}}
    return {"type": "text", "text": part.get("text", part.get("refusal", ""))}


def _add_call(messages: list[Json], item: Json) -> None:
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = messages[-1] if messages else None
    if (
        last is not None
        and last["role"] == "assistant"
        and isinstance(last.get("content"), str | None)
    ):
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output(item: Json) -> str:
    output = item["output"]
    return output if isinstance(output, str) else "".join(_texts(output))


def _copy_options(payload: Json, hub: Json) -> None:
    if payload.get("max_output_tokens") is not None:
        hub["max_tokens"] = payload["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier"):
        if payload.get(name) is not None:
            hub[name] = payload[name]
    if payload.get("prompt_cache_key") is not None:
        hub["prompt_cache_key"] = payload["prompt_cache_key"]
    if payload.get("top_logprobs") is not None:
        hub["logprobs"] = True
        hub["top_logprobs"] = payload["top_logprobs"]
    reasoning = payload.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        hub["reasoning_effort"] = reasoning["effort"]
    text = payload.get("text")
    text = text if isinstance(text, dict) else {}
    verbosity = text.get("verbosity") or payload.get("verbosity")
    if verbosity is not None:
        hub["verbosity"] = verbosity
    form = text.get("format")
    if isinstance(form, dict) and form["type"] != "text":
        hub["response_format"] = _response_format(form)


def _response_format(form: Json) -> Json:
    if form["type"] == "json_object":
        return {"type": "json_object"}
    schema = {key: form[key] for key in ("name", "schema", "strict", "description") if key in form}
    return {"type": "json_schema", "json_schema": schema}


def _tool(tool: Json) -> Json:
    function: Json = {"name": tool["name"]}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    parameters = tool.get("parameters")
    function["parameters"] = parameters if parameters else {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice is None or isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice["name"]}}
    return None  # a hosted tool's choice: only a Responses upstream takes it
