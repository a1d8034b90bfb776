"""Hostile input for the native routes (SPEC §6, §7): Anthropic's
``/v1/messages`` (and ``count_tokens``) and Gemini's
``models/{model}:generateContent|streamGenerateContent|countTokens`` under
``/v1beta`` and ``/v1``.

Bodies start valid and have a field or two changed to something hostile:
wrong types, huge numbers, 1e309, nesting deeper than a JSON writer takes,
unknown block and part types, bad roles, NUL bytes, bad base64, tool schemas
that are no schemas, model names that are path tricks. Whatever comes in,
the gateway answers with no 5xx, an error in the inbound protocol's shape,
and a refused call changes no balance.

Each upstream type serves in turn, so that what an inbound codec accepts is
also translated for every upstream (``request_from_hub``); the codecs are
fuzzed in process too, many more examples a second than a served gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.errors import ApiError
from tollway.protocols import CODECS
from tollway.relay.messages import written
from tollway.simulator import Simulator

from fuzzing import EXAMPLES, FUZZ, HOSTILE_INTS, HOSTILE_TEXT, Raw, dump, scalars, values
from native import gateway

UPSTREAMS = ["openai", "anthropic", "gemini"]
MODELS = ["claude-sonnet-4-5", "gpt-4o", "gemini-2.5-flash"]
# Nesting orjson reads (up to 1024 levels) but cannot write (255): what a
# request translated and written again must refuse, not crash on.
DEEPISH = Raw('{"a":' * 300 + "1" + "}" * 300)
DEEPISH_LIST = Raw("[" * 300 + "]" * 300)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
BAD_BASE64 = ["", "!!!", "a\x00b", "====", "data:image/png;base64,xx", "é", "x" * 5000, PNG]
MEDIA_TYPES = ["image/png", "image/jpeg", "application/pdf", "text/plain", "image/svg", "", "\x00"]

# Mostly single hostile values: fuzzing.values is deep nesting half the time,
# which the JSON parser refuses before any codec sees it.
hostile = st.one_of(
    scalars,
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    values,
    st.sampled_from([DEEPISH, DEEPISH_LIST]),
)
# Where a client's JSON is carried on as an object (schemas, arguments): often nested too deep.
objects = st.one_of(
    hostile, st.just(DEEPISH), st.dictionaries(st.text(max_size=5), hostile, max_size=3)
)


def text_or(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(["hi", "[sim:tokens=3] hello", "1 1 1"]), value)


def some(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``, sometimes anything at all."""
    return st.one_of(strategy, strategy, strategy, hostile)


# --- Anthropic's Messages API -------------------------------------------------


def anthropic_source() -> st.SearchStrategy[Any]:
    data = st.one_of(st.sampled_from(BAD_BASE64), hostile)
    media = st.one_of(st.sampled_from(MEDIA_TYPES), hostile)
    return some(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("base64"), "media_type": media, "data": data}),
            st.fixed_dictionaries({"type": st.just("url"), "url": text_or(st.sampled_from(
                ["https://x/a.png", "http://", "file:///etc/passwd", "javascript:1"]))}),
            st.fixed_dictionaries({"type": st.just("text"), "media_type": media,
                                   "data": text_or(hostile)}),
            st.fixed_dictionaries({"type": st.just("file"), "file_id": text_or(hostile)}),
            st.fixed_dictionaries({"type": st.just("content"),
                                   "content": st.lists(hostile, max_size=2)}),
            st.fixed_dictionaries({"type": hostile}),
        )
    )  # fmt: skip


def anthropic_block() -> st.SearchStrategy[Any]:
    kinds = st.sampled_from(
        ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
         "server_tool_use", "web_search_tool_result", "search_result", "container_upload",
         "mcp_tool_use", "unknown", "", "TEXT"]
    )  # fmt: skip
    inner = st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image"]), "text": text_or(hostile)}
    )
    return some(
        st.fixed_dictionaries(
            {"type": kinds},
            optional={
                "text": text_or(hostile),
                "source": anthropic_source(),
                "id": text_or(hostile),
                "name": text_or(hostile),
                "input": objects,
                "tool_use_id": text_or(hostile),
                "content": st.one_of(text_or(hostile), st.lists(inner, max_size=3)),
                "is_error": some(st.booleans()),
                "thinking": text_or(hostile),
                "signature": text_or(hostile),
                "data": text_or(hostile),
                "title": text_or(hostile),
                "citations": some(st.fixed_dictionaries({"enabled": st.booleans()})),
                "cache_control": some(st.just({"type": "ephemeral"})),
            },
        )
    )


def anthropic_messages() -> st.SearchStrategy[Any]:
    role = st.one_of(st.sampled_from(["user", "assistant", "system", "tool", "model", ""]), hostile)
    content = st.one_of(text_or(hostile), st.lists(anthropic_block(), max_size=4))
    message = st.fixed_dictionaries({"role": role, "content": content})
    return some(st.lists(some(message), max_size=4))


def anthropic_tools() -> st.SearchStrategy[Any]:
    schema = st.one_of(
        st.just({"type": "object", "properties": {}}),
        st.fixed_dictionaries({"type": hostile, "properties": hostile}),
        objects,
    )
    custom = st.fixed_dictionaries(
        {"name": text_or(st.sampled_from(["get_weather", "x" * 300, "a b", "\x00"])),
         "input_schema": schema},
        optional={"description": text_or(hostile), "type": st.sampled_from(["custom", "function"])},
    )  # fmt: skip
    server = st.fixed_dictionaries(
        {"type": st.sampled_from(["web_search_20250305", "bash_20250124", "code_execution_20250522",
                                  "text_editor_20250124", "unknown_1"]),
         "name": st.sampled_from(["web_search", "bash", "code_execution", "x"])},
        optional={"max_uses": st.sampled_from(HOSTILE_INTS)},
    )  # fmt: skip
    return some(st.lists(some(st.one_of(custom, server)), max_size=3))


ANTHROPIC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_tokens": some(st.sampled_from([1, 16, 2**31 - 1, 2**31, 0, -1, 1.0, "16"])),
    "messages": anthropic_messages(),
    "system": st.one_of(text_or(hostile), st.lists(anthropic_block(), max_size=2)),
    "temperature": some(st.sampled_from([0, 0.5, 1, 1.5, Raw("1e309"), Raw("-0.0")])),
    "top_p": some(st.sampled_from([0, 0.5, 1, 2])),
    "top_k": some(st.sampled_from(HOSTILE_INTS)),
    "stop_sequences": some(st.lists(text_or(hostile), max_size=3)),
    "stream": some(st.booleans()),
    "thinking": some(st.fixed_dictionaries(
        {"type": st.sampled_from(["enabled", "disabled", "adaptive", "x"])},
        optional={"budget_tokens": st.sampled_from([1024, 0, 2**40, 1.5])})),
    "tools": anthropic_tools(),
    "tool_choice": some(st.fixed_dictionaries(
        {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
        optional={"name": text_or(hostile), "disable_parallel_tool_use": some(st.booleans())})),
    "metadata": some(st.fixed_dictionaries({}, optional={"user_id": text_or(hostile)})),
}  # fmt: skip


def anthropic_body(model: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    valid = {"max_tokens": 16, "messages": [{"role": "user", "content": "hi [sim:tokens=2]"}]}
    fields = {"model": model, **ANTHROPIC_FIELDS}
    return mutated(valid, fields, model)


# --- Gemini's generateContent -------------------------------------------------


def gemini_part() -> st.SearchStrategy[Any]:
    blob = st.fixed_dictionaries(
        {"mimeType": st.one_of(st.sampled_from(MEDIA_TYPES), hostile),
         "data": st.one_of(st.sampled_from(BAD_BASE64), hostile)}
    )  # fmt: skip
    file = st.fixed_dictionaries(
        {"fileUri": text_or(st.sampled_from(["https://x/a.png", "gs://b/o", "file:///x"]))},
        optional={"mimeType": st.sampled_from(MEDIA_TYPES)},
    )
    call = st.fixed_dictionaries(
        {"name": text_or(st.sampled_from(["f", "1f", "a" * 200, "f\x00"]))},
        optional={"args": objects,
                  "id": text_or(hostile)},
    )  # fmt: skip
    response = st.fixed_dictionaries(
        {"name": text_or(st.just("f")), "response": st.one_of(st.just({"ok": True}), objects)},
        optional={"id": text_or(hostile)},
    )
    return some(
        st.one_of(
            st.fixed_dictionaries({"text": text_or(hostile)},
                                  optional={"thought": some(st.booleans())}),
            st.fixed_dictionaries({"inlineData": some(blob)}),
            st.fixed_dictionaries({"inline_data": some(blob)}),
            st.fixed_dictionaries({"fileData": some(file)}),
            st.fixed_dictionaries({"functionCall": some(call)}),
            st.fixed_dictionaries({"functionResponse": some(response)}),
            st.fixed_dictionaries({"executableCode": hostile}),
            st.fixed_dictionaries({"text": st.just("a"), "inlineData": some(blob)}),
            st.just({}),
        )
    )  # fmt: skip


def gemini_contents() -> st.SearchStrategy[Any]:
    role = st.one_of(st.sampled_from(["user", "model", "function", "system", "assistant"]), hostile)
    content = st.fixed_dictionaries(
        {"parts": some(st.lists(gemini_part(), max_size=4))}, optional={"role": role}
    )
    return some(st.lists(some(content), max_size=4))


def gemini_schema() -> st.SearchStrategy[Any]:
    kinds = st.one_of(
        st.sampled_from(["OBJECT", "STRING", "object", "TYPE_UNSPECIFIED", "x"]), hostile
    )
    node = st.fixed_dictionaries(
        {"type": kinds},
        optional={"properties": some(st.dictionaries(st.text(max_size=4), hostile, max_size=2)),
                  "items": objects, "anyOf": hostile, "nullable": hostile, "enum": hostile},
    )  # fmt: skip
    return some(node)


def gemini_tools() -> st.SearchStrategy[Any]:
    declaration = st.fixed_dictionaries(
        {"name": text_or(st.sampled_from(["get_weather", "1x", "a" * 200, ""]))},
        optional={"description": text_or(hostile), "parameters": gemini_schema(),
                  "parametersJsonSchema": objects},
    )  # fmt: skip
    tool = st.one_of(
        st.fixed_dictionaries(
            {"functionDeclarations": some(st.lists(some(declaration), max_size=3))}
        ),
        st.fixed_dictionaries({"googleSearch": st.just({})}),
        st.fixed_dictionaries({"codeExecution": hostile}),
    )
    return some(st.lists(some(tool), max_size=3))


GEMINI_CONFIG: dict[str, st.SearchStrategy[Any]] = {
    "maxOutputTokens": some(st.sampled_from([1, 16, 0, 2**31, 10**7, 1.5])),
    "temperature": some(st.sampled_from([0, 1, 2, 3, Raw("1e309"), Raw("-1e309")])),
    "topP": hostile,
    "topK": some(st.sampled_from(HOSTILE_INTS)),
    "candidateCount": some(st.sampled_from([1, 2, 8, 9, 0])),
    "stopSequences": some(st.lists(text_or(hostile), max_size=6)),
    "seed": some(st.sampled_from(HOSTILE_INTS)),
    "responseMimeType": some(st.sampled_from(["application/json", "text/plain", "text/x.enum"])),
    "responseSchema": gemini_schema(),
    "responseJsonSchema": objects,
    "thinkingConfig": hostile,
    "responseModalities": hostile,
}
GEMINI_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "contents": gemini_contents(),
    "systemInstruction": some(
        st.fixed_dictionaries({"parts": some(st.lists(gemini_part(), max_size=2))})
    ),
    "system_instruction": some(st.fixed_dictionaries({"parts": st.just([{"text": "terse"}])})),
    "generationConfig": some(st.fixed_dictionaries({}, optional=GEMINI_CONFIG)),
    "tools": gemini_tools(),
    "toolConfig": some(st.fixed_dictionaries({"functionCallingConfig": some(st.fixed_dictionaries(
        {"mode": st.sampled_from(["AUTO", "ANY", "NONE", "x"])},
        optional={"allowedFunctionNames": hostile}))})),
    "safetySettings": hostile,
    "cachedContent": hostile,
}  # fmt: skip


def gemini_body() -> st.SearchStrategy[Any]:
    valid = {
        "contents": [{"role": "user", "parts": [{"text": "hi [sim:tokens=2]"}]}],
        "generationConfig": {"maxOutputTokens": 16},
    }
    return mutated(valid, GEMINI_FIELDS, None)


def mutated(
    valid: dict[str, Any],
    fields: dict[str, st.SearchStrategy[Any]],
    model: st.SearchStrategy[Any] | None,
) -> st.SearchStrategy[Any]:
    """A valid body with a field or two changed, or fields of any value, or anything."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        shape = draw(st.sampled_from(["valid"] * 6 + ["fields", "any"]))
        if shape == "valid":
            names = st.sampled_from(sorted(fields))
            changed = draw(st.lists(names, min_size=1, max_size=2, unique=True))
            body = {**valid, **{name: draw(fields[name]) for name in changed}}
            if model is not None:
                body.setdefault("model", draw(model))
            return body
        if shape == "fields":
            return draw(st.fixed_dictionaries({}, optional=fields))
        return draw(hostile)

    return build()


# --- Well formed: bodies the codecs accept, hostile only where anything goes ---
# (free text, tool names and arguments, schemas), steering the simulator's
# answer (tool calls, reasoning, no usage, cache reads) so that answers and
# streams are translated back as well.

DIRECTIVES = [
    "", "[sim:tokens=3]", "[sim:tool=f]", "[sim:reasoning=2]", "[sim:no_usage]", "[sim:cached=2]",
    "[sim:choices=1]", "[sim:cache_write=2]", "[sim:prompt_tokens=7]", "[sim:tokens=0]",
]  # fmt: skip
free_text = st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE_TEXT))
said = st.builds(lambda steer, text: f"{steer} {text}", st.sampled_from(DIRECTIVES), free_text)
tool_names = st.sampled_from(["f", "get_weather", "a.b-c:d", "x" * 64])
free_object = st.sampled_from([False] * 5 + [True]).flatmap(
    lambda deep: (
        st.just(DEEPISH) if deep else st.dictionaries(st.text(max_size=5), hostile, max_size=3)
    )
)


@st.composite
def wellformed_anthropic(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(tool_names)
    call = {"type": "tool_use", "id": "toolu_1", "name": name, "input": draw(free_object)}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": draw(st.one_of(free_text, st.just([{"type": "text", "text": "ok"}]))),
    }
    data = draw(st.sampled_from(BAD_BASE64[1:]))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    turns = [{"role": "user", "content": draw(said)}]
    if draw(st.booleans()):
        turns += [
            {"role": "assistant", "content": [{"type": "text", "text": draw(free_text)}, call]},
            {"role": "user", "content": [result, image, {"type": "text", "text": draw(said)}]},
        ]
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS)), "messages": turns,
                            "max_tokens": draw(st.integers(1, 64))}  # fmt: skip
    if draw(st.booleans()):
        schema = draw(st.one_of(free_object, st.just({"type": "object", "properties": {}})))
        body["tools"] = [{"name": name, "description": draw(free_text), "input_schema": schema}]
        body["tool_choice"] = draw(
            st.sampled_from(
                [
                    {"type": "auto"},
                    {"type": "any"},
                    {"type": "tool", "name": name},
                    {"type": "none"},
                ]
            )
        )
    optional = {"system": free_text, "temperature": st.floats(0, 1), "top_p": st.floats(0, 1),
                "stop_sequences": st.lists(free_text.filter(bool), max_size=3),
                "stream": st.booleans(), "metadata": st.just({"user_id": "u"}),
                "thinking": st.just({"type": "enabled", "budget_tokens": 1024})}  # fmt: skip
    body.update(draw(st.fixed_dictionaries({}, optional=optional)))
    return body


@st.composite
def wellformed_gemini(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(tool_names)
    call = {"functionCall": {"name": name, "args": draw(free_object)}}
    answer = {"functionResponse": {"name": name, "response": draw(free_object)}}
    image = {"inlineData": {"mimeType": "image/png", "data": draw(st.sampled_from(BAD_BASE64))}}
    contents = [{"role": "user", "parts": [{"text": draw(said)}]}]
    if draw(st.booleans()):
        contents += [
            {"role": "model", "parts": [{"text": draw(free_text)}, call]},
            {"role": "user", "parts": [answer, image, {"text": draw(said)}]},
        ]
    body: dict[str, Any] = {"contents": contents}
    if draw(st.booleans()):
        declaration = {"name": name, "description": draw(free_text)}
        schema = draw(st.one_of(free_object, st.just({"type": "OBJECT", "properties": {}})))
        declaration["parametersJsonSchema" if draw(st.booleans()) else "parameters"] = schema
        body["tools"] = [{"functionDeclarations": [declaration]}]
        mode = draw(st.sampled_from(["AUTO", "ANY", "NONE", "VALIDATED"]))
        body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    config = {"maxOutputTokens": st.integers(1, 64), "temperature": st.floats(0, 2),
              "candidateCount": st.integers(1, 3), "stopSequences": st.lists(
                  free_text.filter(bool), max_size=5), "seed": st.integers(-(2**31), 2**31 - 1),
              "responseMimeType": st.just("application/json"),
              "responseJsonSchema": free_object}  # fmt: skip
    body["generationConfig"] = draw(st.fixed_dictionaries({}, optional=config))
    if draw(st.booleans()):
        body["systemInstruction"] = {"parts": [{"text": draw(free_text)}]}
    return body


# --- In process: every codec's reading, translated for every upstream ---------


def translated(protocol: str, text: str, model: str) -> None:
    """Read ``text`` as ``protocol`` does and write the hub for every upstream:
    an ApiError is a 4xx, anything else a bug."""
    try:
        payload = orjson.loads(str(text))  # a Sent: orjson reads only a plain str
        hub = CODECS[protocol].request_to_hub(payload)
        hub.setdefault("model", model)
        written(payload)
        written(hub)
    except orjson.JSONDecodeError:
        return
    except ApiError as error:
        assert 400 <= error.status < 500, error
        return
    for upstream, codec in CODECS.items():
        try:
            orjson.dumps(codec.request_from_hub(hub))
        except ApiError as error:
            assert 400 <= error.status < 500, (upstream, error)


# In process, a reading costs microseconds: many more examples than a served call.
IN_PROCESS = settings(FUZZ, max_examples=EXAMPLES * 5)


@IN_PROCESS
@given(
    st.one_of(anthropic_body(st.sampled_from(MODELS)), wellformed_anthropic()).map(dump),
    st.sampled_from(MODELS),
)
def test_anthropic_bodies_translate_or_refuse(text: str, model: str) -> None:
    translated("anthropic", text, model)


@IN_PROCESS
@given(st.one_of(gemini_body(), wellformed_gemini()).map(dump), st.sampled_from(MODELS))
def test_gemini_bodies_translate_or_refuse(text: str, model: str) -> None:
    translated("gemini", text, model)


# --- Served: every route, through every upstream type -------------------------

NATIVE_PREFIXES = ("/v1/messages", "/v1beta/models/", "/v1/models/")
GEMINI_VERBS = ["generateContent", "streamGenerateContent", "countTokens"]
PATH_MODELS = [
    "../chat/completions", "..%2F..%2Fv1%2Fchat%2Fcompletions", "models/gpt-4o", "a:b",
    "%00", "gpt-4o?x=1", "gpt-4o#x", " ", "x" * 2000, "gpt-4o/../gpt-4o", "tunedModels/x",
]  # fmt: skip


def no_line_break(text: str) -> bool:
    return "\n" not in text and "\r" not in text


@st.composite
def native_call(draw: st.DrawFn) -> dict[str, Any]:
    """A request to a native route: method, path, query, headers, body."""
    model = st.one_of(st.sampled_from(MODELS * 4), st.sampled_from(HOSTILE_TEXT), hostile)
    key_header = draw(st.sampled_from(["x-api-key", "authorization", "x-goog-api-key", "query"]))
    route = draw(
        st.sampled_from(["messages", "messages", "count_tokens", "gemini", "gemini", "gemini"])
    )
    params: dict[str, str] = {}
    if route == "gemini":
        names = st.sampled_from(MODELS * 6), st.sampled_from(HOSTILE_TEXT), st.text(max_size=12)
        # Quoted, as an SDK sends it. A line break matches no route (Starlette's
        # path parameter stops at one), and the router's 404 speaks OpenAI.
        name = quote(draw(st.one_of(*names).filter(no_line_break)), safe="")
        name = draw(st.one_of(st.just(name), st.sampled_from(PATH_MODELS)))  # or a trick as is
        verb = draw(st.one_of(st.sampled_from(GEMINI_VERBS * 4), st.sampled_from(["", "x", ":"])))
        target = f"{name}:{verb}"
        path = draw(st.sampled_from(["/v1beta/models/", "/v1/models/"])) + target
        alt = draw(
            st.one_of(st.none(), st.sampled_from(["sse", "json", "proto", ""]), st.text(max_size=5))
        )
        if alt is not None:
            params["alt"] = alt
        body: Any = st.one_of(gemini_body(), wellformed_gemini())
    else:
        path = "/v1/messages" if route == "messages" else "/v1/messages/count_tokens"
        body = st.one_of(anthropic_body(model), wellformed_anthropic())
    shape = draw(st.sampled_from(["body"] * 9 + ["bytes"]))
    content = dump(draw(body)) if shape == "body" else draw(st.sampled_from(
        [b"", b"{", b"\xff\xfe", b'{"a": NaN}', b"null", b"[]", b'"x"', b"{}" * 2]))  # fmt: skip
    return {"path": path, "params": params, "content": content, "key_header": key_header,
            "protocol": "anthropic" if route != "gemini" else "gemini"}  # fmt: skip


# The field every answer of a native route has, by the path's end.
ANSWER_FIELDS = {
    "/v1/messages": "content",
    "/count_tokens": "input_tokens",
    ":countTokens": "totalTokens",
    ":generateContent": "candidates",
}


def assert_native_answer(got: httpx.Response) -> None:
    """A whole answer (a stream is text/event-stream) in its protocol's shape."""
    path = got.request.url.path
    [field] = [field for end, field in ANSWER_FIELDS.items() if path.endswith(end)]
    assert field in got.json(), (path, got.text[:300])


def assert_native_error(protocol: str, got: httpx.Response) -> None:
    assert got.headers.get("content-type", "").startswith("application/json"), got.text[:300]
    body = got.json()
    if protocol == "anthropic":
        assert body["type"] == "error" and set(body) <= {"type", "error", "request_id"}, body
        error = body["error"]
        assert set(error) == {"type", "message"} and isinstance(error["type"], str), error
    else:
        error = body["error"]
        assert set(body) == {"error"} and set(error) == {"code", "message", "status"}, body
        assert error["code"] == got.status_code and isinstance(error["status"], str), error
    assert isinstance(error["message"], str) and error["message"], error


def balance(owner: httpx.Client) -> Any:
    """The account's balance and its tokens' use, as the API shows them."""
    me, tokens = owner.get("/api/me"), owner.get("/api/tokens")
    assert me.status_code == tokens.status_code == 200, (me.text, tokens.text)
    return me.json()["balance_usd"], [t["used_usd"] for t in tokens.json()["data"]]


def fuzz(base_url: str, key: str, management_key: str) -> None:
    owner = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {management_key}"})
    caller = httpx.Client(base_url=base_url, timeout=30)

    def headers(call: dict[str, Any]) -> dict[str, str]:
        name = call["key_header"]
        if name == "query":
            call["params"]["key"] = key
            return {}
        return {name: f"Bearer {key}" if name == "authorization" else key}

    @FUZZ
    @given(native_call())
    def one(call: dict[str, Any]) -> None:
        before = balance(owner)
        sent = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        got = caller.post(call["path"], params=call["params"], content=call["content"],
                          headers={**sent, **headers(call)})  # fmt: skip
        assert got.status_code < 500, (call, got.status_code, got.text[:500])
        if not got.request.url.path.startswith(NATIVE_PREFIXES):
            return  # a trick the client resolved ("models/../x") leaves the native routes
        if got.status_code >= 400:
            assert_native_error(call["protocol"], got)
            assert balance(owner) == before, (call, got.status_code, got.text[:300])
        elif got.headers.get("content-type", "").startswith("application/json"):
            assert_native_answer(got)

    try:
        one()
    finally:
        owner.close()
        caller.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_hostile_input_on_every_native_route(
    database_url: str, catalog_models: list[Any], simulator: Simulator, upstream: str
) -> None:
    async with gateway(database_url, catalog_models, simulator, upstream) as served:
        account = await served.new_account("20")
        mkey = account["management_key"]
        key = (await served.new_token(mkey, quota_usd="10"))["key"]
        await asyncio.to_thread(fuzz, served.base_url, key, mkey)
