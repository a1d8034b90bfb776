"""A Responses API request (``POST /v1/responses``) as a hub request.

Every field the gateway reads has a type and a range, checked here (a 400 in
OpenAI's shape otherwise). What chat completions can say is translated:
``instructions`` and ``input`` items become ``messages``, flat function
tools become chat's nested ones, ``max_output_tokens`` becomes
``max_tokens``, ``reasoning.effort`` ``reasoning_effort`` and ``text.format``
``response_format``. What only a Responses upstream can carry (hosted tools
such as ``web_search``, item references, computer calls ...) is left out of
the hub and named by ``native_only``: such a request can go to an OpenAI
channel as it came, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from tollway.errors import bad_request

Json = dict[str, Any]

MAX_ITEMS = 10_000
MAX_TOOLS = 128
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512
MAX_ID_CHARS = 64
MAX_OUTPUT_TOKENS = 10_000_000
MAX_TOP_LOGPROBS = 20
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
FORMATS = frozenset({"text", "json_object", "json_schema"})
VERBOSITIES = frozenset({"low", "medium", "high"})
DETAILS = frozenset({"low", "high", "auto", "original"})
# Items chat completions has no words for: a Responses upstream takes them as they are.
TRANSLATED_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})
# Fields the gateway cannot serve (its own conversations and background jobs are not kept).
REFUSED = {
    "conversation": "Server-side conversations are not served here: use previous_response_id.",
    "background": "Background responses are not served here: send the request without it.",
}


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


# -- checks ------------------------------------------------------------------


def check_fields(payload: Json) -> None:
    """The top-level fields: types, ranges and sizes."""
    for name, why in REFUSED.items():
        if payload.get(name) not in (None, False):
            raise bad_request(why, param=name)
    _optional(payload, "model", str)
    _optional(payload, "instructions", str)
    _optional(payload, "previous_response_id", str)
    for name in ("stream", "store", "parallel_tool_calls"):
        _optional(payload, name, bool)
    for name in ("user", "safety_identifier", "prompt_cache_key", "service_tier", "truncation"):
        _optional(payload, name, str)
    previous = payload.get("previous_response_id")
    if previous is not None and not is_response_id(previous):
        raise bad_request(
            "'previous_response_id' must be a response id (resp_...).",
            param="previous_response_id",
        )
    _int(payload, "max_output_tokens", 1, MAX_OUTPUT_TOKENS)
    _int(payload, "top_logprobs", 0, MAX_TOP_LOGPROBS)
    _number(payload, "temperature", 2)
    _number(payload, "top_p", 1)
    _check_metadata(payload.get("metadata"))
    _check_reasoning(payload.get("reasoning"))
    _check_text(payload.get("text"))
    _check_verbosity(payload.get("verbosity"), "verbosity")
    _check_tools(payload.get("tools"))
    _check_tool_choice(payload.get("tool_choice"))
    _check_input(payload.get("input"))


def is_response_id(value: Any) -> bool:
    """Could name a stored response: printable ASCII, at most 64 characters."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isascii()
        and value.isprintable()
    )


def _one_of(value: Any, allowed: Collection[str]) -> bool:
    """``value`` is one of ``allowed`` (a list or object never is: no hashing it)."""
    return isinstance(value, str) and value in allowed


def _optional(payload: Json, name: str, kind: type[str] | type[bool]) -> None:
    value = payload.get(name)
    if value is not None and not isinstance(value, kind):
        what = "true or false" if kind is bool else "a string"
        raise bad_request(f"'{name}' must be {what}.", param=name)


def _int(payload: Json, name: str, low: int, high: int) -> None:
    value = payload.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a whole number from {low} to {high}.", param=name)


def _number(payload: Json, name: str, high: int) -> None:
    value = payload.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise bad_request(f"'{name}' must be a number from 0 to {high}.", param=name)


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_PAIRS:
        raise bad_request(
            f"'metadata' must be an object of at most {MAX_METADATA_PAIRS} pairs.",
            param="metadata",
        )
    for key, value in metadata.items():
        if (
            len(key) > MAX_METADATA_KEY_CHARS
            or not isinstance(value, str)
            or (len(value) > MAX_METADATA_VALUE_CHARS)
        ):
            raise bad_request(
                f"'metadata' keys are at most {MAX_METADATA_KEY_CHARS} characters and values "
                f"strings of at most {MAX_METADATA_VALUE_CHARS}.",
                param="metadata",
            )


def _check_reasoning(reasoning: Any) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict):
        raise bad_request("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None and not _one_of(effort, EFFORTS):
        raise bad_request(
            f"'reasoning.effort' must be one of {', '.join(sorted(EFFORTS))}.",
            param="reasoning.effort",
        )


def _check_text(text: Any) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise bad_request("'text' must be an object.", param="text")
    _check_verbosity(text.get("verbosity"), "text.verbosity")
    form = text.get("format")
    if form is None:
        return
    if not isinstance(form, dict) or not _one_of(form.get("type"), FORMATS):
        raise bad_request(
            "'text.format' must be an object of type text, json_object or json_schema.",
            param="text.format",
        )
    if form["type"] == "json_schema" and (
        not isinstance(form.get("name"), str) or not isinstance(form.get("schema"), dict)
    ):
        raise bad_request(
            "A json_schema 'text.format' needs a 'name' (string) and a 'schema' (object).",
            param="text.format",
        )


def _check_verbosity(verbosity: Any, param: str) -> None:
    if verbosity is not None and not _one_of(verbosity, VERBOSITIES):
        raise bad_request(f"'{param}' must be low, medium or high.", param=param)


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise bad_request(f"'tools' must be an array of at most {MAX_TOOLS} tools.", param="tools")
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise bad_request(f"'{param}' must be an object with a 'type'.", param=param)
        if tool["type"] != "function":
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise bad_request(
                f"'{param}.name' must be 1 to 128 letters, digits, '_', '.', ':' or '-'.",
                param=f"{param}.name",
            )
        if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
            raise bad_request(
                f"'{param}.parameters' must be an object.", param=f"{param}.parameters"
            )
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise bad_request(
                f"'{param}.description' must be a string.", param=f"{param}.description"
            )


def _check_tool_choice(choice: Any) -> None:
    if choice is None or _one_of(choice, TOOL_CHOICES):
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(kind, str) and (kind != "function" or isinstance(choice.get("name"), str)):
        return
    raise bad_request(
        "'tool_choice' must be none, auto, required or a tool object "
        '({"type": "function", "name": ...}).',
        param="tool_choice",
    )


def _check_input(items: Any) -> None:
    if items is None or isinstance(items, str):
        return
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise bad_request(
            f"'input' must be a string or an array of at most {MAX_ITEMS} items.", param="input"
        )
    for index, item in enumerate(items):
        _check_item(item, f"input[{index}]")


def item_type(item: Json) -> str:
    """An input item's type: a message may leave it out."""
    kind = item.get("type")
    return kind if isinstance(kind, str) else "message"


def _check_item(item: Any, param: str) -> None:
    if not isinstance(item, dict):
        raise bad_request(f"'{param}' must be an object.", param=param)
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        raise bad_request(f"'{param}.type' must be a string.", param=f"{param}.type")
    if kind == "message":
        _check_message(item, param)
    elif kind == "function_call":
        for name in ("call_id", "name", "arguments"):
            if not isinstance(item.get(name), str):
                raise bad_request(f"'{param}.{name}' must be a string.", param=f"{param}.{name}")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise bad_request(f"'{param}.call_id' must be a string.", param=f"{param}.call_id")
        output = item.get("output")
        if not isinstance(output, str):
            _check_parts(output, f"{param}.output")


def _check_message(item: Json, param: str) -> None:
    if not _one_of(item.get("role"), ROLES):
        raise bad_request(
            f"'{param}.role' must be user, assistant, system or developer.", param=f"{param}.role"
        )
    content = item.get("content")
    if not isinstance(content, str):
        _check_parts(content, f"{param}.content")


def _check_parts(parts: Any, param: str) -> None:
    if not isinstance(parts, list):
        raise bad_request(f"'{param}' must be a string or an array of parts.", param=param)
    for index, part in enumerate(parts):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            if not isinstance(part.get("text"), str):
                raise bad_request(f"'{where}.text' must be a string.", param=where)
        elif kind == "refusal":
            if not isinstance(part.get("refusal"), str):
                raise bad_request(f"'{where}.refusal' must be a string.", param=where)
        elif kind == "input_image":
            _check_image(part, where)
        elif kind == "input_file":
            for name in ("file_id", "file_url", "file_data", "filename"):
                if part.get(name) is not None and not isinstance(part[name], str):
                    raise bad_request(f"'{where}.{name}' must be a string.", param=where)
        else:
            raise bad_request(
                f"'{where}' must be a part of type input_text, input_image, input_file, "
                "output_text or refusal.",
                param=where,
            )


def _check_image(part: Json, where: str) -> None:
    url, file_id = part.get("image_url"), part.get("file_id")
    if not isinstance(url, str) and not isinstance(file_id, str):
        raise bad_request(f"'{where}' needs an 'image_url' or a 'file_id' (string).", param=where)
    if url is not None and not isinstance(url, str):
        raise bad_request(f"'{where}.image_url' must be a string.", param=where)
    detail = part.get("detail")
    if detail is not None and not _one_of(detail, DETAILS):
        raise bad_request(f"'{where}.detail' must be low, high, auto or original.", param=where)


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
