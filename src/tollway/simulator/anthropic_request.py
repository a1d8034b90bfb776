"""Reading an Anthropic Messages request: validation, prompt tokens, directives.

See ``anthropic`` for the token rule. Validation follows Anthropic's: a
missing or malformed field is a 400 ``invalid_request_error`` whose message
names the field the way Anthropic does (``messages.0.role: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chat import IMAGE_PART_TOKENS, PER_MESSAGE_TOKENS, REPLY_PRIMING_TOKENS
from .common import ApiError
from .directives import DirectiveError, Directives, parse_directives

MAX_TOKENS_LIMIT = 10**9
_ROLES = frozenset({"user", "assistant"})


@dataclass(slots=True)
class MessagesCall:
    model: str
    system: Any  # None, a string or a list of text blocks
    messages: list[dict[str, Any]]
    max_tokens: int | None  # None only for count_tokens
    stream: bool
    tool_names: frozenset[str]
    directives: Directives


def parse_call(body: dict[str, Any], *, counting: bool = False) -> MessagesCall:
    """The validated request; ``counting`` (count_tokens) needs no max_tokens."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Field required")
    max_tokens = None if counting else _max_tokens(body.get("max_tokens"))
    messages = _messages(body.get("messages"))
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _blocks(system, "system")
    try:
        directives = parse_directives(content_text(messages[-1]["content"]))
    except DirectiveError as exc:
        raise ApiError(400, str(exc)) from exc
    stream = body.get("stream") is True
    return MessagesCall(
        model, system, messages, max_tokens, stream, _tool_names(body.get("tools")), directives
    )


def _max_tokens(value: Any) -> int:
    if value is None:
        raise ApiError(400, "max_tokens: Field required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "max_tokens: Input should be a valid integer")
    if not 1 <= value <= MAX_TOKENS_LIMIT:
        raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise ApiError(400, "messages: Field required")
    if not isinstance(value, list):
        raise ApiError(400, "messages: Input should be a valid list")
    if not value:
        raise ApiError(400, "messages: at least one message is required")
    for index, message in enumerate(value):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise ApiError(400, f"{where}: Input should be a valid dictionary")
        if message.get("role") not in _ROLES:
            raise ApiError(400, f"{where}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if content is None:
            raise ApiError(400, f"{where}.content: Field required")
        if not isinstance(content, str):
            _blocks(content, f"{where}.content")
    return value


def _blocks(value: Any, where: str) -> None:
    """Content blocks: a list of objects, each with a string ``type``."""
    if not isinstance(value, list):
        raise ApiError(400, f"{where}: Input should be a valid string or a list of blocks")
    for index, block in enumerate(value):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise ApiError(400, f"{where}.{index}.type: Field required")


def _tool_names(tools: Any) -> frozenset[str]:
    if tools is None:
        return frozenset()
    if not isinstance(tools, list):
        raise ApiError(400, "tools: Input should be a valid list")
    names = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ApiError(400, f"tools.{index}.name: Field required")
        names.add(tool["name"])
    return frozenset(names)


def count_prompt_tokens(system: Any, messages: list[dict[str, Any]]) -> int:
    """The chat rule: priming, then (3 + content tokens) for the system and each message."""
    total = REPLY_PRIMING_TOKENS
    if system is not None:
        total += PER_MESSAGE_TOKENS + content_tokens(system)
    for message in messages:
        total += PER_MESSAGE_TOKENS + content_tokens(message["content"])
    return total


def content_tokens(content: Any) -> int:
    """Words of the text (tool results included), plus a flat cost per image."""
    if isinstance(content, str):
        return len(content.split())
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "image":
            total += IMAGE_PART_TOKENS
        elif kind == "tool_result":
            total += content_tokens(block.get("content"))
        elif kind == "text" and isinstance(block.get("text"), str):
            total += len(block["text"].split())
    return total


def content_text(content: Any) -> str:
    """The text a message carries: where directives are looked for.

    Tool results count: a gateway turning an OpenAI ``tool`` message into a
    ``tool_result`` block must still carry the steering it held.
    """
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            pieces.append(content_text(block.get("content")))
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            pieces.append(block["text"])
    return " ".join(pieces)
