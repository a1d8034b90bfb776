"""A hub request (OpenAI chat completions) as a Responses API body: what a
chat client's call becomes for an upstream that speaks only Responses.
System and developer messages become ``instructions``; the rest ``input``
items; nested function tools flat ones. The body asks nothing to be stored."""

from __future__ import annotations

from typing import Any

from tollway.errors import bad_request

Json = dict[str, Any]


def request_from_hub(hub: Json) -> Json:
    if hub.get("n") not in (None, 1):
        raise bad_request("The Responses API answers one choice: 'n' must be 1.", param="n")
    instructions: list[str] = []
    items: list[Json] = []
    messages = hub.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            instructions.append(_text(message.get("content")))
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": str(message.get("tool_call_id", "")),
                    "output": _text(message.get("content")),
                }
            )
        else:
            items.extend(_turn(message))
    body: Json = {"model": hub.get("model"), "input": items, "store": False}
    if instructions:
        body["instructions"] = "\n\n".join(instructions)
    _options(hub, body)
    return body


def _turn(message: Json) -> list[Json]:
    role = "assistant" if message.get("role") == "assistant" else "user"
    out: list[Json] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        out.append({"role": role, "content": content})
    elif isinstance(content, list):
        parts = [_part(part, role) for part in content if isinstance(part, dict)]
        out.append({"role": role, "content": [part for part in parts if part is not None]})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append(
                {
                    "type": "function_call",
                    "call_id": str(call.get("id", "")),
                    "name": str(function.get("name", "")),
                    "arguments": str(function.get("arguments", "{}")),
                }
            )
    return out


def _part(part: Json, role: str) -> Json | None:
    kind = part.get("type")
    if kind == "text":
        text_type = "output_text" if role == "assistant" else "input_text"
        return {"type": text_type, "text": str(part.get("text", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
        return {"type": "input_image", "image_url": str(url), "detail": detail}
    if kind == "file":
        file = part.get("file")
        return {"type": "input_file", **(file if isinstance(file, dict) else {})}
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _options(hub: Json, body: Json) -> None:
    for limit in ("max_completion_tokens", "max_tokens"):
        if hub.get(limit) is not None:
            body["max_output_tokens"] = hub[limit]
            break
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "stream"):
        if hub.get(name) is not None:
            body[name] = hub[name]
    if hub.get("reasoning_effort") is not None:
        body["reasoning"] = {"effort": hub["reasoning_effort"]}
    form = hub.get("response_format")
    if isinstance(form, dict) and form.get("type") == "json_schema":
        schema = form.get("json_schema")
        body["text"] = {
            "format": {"type": "json_schema", **(schema if isinstance(schema, dict) else {})}
        }
    elif isinstance(form, dict) and form.get("type") == "json_object":
        body["text"] = {"format": {"type": "json_object"}}
    tools = hub.get("tools")
    flat = (
        [_flat_tool(tool) for tool in tools if isinstance(tool, dict)]
        if isinstance(tools, list)
        else []
    )
    if flat:
        body["tools"] = flat
        choice = hub.get("tool_choice")
        if isinstance(choice, str):
            body["tool_choice"] = choice
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            body["tool_choice"] = {"type": "function", "name": choice["function"].get("name")}


def _flat_tool(tool: Json) -> Json:
    function = tool.get("function")
    function = function if isinstance(function, dict) else {}
    return {"type": "function", **function}
