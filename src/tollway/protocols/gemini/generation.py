"""generationConfig and toolConfig, to the hub's sampling parameters and
tool_choice and back."""

from __future__ import annotations

from typing import Any

from tollway.errors import bad_request
from tollway.protocols.gemini.fields import (
    Json,
    get,
    need_int,
    need_list,
    need_name,
    need_number,
    need_object,
    need_str,
)
from tollway.protocols.gemini.schemas import json_schema

MAX_OUTPUT_TOKENS = 10_000_000
MAX_CANDIDATES = 8
MAX_STOP_SEQUENCES = 5
INT32 = 2**31 - 1
JSON_MIME = "application/json"
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
# Gemini's sampling numbers and their hub names: (gemini, hub, low, high).
_NUMBERS = (
    ("temperature", "temperature", 0.0, 2.0),
    ("topP", "top_p", 0.0, 1.0),
    ("presencePenalty", "presence_penalty", -2.0, 2.0),
    ("frequencyPenalty", "frequency_penalty", -2.0, 2.0),
)
_INTEGERS = (
    ("maxOutputTokens", "max_tokens", 1, MAX_OUTPUT_TOKENS),
    ("candidateCount", "n", 1, MAX_CANDIDATES),
    ("seed", "seed", -INT32 - 1, INT32),
)


def generation_to_hub(value: Any) -> Json:
    config = need_object(value, "generationConfig")
    hub: Json = {}
    for name, hub_name, low, high in _NUMBERS:
        given = get(config, name, "generationConfig")
        if given is not None:
            hub[hub_name] = need_number(given, f"generationConfig.{name}", low, high)
    for name, hub_name, least, most in _INTEGERS:
        given = get(config, name, "generationConfig")
        if given is not None:
            hub[hub_name] = need_int(given, f"generationConfig.{name}", least, most)
    top_k = get(config, "topK", "generationConfig")
    if top_k is not None:  # no hub equivalent: checked, then left to the upstream's default
        need_number(top_k, "generationConfig.topK", 1, INT32)
    stop = get(config, "stopSequences", "generationConfig")
    if stop is not None:
        path = "generationConfig.stopSequences"
        stops = need_list(stop, path, MAX_STOP_SEQUENCES, nonempty=False)
        hub["stop"] = [need_str(s, f"{path}[{i}]", nonempty=True) for i, s in enumerate(stops)]
    hub.update(_response_format(config))
    return hub


def _response_format(config: Json) -> Json:
    mime = get(config, "responseMimeType", "generationConfig")
    schema = get(config, "responseSchema", "generationConfig")
    raw = get(config, "responseJsonSchema", "generationConfig")
    if mime is None and schema is None and raw is None:
        return {}
    path = "generationConfig.responseMimeType"
    if mime not in (JSON_MIME, "text/plain", None):
        message = f"'{path}' must be 'application/json' or 'text/plain'."
        raise bad_request(message, path)
    if mime != JSON_MIME:
        if schema is not None or raw is not None:
            raise bad_request(f"A response schema needs '{path}' 'application/json'.", path)
        return {}
    if schema is not None and raw is not None:
        message = "Give responseSchema or responseJsonSchema, not both."
        raise bad_request(message, "generationConfig.responseSchema")
    if schema is not None:
        raw = json_schema(schema, "generationConfig.responseSchema")
    elif raw is not None:
        raw = need_object(raw, "generationConfig.responseJsonSchema")
    else:
        return {"response_format": {"type": "json_object"}}
    spec = {"name": "response", "schema": raw}
    return {"response_format": {"type": "json_schema", "json_schema": spec}}


def tool_choice_to_hub(value: Any, tools: list[Json]) -> Json:
    """toolConfig.functionCallingConfig as tool_choice: one allowed name under
    ANY is OpenAI's named tool_choice; other allowed names narrow the tools."""
    config = need_object(value, "toolConfig")
    calling = get(config, "functionCallingConfig", "toolConfig")
    if calling is None or not tools:
        return {}
    path = "toolConfig.functionCallingConfig"
    need_object(calling, path)
    mode = get(calling, "mode", path) or "AUTO"
    if mode not in _MODES:
        raise bad_request(f"'{path}.mode' must be one of {', '.join(_MODES)}.", f"{path}.mode")
    allowed = get(calling, "allowedFunctionNames", path)
    names = _allowed(allowed, f"{path}.allowedFunctionNames", tools) if allowed else None
    if mode == "ANY" and names is not None and len(names) == 1:
        return {"tool_choice": {"type": "function", "function": {"name": names[0]}}}
    hub: Json = {"tool_choice": {"NONE": "none", "ANY": "required"}.get(mode, "auto")}
    if names is not None:
        hub["tools"] = [tool for tool in tools if tool["function"]["name"] in names]
    return hub


def _allowed(value: Any, path: str, tools: list[Json]) -> list[str]:
    declared = {tool["function"]["name"] for tool in tools}
    names = need_list(value, path, len(declared))
    for i, name in enumerate(names):
        if need_name(name, f"{path}[{i}]") not in declared:
            raise bad_request(f"'{path}[{i}]' names no declared function.", path)
    return names


def generation_from_hub(hub: Json) -> Json:
    """The hub's sampling parameters as a generationConfig."""
    config: Json = {}
    limit = hub.get("max_completion_tokens")
    limit = hub.get("max_tokens") if limit is None else limit
    pairs = (
        ("maxOutputTokens", limit),
        ("temperature", hub.get("temperature")),
        ("topP", hub.get("top_p")),
        ("candidateCount", hub.get("n")),
        ("seed", hub.get("seed")),
        ("presencePenalty", hub.get("presence_penalty")),
        ("frequencyPenalty", hub.get("frequency_penalty")),
    )
    config.update((name, value) for name, value in pairs if value is not None)
    stop = hub.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    config.update(_response_format_from_hub(hub.get("response_format")))
    return config


def _response_format_from_hub(value: Any) -> Json:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "json_object":
        return {"responseMimeType": JSON_MIME}
    if kind != "json_schema":
        return {}
    spec = value.get("json_schema") if isinstance(value, dict) else None
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        return {"responseMimeType": JSON_MIME}
    return {"responseMimeType": JSON_MIME, "responseJsonSchema": schema}


def tool_choice_from_hub(choice: Any) -> Json | None:
    """tool_choice as toolConfig (None: the upstream's default)."""
    if choice == "none":
        calling: Json = {"mode": "NONE"}
    elif choice == "auto":
        calling = {"mode": "AUTO"}
    elif choice == "required":
        calling = {"mode": "ANY"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = need_name(choice["function"].get("name"), "tool_choice.function.name")
        calling = {"mode": "ANY", "allowedFunctionNames": [name]}
    elif choice is None:
        return None
    else:
        message = "'tool_choice' must be none, auto, required or a function."
        raise bad_request(message, "tool_choice")
    return {"functionCallingConfig": calling}
