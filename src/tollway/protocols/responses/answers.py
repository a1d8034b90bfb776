"""Whole answers: a hub ``chat.completion`` as a Responses ``response`` object, and back.

The output items come in the order OpenAI writes them: a ``reasoning`` item
(from the hub's ``reasoning_content``), the ``message`` with its
``output_text``, then one ``function_call`` per tool call. A hub answer cut
by its limit (``finish_reason: length``) is an ``incomplete`` response.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tollway.protocols.openai import openai_usage, usage_from_openai
from tollway.types import Usage

Json = dict[str, Any]

# finish_reason -> incomplete_details.reason (other reasons complete the response)
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_id(hub_id: Any) -> str:
    """A Responses-looking id for a hub id (chatcmpl-abc -> resp_abc)."""
    if not isinstance(hub_id, str) or not hub_id:
        return new_item_id("resp")
    if hub_id.startswith("resp_"):
        return hub_id
    return "resp_" + hub_id.removeprefix("chatcmpl-")


def usage_json(usage: Usage | None) -> Json:
    """A ``Usage`` in the Responses API's words (zeros when none)."""
    usage = usage or Usage()
    prompt = usage.input_tokens + usage.image_input_tokens + usage.audio_input_tokens
    output = usage.output_tokens + usage.image_output_tokens + usage.audio_output_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": prompt + output,
    }


def skeleton(resp_id: str, model: Any, created_at: int, status: str) -> Json:
    """A response object with nothing in it yet (the request's own fields are
    the relay's to fill: relay/responses.py)."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model if isinstance(model, str) else "",
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }


def ended(response: Json, finish: Any, usage: Usage | None) -> Json:
    """``response`` completed (or incomplete, by how the hub finished), with its usage."""
    reason = INCOMPLETE.get(finish) if isinstance(finish, str) else None
    response["status"] = "completed" if reason is None else "incomplete"
    response["incomplete_details"] = None if reason is None else {"reason": reason}
    if reason is None:
        response["completed_at"] = int(time.time())
    response["usage"] = usage_json(usage)
    return response


def message_item(item_id: str, text: str, status: str = "completed") -> Json:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def reasoning_item(item_id: str, text: str) -> Json:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"type": "reasoning", "id": item_id, "summary": summary, "status": "completed"}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> Json:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def answer_from_hub(hub: Json, usage: Usage | None) -> Json:
    choices = hub.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    created = hub.get("created")
    created = created if isinstance(created, int) else int(time.time())
    response = skeleton(response_id(hub.get("id")), hub.get("model"), created, "completed")
    response["output"] = output_of(message)
    return ended(response, choice.get("finish_reason"), usage)


def output_of(message: Json) -> list[Json]:
    output = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(new_item_id("rs"), reasoning))
    text = "".join(
        t for t in (message.get("content"), message.get("refusal")) if isinstance(t, str)
    )
    if text:
        output.append(message_item(new_item_id("msg"), text))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        call_id = call.get("id") if isinstance(call.get("id"), str) else new_item_id("call")
        name, arguments = function.get("name"), function.get("arguments")
        output.append(
            call_item(
                new_item_id("fc"),
                call_id,
                name if isinstance(name, str) else "",
                arguments if isinstance(arguments, str) else "{}",
                "completed",
            )
        )
    return output


def answer_to_hub(answer: Json) -> Json:
    """A Responses answer as a hub ``chat.completion`` (text, refusal,
    reasoning summary and function calls)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    output = answer.get("output")
    for item in output if isinstance(output, list) else ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            texts.extend(_item_texts(item.get("content"), ("text", "refusal")))
        elif kind == "reasoning":
            thoughts.extend(_item_texts(item.get("summary"), ("text",)))
        elif kind == "function_call":
            calls.append(_hub_call(item))
    hub_message: Json = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        hub_message["reasoning_content"] = "".join(thoughts)
    if calls:
        hub_message["tool_calls"] = calls
    hub: Json = {
        "id": answer.get("id") if isinstance(answer.get("id"), str) else new_item_id("resp"),
        "object": "chat.completion",
        "created": answer.get("created_at") if isinstance(answer.get("created_at"), int) else 0,
        "model": answer.get("model"),
        "choices": [
            {"index": 0, "message": hub_message, "finish_reason": finish_of(answer, calls)}
        ],
    }
    usage = usage_of(answer)
    if usage is not None:
        hub["usage"] = openai_usage(usage)
    return hub


def finish_of(response: Json, calls: list[Json] | bool) -> str:
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if response.get("status") == "incomplete" and isinstance(reason, str) and reason in FINISH:
        return FINISH[reason]
    return "tool_calls" if calls else "stop"


def usage_of(answer: Json) -> Usage | None:
    reported = answer.get("usage")
    return usage_from_openai(reported) if isinstance(reported, dict) else None


def _item_texts(parts: Any, keys: tuple[str, ...]) -> list[str]:
    texts = []
    for part in parts if isinstance(parts, list) else ():
        for key in keys:
            value = part.get(key) if isinstance(part, dict) else None
            if isinstance(value, str):
                texts.append(value)
    return texts


def _hub_call(item: Json) -> Json:
    name, arguments = item.get("name"), item.get("arguments")
    call_id = item.get("call_id") if isinstance(item.get("call_id"), str) else item.get("id")
    return {
        "id": call_id if isinstance(call_id, str) else new_item_id("call"),
        "type": "function",
        "function": {
            "name": name if isinstance(name, str) else "",
            "arguments": arguments if isinstance(arguments, str) else "{}",
        },
    }
