"""Whole answers: a Messages response as a hub ``chat.completion``, and back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from tollway.protocols.anthropic.usage import usage_from_anthropic, usage_to_anthropic, usage_to_hub
from tollway.types import Usage

Json = dict[str, Any]

# Anthropic's stop_reason as OpenAI's finish_reason. A paused turn (a server
# tool still running) ends this answer as a normal stop would.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: Any) -> str:
    """Unknown or missing reasons read as a plain stop."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason(finish: Any) -> str:
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def message_id(hub_id: Any) -> str:
    """An Anthropic-looking id for a hub id (chatcmpl-abc -> msg_abc)."""
    if not isinstance(hub_id, str) or not hub_id:
        return f"msg_{uuid.uuid4().hex}"
    if hub_id.startswith("msg_"):
        return hub_id
    return "msg_" + hub_id.removeprefix("chatcmpl-")


def answer_to_hub(answer: Json) -> Json:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    blocks = answer.get("content")
    for block in blocks if isinstance(blocks, list) else ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    finish = finish_reason(answer.get("stop_reason"))
    hub: Json = {
        "id": answer.get("id") if isinstance(answer.get("id"), str) else message_id(None),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    usage = usage_from_anthropic(answer.get("usage"))
    if usage is not None:
        hub["usage"] = usage_to_hub(usage)
    return hub


def _tool_call(block: Json) -> Json:
    arguments = block.get("input")
    try:
        encoded = orjson.dumps(arguments if isinstance(arguments, dict) else {}).decode()
    except orjson.JSONEncodeError:
        encoded = "{}"
    function = {"name": block.get("name"), "arguments": encoded}
    return {"id": block.get("id"), "type": "function", "function": function}


def answer_from_hub(hub: Json, usage: Usage | None) -> Json:
    choices = hub.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    return {
        "id": message_id(hub.get("id")),
        "type": "message",
        "role": "assistant",
        "model": hub.get("model"),
        "content": _content(message if isinstance(message, dict) else {}),
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage_to_anthropic(usage, breakdown=True),
    }


def _content(message: Json) -> list[Json]:
    """Reasoning (as a thinking block with no signature: it was not Claude's),
    text, then tool calls."""
    blocks: list[Json] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    refusal = message.get("refusal")
    text = _text(message.get("content")) or (refusal if isinstance(refusal, str) else "")
    if text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            blocks.append(_tool_use(call, function))
    return blocks


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p for p in content if isinstance(p, dict) and p.get("type") in ("text", "refusal")]
    texts = (p.get("text", p.get("refusal")) for p in parts)
    return "".join(t for t in texts if isinstance(t, str))


def _tool_use(call: Json, function: Json) -> Json:
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except (orjson.JSONDecodeError, TypeError):
        arguments = {}
    return {
        "type": "tool_use",
        "id": call.get("id") if isinstance(call.get("id"), str) else f"toolu_{uuid.uuid4().hex}",
        "name": function.get("name") if isinstance(function.get("name"), str) else "",
        "input": arguments if isinstance(arguments, dict) else {},
    }
