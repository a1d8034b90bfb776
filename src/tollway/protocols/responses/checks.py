"""A Responses API request's fields checked: types, ranges and sizes, each
wrong one a 400 in OpenAI's shape naming the field (``param``).

``inbound`` translates only a request that passed ``check_fields``: it reads
the fields without checking them again.
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
# Responses roles, each with the chat role it becomes.
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
TOOL_CHOICES = frozenset({"none", "auto", "required"})
FORMATS = frozenset({"text", "json_object", "json_schema"})
VERBOSITIES = frozenset({"low", "medium", "high"})
DETAILS = frozenset({"low", "high", "auto", "original"})
# Fields the gateway cannot serve (its own conversations and background jobs are not kept).
REFUSED = {
    "conversation": "Server-side conversations are not served here: use previous_response_id.",
    "background": "Background responses are not served here: send the request without it.",
}


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
