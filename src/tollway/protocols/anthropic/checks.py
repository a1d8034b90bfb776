"""Small checks an inbound request's fields go through: each raises a 400
naming the field (``param``) it found wrong."""

from __future__ import annotations

import math
from typing import Any

from tollway.errors import bad_request


def require(ok: bool, message: str, param: str) -> None:
    if not ok:
        raise bad_request(message, param=param)


def text(value: Any, param: str, *, empty: bool = True) -> str:
    """A string (non-empty unless ``empty``)."""
    require(isinstance(value, str), f"'{param}' must be a string.", param)
    assert isinstance(value, str)
    require(empty or bool(value), f"'{param}' must not be empty.", param)
    return value


def whole(value: Any, param: str, low: int, high: int) -> int:
    """An integer (never a bool, never 1.0) between ``low`` and ``high``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    require(ok, f"'{param}' must be an integer from {low} to {high}.", param)
    assert isinstance(value, int)
    return value


def fraction(value: Any, param: str) -> float | int:
    """A finite number from 0 to 1 (Anthropic's range for temperature and top_p)."""
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    )
    require(ok, f"'{param}' must be a number from 0 to 1.", param)
    assert isinstance(value, int | float)
    return value


def obj(value: Any, param: str) -> dict[str, Any]:
    require(isinstance(value, dict), f"'{param}' must be an object.", param)
    assert isinstance(value, dict)
    return value


def items(value: Any, param: str, *, empty: bool = True) -> list[Any]:
    """A list (non-empty unless ``empty``)."""
    require(isinstance(value, list), f"'{param}' must be a list.", param)
    assert isinstance(value, list)
    require(empty or bool(value), f"'{param}' must not be empty.", param)
    return value


def flag(value: Any, param: str) -> bool:
    require(isinstance(value, bool), f"'{param}' must be true or false.", param)
    return bool(value)
