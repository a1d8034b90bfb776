"""What the fuzz tests share: hostile values, JSON written as given, and
OpenAI's error shape."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# More for a longer hunt: TOLLWAY_FUZZ_EXAMPLES=5000 python3 -m pytest tests/test_fuzz_*.py
EXAMPLES = int(os.environ.get("TOLLWAY_FUZZ_EXAMPLES", "300"))
# Each example is a real request to a served gateway: no deadline, no example
# database between runs, and slow or filtered data is no health problem.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Raw:
    """A JSON fragment sent as written: numbers JSON allows and Python's
    json.dumps cannot write (1e309), or nesting deeper than any parser wants."""

    text: str


class Sent(str):
    """A request body as sent, shown short in a failure's report (a deep
    nesting is 40 kB, more than Hypothesis will print)."""

    def __repr__(self) -> str:
        text = str(self)
        return repr(text) if len(text) <= 300 else f"{text[:300]!r}... ({len(text)} characters)"


def dump(value: Any) -> Sent:
    return Sent(_dump(value))


def _dump(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


HOSTILE_INTS = [0, -1, 1, 2, 3, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**20, 10**30, -(10**20)]
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "1_000",
    "٣",
    "²",
    " 1 ",
    "1 000",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e3",
    "1e30",
    "1e309",
    "-0",
    "0.0000000001",
    "9223372036.854775807",
    "99999999999999999999",
    "1000000000.000000001",
    "gpt-4o",
    "pay_per_use",
    "hybrid",
    "openai",
    "*",
    "http://127.0.0.1:1/v1",
    "2026-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "x" * 5000,
    "\ud7ff\ue000\U0010ffff",
]
HOSTILE_NUMBERS = [
    Raw("1e30"),
    Raw("1e309"),
    Raw("-1e309"),
    Raw("1e-30"),
    Raw("0.1"),
    Raw("9223372036.854775807"),
    Raw("1000000000"),
    Raw("123456789012345678901234567890"),
    Raw("-0.0"),
]
DEEP = Raw("[" * 20_000 + "]" * 20_000)
DEEP_OBJECT = Raw('{"a":' * 3000 + "1" + "}" * 3000)

scalars = st.one_of(
    st.sampled_from(HOSTILE_INTS),
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(HOSTILE_NUMBERS),
    st.integers(),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
    st.decimals(allow_nan=False, allow_infinity=False, places=12).map(lambda d: Raw(str(d))),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
) | st.sampled_from([DEEP, DEEP_OBJECT])


def assert_json_error(got: httpx.Response) -> None:
    assert got.headers.get("content-type", "").startswith("application/json"), got.text[:300]
    error = got.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
