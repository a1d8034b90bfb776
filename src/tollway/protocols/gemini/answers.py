"""GenerateContentResponse as a hub chat.completion, and back."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollway.protocols.gemini.fields import Json
from tollway.protocols.gemini.usage import usage_from_gemini, usage_metadata
from tollway.protocols.openai import openai_usage
from tollway.types import Usage

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
FINISH_FROM_HUB = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def finish_to_hub(reason: str, called: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if called and reason == "STOP" else "stop"


def finish_from_hub(reason: Any) -> str | None:
    if reason is None:
        return None
    return FINISH_FROM_HUB.get(reason, "OTHER") if isinstance(reason, str) else "OTHER"


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass
class Said:
    """What one candidate's parts say, in the hub's terms."""

    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[Json] = field(default_factory=list)


def read_candidate(candidate: Json) -> Said:
    """The text, thoughts and function calls of a candidate; whatever is not
    one of those (an image, a signature alone, garbage) is passed over."""
    said = Said()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if isinstance(text, str):
            (said.thoughts if part.get("thought") is True else said.texts).append(text)
        call = part.get("functionCall")
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            said.calls.append(_tool_call(call))
    return said


def _tool_call(call: Json) -> Json:
    given = call.get("id")
    args = call.get("args")
    try:
        arguments = orjson.dumps(args if isinstance(args, dict) else {}).decode()
    except orjson.JSONEncodeError:  # nested past what orjson writes
        arguments = "{}"
    return {
        "id": given if isinstance(given, str) and given else new_id("call_"),
        "type": "function",
        "function": {"name": call["name"], "arguments": arguments},
    }


def blocked(answer: Json) -> bool:
    """A prompt Gemini refused to answer: feedback with a block reason, no candidates."""
    feedback = answer.get("promptFeedback")
    return not answer.get("candidates") and isinstance(feedback, dict) and "blockReason" in feedback


def answer_to_hub(answer: Json) -> Json:
    candidates = answer.get("candidates")
    choices = [
        _choice(candidate, position)
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else ())
        if isinstance(candidate, dict)
    ]
    if not choices:
        reason = "content_filter" if blocked(answer) else "stop"
        choices = [{"index": 0, "message": _message(Said(), None), "finish_reason": reason}]
    given = answer.get("responseId")
    hub: Json = {
        "id": given if isinstance(given, str) and given else new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("modelVersion") if isinstance(answer.get("modelVersion"), str) else "",
        "choices": choices,
    }
    usage = usage_from_gemini(answer.get("usageMetadata"))
    if usage is not None:
        hub["usage"] = openai_usage(usage)
    return hub


def _choice(candidate: Json, position: int) -> Json:
    index = candidate.get("index")
    said = read_candidate(candidate)
    reason = candidate.get("finishReason")
    called = bool(said.calls)
    finish = finish_to_hub(reason, called) if isinstance(reason, str) else None
    return {
        "index": index if isinstance(index, int) and not isinstance(index, bool) else position,
        "message": _message(said, "".join(said.texts) if said.texts else None),
        "finish_reason": finish or ("tool_calls" if called else "stop"),
    }


def _message(said: Said, content: str | None) -> Json:
    message: Json = {"role": "assistant", "content": content}
    if said.thoughts:
        message["reasoning_content"] = "".join(said.thoughts)
    if said.calls:
        message["tool_calls"] = said.calls
    return message


def answer_from_hub(hub: Json, usage: Usage | None) -> Json:
    choices = hub.get("choices")
    candidates = [
        _candidate(choice, position)
        for position, choice in enumerate(choices if isinstance(choices, list) else ())
        if isinstance(choice, dict)
    ]
    given = hub.get("id")
    answer: Json = {"candidates": candidates}
    if usage is not None:
        answer["usageMetadata"] = usage_metadata(usage)
    if isinstance(hub.get("model"), str):
        answer["modelVersion"] = hub["model"]
    answer["responseId"] = given if isinstance(given, str) and given else new_id("")
    return answer


def _candidate(choice: Json, position: int) -> Json:
    message = choice.get("message")
    parts = message_parts(message) if isinstance(message, dict) else []
    index = choice.get("index")
    candidate: Json = {"index": index if isinstance(index, int) else position}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    finish = finish_from_hub(choice.get("finish_reason"))
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def message_parts(message: Json) -> list[Json]:
    """A hub message (or delta) as Gemini parts: thoughts, text, function calls."""
    parts: list[Json] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    for key in ("content", "refusal"):
        text = _text(message.get(key))
        if text:
            parts.append({"text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            arguments = function.get("arguments")
            parts.append(function_call_part(call.get("id"), function["name"], arguments))
    return parts


def function_call_part(call_id: Any, name: str, arguments: Any) -> Json:
    """A functionCall part; arguments that are not a JSON object become {}."""
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        args = {}
    call: Json = {"name": name, "args": args if isinstance(args, dict) else {}}
    if isinstance(call_id, str) and call_id:
        call["id"] = call_id
    return {"functionCall": call}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
