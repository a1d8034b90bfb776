"""Reading a Gemini ``generateContent`` request: validation, prompt tokens, directives.

See ``gemini`` for the token rule. Field names are accepted in both of the
forms the Gemini REST API takes (``inlineData`` and ``inline_data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chat import IMAGE_PART_TOKENS, PER_MESSAGE_TOKENS, REPLY_PRIMING_TOKENS
from .common import ApiError
from .directives import DirectiveError, Directives, parse_directives

MAX_CANDIDATES = 8
_ROLES = frozenset({"user", "model"})
# The members of Part's ``data`` oneof, camelCase and snake_case.
_DATA_FIELDS = frozenset(
    {
        "text",
        "inlineData",
        "inline_data",
        "fileData",
        "file_data",
        "functionCall",
        "function_call",
        "functionResponse",
        "function_response",
        "executableCode",
        "executable_code",
        "codeExecutionResult",
        "code_execution_result",
    }
)


@dataclass(slots=True)
class GenerateCall:
    model: str
    contents: list[dict[str, Any]]
    system: dict[str, Any] | None
    max_tokens: int | None
    candidates: int
    image: bool  # responseModalities asks for IMAGE
    include_thoughts: bool
    tool_names: frozenset[str]
    directives: Directives


def field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def parse_call(model: str, body: dict[str, Any]) -> GenerateCall:
    contents = check_contents(body.get("contents"))
    system = field(body, "systemInstruction", "system_instruction")
    if system is not None:
        _check_parts(system, "system_instruction")
    config = field(body, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        raise ApiError(400, "Invalid value at 'generation_config': expected an object")
    try:
        directives = parse_directives(content_text(contents[-1]))
    except DirectiveError as exc:
        raise ApiError(400, str(exc)) from exc
    thinking = field(config, "thinkingConfig", "thinking_config")
    include = isinstance(thinking, dict) and (
        field(thinking, "includeThoughts", "include_thoughts") is True
    )
    return GenerateCall(
        model,
        contents,
        system,
        _int_setting(config, "maxOutputTokens", "max_output_tokens", 1, 10**9),
        _int_setting(config, "candidateCount", "candidate_count", 1, MAX_CANDIDATES) or 1,
        _wants_image(config),
        include,
        _tool_names(body.get("tools")),
        directives,
    )


def check_contents(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
    for index, content in enumerate(value):
        role = content.get("role") if isinstance(content, dict) else None
        if role is not None and role not in _ROLES:
            raise ApiError(400, "Please use a valid role: user, model.")
        _check_parts(content, f"contents[{index}]")
    return value


def _check_parts(content: Any, where: str) -> None:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise ApiError(400, f"* GenerateContentRequest.{where}.parts: must not be empty")
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or _DATA_FIELDS.isdisjoint(part):
            raise ApiError(
                400,
                f"* GenerateContentRequest.{where}.parts[{index}].data: "
                "required oneof field 'data' must have one initialized field",
            )


def _int_setting(config: dict[str, Any], camel: str, snake: str, low: int, high: int) -> int | None:
    value = field(config, camel, snake)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            400,
            f"* GenerateContentRequest.generation_config.{snake}: "
            f"must be an integer between {low} and {high}, got {value!r}",
        )
    return value


def _wants_image(config: dict[str, Any]) -> bool:
    modalities = field(config, "responseModalities", "response_modalities")
    if modalities is None:
        return False
    if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
        raise ApiError(400, "generation_config.response_modalities must be a list of strings")
    return any(m.upper() == "IMAGE" for m in modalities)


def _tool_names(tools: Any) -> frozenset[str]:
    if tools is None:
        return frozenset()
    if not isinstance(tools, list):
        raise ApiError(400, "* GenerateContentRequest.tools: expected a list")
    names = set()
    for tool in tools:
        if not isinstance(tool, dict):
            raise ApiError(400, "* GenerateContentRequest.tools: each tool must be an object")
        declarations = field(tool, "functionDeclarations", "function_declarations") or []
        for declaration in declarations if isinstance(declarations, list) else []:
            if isinstance(declaration, dict) and isinstance(declaration.get("name"), str):
                names.add(declaration["name"])
    return frozenset(names)


def count_prompt_tokens(
    system: dict[str, Any] | None, contents: list[dict[str, Any]]
) -> tuple[int, int]:
    """(prompt tokens, of which image tokens) by the chat rule."""
    total, images = REPLY_PRIMING_TOKENS, 0
    for content in contents if system is None else [system, *contents]:
        words, pictures = _content_tokens(content)
        total += PER_MESSAGE_TOKENS + words + pictures * IMAGE_PART_TOKENS
        images += pictures * IMAGE_PART_TOKENS
    return total, images


def _content_tokens(content: dict[str, Any]) -> tuple[int, int]:
    """(words, image parts) of a content; thought parts (past thinking) count 0."""
    words = pictures = 0
    for part in content["parts"]:
        if part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            words += len(part["text"].split())
        blob = field(part, "inlineData", "inline_data") or field(part, "fileData", "file_data")
        if isinstance(blob, dict) and str(field(blob, "mimeType", "mime_type")).startswith(
            "image/"
        ):
            pictures += 1
        words += len(_response_text(part).split())
    return words, pictures


def _response_text(part: dict[str, Any]) -> str:
    """The strings inside a functionResponse (a tool's answer counts as its words)."""
    response = field(part, "functionResponse", "function_response")
    if not isinstance(response, dict):
        return ""
    return " ".join(_strings(response.get("response")))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def content_text(content: dict[str, Any]) -> str:
    """The text of a content (text parts and function responses): where directives are."""
    pieces = []
    for part in content["parts"]:
        if isinstance(part.get("text"), str) and part.get("thought") is not True:
            pieces.append(part["text"])
        pieces.append(_response_text(part))
    return " ".join(pieces)
