"""Gemini's Schema (an OpenAPI 3.0 subset: ``"type": "OBJECT"``, ``nullable``)
as the JSON Schema OpenAI's tools and response formats take."""

from __future__ import annotations

import re
from typing import Any

from tollway.errors import bad_request
from tollway.protocols.gemini.fields import Json, need_list, need_object

MAX_DEPTH = 64
_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
_JSON_TYPES = frozenset(name.lower() for name in _TYPES)
_DROPPED = frozenset({"nullable", "propertyOrdering", "property_ordering"})
_UNDERSCORED = re.compile(r"_([a-z])")


def json_schema(schema: Any, path: str, depth: int = 0) -> Json:
    """The JSON Schema a Gemini Schema means; a 400 for what is not a schema."""
    node = need_object(schema, path)
    if depth > MAX_DEPTH:
        raise bad_request(f"'{path}' nests schemas deeper than {MAX_DEPTH} levels.", path)
    out: Json = {}
    for key, value in node.items():
        name = _UNDERSCORED.sub(lambda m: m.group(1).upper(), key)
        where = f"{path}.{key}"
        if name in _DROPPED:
            continue
        if name == "type":
            kind = _type(value, where)
            if kind is not None:
                out["type"] = kind
        elif name == "properties":
            out[name] = {
                prop: json_schema(sub, f"{where}.{prop}", depth + 1)
                for prop, sub in need_object(value, where).items()
            }
        elif name == "items":
            out[name] = json_schema(value, where, depth + 1)
        elif name == "anyOf":
            subs = need_list(value, where, 256)
            out[name] = [json_schema(sub, f"{where}[{i}]", depth + 1) for i, sub in enumerate(subs)]
        else:
            out[name] = value
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _type(value: Any, path: str) -> str | None:
    if value == "TYPE_UNSPECIFIED":
        return None
    if isinstance(value, str) and (value in _TYPES or value in _JSON_TYPES):
        return value.lower()
    raise bad_request(f"'{path}' must be one of {', '.join(sorted(_TYPES))}.", path)
