"""What only an Anthropic upstream can carry: document blocks, Anthropic's own
tools (web search, code execution, bash ...) and the blocks their use leaves
in a conversation.

A request holding them is valid (an Anthropic channel is sent it as it came),
so reading it never refuses them. The hub gets what billing needs to hold for
them (a document as the file or text it is) and nothing an upstream could be
sent in their place; ``native_only`` names them, so that a call routed to an
upstream that would need them translated is refused instead (relay/messages.py).
"""

from __future__ import annotations

from typing import Any

from tollway.protocols.anthropic.checks import items, obj, require, text

Json = dict[str, Any]

DOCUMENT = "document"
# What an assistant turn holds after Anthropic ran one of its server tools.
SERVER_BLOCKS = (
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
)
DOCUMENT_SOURCES = ("base64", "text", "url", "file", "content")


def is_custom(tool: Json) -> bool:
    """A tool the client defined (name, description, input_schema); any other
    ``type`` is one of Anthropic's own (``web_search_20250305``, ``bash_20250124``)."""
    return tool.get("type") in (None, "custom")


def check_anthropic_tool(tool: Json, where: str) -> None:
    require(isinstance(tool.get("type"), str), f"'{where}.type' must be a string.", f"{where}.type")
    text(tool.get("name"), f"{where}.name", empty=False)


def document_parts(block: Json, where: str) -> list[Json]:
    """A document block as the hub parts billing holds it by: a file (PDF,
    URL or file id), or its text. Only an Anthropic upstream is sent it."""
    source = obj(block.get("source"), f"{where}.source")
    kind = source.get("type")
    require(
        kind in DOCUMENT_SOURCES,
        f"'{where}.source.type' must be one of {', '.join(DOCUMENT_SOURCES)}.",
        f"{where}.source.type",
    )
    if kind == "text":
        return [{"type": "text", "text": text(source.get("data"), f"{where}.source.data")}]
    if kind == "content":
        return _content_parts(source.get("content"), f"{where}.source.content")
    if kind == "file":
        file_id = text(source.get("file_id"), f"{where}.source.file_id", empty=False)
        return [{"type": "file", "file": {"file_id": file_id}}]  # refused when held
    if kind == "url":
        url = text(source.get("url"), f"{where}.source.url", empty=False)
        return [{"type": "file", "file": {"file_data": url}}]
    media = text(source.get("media_type"), f"{where}.source.media_type", empty=False)
    data = text(source.get("data"), f"{where}.source.data", empty=False)
    return [{"type": "file", "file": {"file_data": f"data:{media};base64,{data}"}}]


def _content_parts(value: Any, where: str) -> list[Json]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    parts = []
    for i, block in enumerate(items(value, where, empty=False)):
        block = obj(block, f"{where}[{i}]")
        require(block.get("type") == "text", f"'{where}[{i}]' must be a text block.", where)
        parts.append({"type": "text", "text": text(block.get("text"), f"{where}[{i}].text")})
    return parts


def native_only(body: Json) -> list[str]:
    """What in a request ``request_to_hub`` accepted only Anthropic can carry,
    each named by where it is (empty: the request translates whole)."""
    tools = body.get("tools")
    found = [
        f"tools[{i}] ({tool['type']})"
        for i, tool in enumerate(tools if isinstance(tools, list) else ())
        if not is_custom(tool)
    ]
    for i, message in enumerate(body["messages"]):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else ()):
            found.extend(_native_blocks(block, f"messages[{i}].content[{j}]"))
    return found


def _native_blocks(block: Json, where: str) -> list[str]:
    kind = block["type"]
    if kind == DOCUMENT or kind in SERVER_BLOCKS:
        return [f"{where} ({kind})"]
    inner = block.get("content") if kind == "tool_result" else None
    return [
        f"{where}.content[{k}] ({DOCUMENT})"
        for k, part in enumerate(inner if isinstance(inner, list) else ())
        if part["type"] == DOCUMENT
    ]
