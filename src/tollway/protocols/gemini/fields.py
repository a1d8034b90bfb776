"""Reading a Gemini request's fields strictly.

Google's JSON parser takes every field name in camelCase or in its proto
snake_case (Google's own REST samples send ``system_instruction`` and
``function_declarations``), and a single object where a list is expected;
so does this. Everything else that is not what Gemini accepts is a 400
naming the field, never a 500.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tollway.errors import bad_request
from tollway.protocols.base import Json

# Gemini's rule for a function's name.
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")
_CAPITAL = re.compile(r"[A-Z]")


def snake(name: str) -> str:
    return _CAPITAL.sub(lambda m: "_" + m.group().lower(), name)


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def get(obj: Json, name: str, path: str = "") -> Any:
    """``obj``'s field ``name`` (camelCase) or its snake_case twin."""
    twin = snake(name)
    if twin == name or twin not in obj:
        return obj.get(name)
    if name in obj:
        where = join(path, name)
        raise bad_request(f"'{where}' is given twice, also as '{twin}'.", where)
    return obj[twin]


def has(obj: Json, name: str) -> bool:
    return name in obj or snake(name) in obj


def need_object(value: Any, path: str) -> Json:
    if not isinstance(value, dict):
        raise bad_request(f"'{path}' must be an object.", path)
    return value


def need_list(value: Any, path: str, limit: int, nonempty: bool = True) -> list[Any]:
    """A list of at most ``limit`` items; a lone object counts as a list of one."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise bad_request(f"'{path}' must be an array.", path)
    if nonempty and not items:
        raise bad_request(f"'{path}' must not be empty.", path)
    if len(items) > limit:
        raise bad_request(f"'{path}' has {len(items)} items; at most {limit} are allowed.", path)
    return items


def need_str(value: Any, path: str, nonempty: bool = False) -> str:
    if not isinstance(value, str) or (nonempty and not value):
        kind = "a non-empty string" if nonempty else "a string"
        raise bad_request(f"'{path}' must be {kind}.", path)
    return value


def need_name(value: Any, path: str) -> str:
    name = need_str(value, path)
    if FUNCTION_NAME.fullmatch(name) is None:
        raise bad_request(
            f"'{path}' must start with a letter or '_' and hold at most 128 letters, digits, "
            "'_', '.', ':' or '-'.",
            path,
        )
    return name


def need_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"'{path}' must be true or false.", path)
    return value


def need_int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{path}' must be a whole number from {low} to {high}.", path)
    return value


def need_number(value: Any, path: str, low: float, high: float) -> float | int:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise bad_request(f"'{path}' must be a number from {low:g} to {high:g}.", path)
    return value
