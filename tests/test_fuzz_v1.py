"""Hostile input for every /v1 route (SPEC §6): bodies of the wrong shape,
wrong types, huge numbers, NUL bytes, deep nesting, every catalog model on
every endpoint, prompt parts of every kind, through tokens of every mode.

Whatever comes in, the gateway answers with no 5xx, every error is JSON in
OpenAI's shape, and a rejected call changes neither the account's balance
nor the token's use.

Hypothesis drives a blocking client on a thread while the served gateway runs
on the test's event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway import relay
from tollway.simulator import Simulator
from tollway.types import ModelKind

from conftest import Served
from fuzzing import FUZZ, HOSTILE_TEXT, assert_json_error, dump, scalars, values

# Fields each endpoint reads, and some it only passes on.
BODY_FIELDS = {
    "POST /v1/chat/completions": [
        "model", "messages", "max_tokens", "max_completion_tokens", "n", "stream",
        "stream_options", "tools", "temperature", "user",
    ],
    "POST /v1/embeddings": ["model", "input", "dimensions", "encoding_format"],
    "POST /v1/completions": [
        "model", "prompt", "max_tokens", "n", "best_of", "echo", "logprobs", "suffix", "stream",
        "stream_options",
    ],
    "POST /v1/moderations": ["model", "input"],
    "POST /v1/rerank": ["model", "query", "documents", "top_n", "return_documents"],
    "POST /v1/images/generations": [
        "model", "prompt", "n", "size", "quality", "response_format", "stream", "background",
    ],
    # multipart endpoints: a JSON body (what the fuzz sends) carries no image file
    "POST /v1/images/edits": ["model", "prompt", "image", "n", "size", "input_fidelity"],
    "POST /v1/images/variations": ["model", "image", "n", "size"],
    "POST /v1/videos": ["model", "prompt", "seconds", "size"],
    "POST /v1/videos/{video_id}/remix": ["prompt", "model"],
    "POST /v1/audio/speech": [
        "model", "input", "voice", "response_format", "speed", "stream_format", "instructions",
    ],
    "POST /v1/audio/transcriptions": ["model", "file", "response_format", "stream", "prompt"],
    "POST /v1/audio/translations": ["model", "file", "response_format"],
    "POST /v1/responses": [
        "model", "input", "instructions", "max_output_tokens", "stream", "store", "tools",
        "tool_choice", "previous_response_id", "metadata", "reasoning", "text", "temperature",
    ],
}  # fmt: skip
QUERY_FIELDS = {
    "GET /v1/videos": ["after", "limit", "order"],
    "GET /v1/responses/{response_id}/input_items": ["after", "limit", "order"],
    "GET /v1/responses/{response_id}": ["stream", "starting_after"],
    "GET /v1/videos/{video_id}/content": ["variant"],
}
# A field's likely values, so that bodies get past the first check often.
USUAL: dict[str, list[Any]] = {
    "max_tokens": [1, 16],
    "max_completion_tokens": [1, 16],
    "n": [1, 2, 3],
    "stream": [True, False],
    "stream_options": [{"include_usage": True}],
    "input": ["hello", ["a", "b"], [1, 2, 3]],
    "prompt": ["a cat", "[sim:tokens=2]"],
    "size": ["1024x1024", "1792x1024", "720x1280", "auto", "256x256"],
    "quality": ["standard", "hd", "high", "low", "auto"],
    "seconds": ["4", "8", 4],
    "variant": ["video", "thumbnail", "spritesheet"],
    "order": ["asc", "desc"],
}


# A body each endpoint answers: the fuzz starts from it and changes a field or two.
VALID: dict[str, dict[str, Any]] = {
    "POST /v1/chat/completions": {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi [sim:tokens=2]"}],
        "max_tokens": 4,
    },
    "POST /v1/embeddings": {"model": "text-embedding-3-small", "input": "hi"},
    "POST /v1/completions": {"model": "gpt-3.5-turbo-instruct", "prompt": "hi", "max_tokens": 4},
    "POST /v1/moderations": {"input": "hi"},
    "POST /v1/rerank": {"model": "rerank-v3.5", "query": "hi", "documents": ["a", "b"]},
    "POST /v1/images/generations": {"model": "dall-e-3", "prompt": "a cat"},
    "POST /v1/images/edits": {"model": "gpt-image-1", "prompt": "a cat", "image": "x"},
    "POST /v1/images/variations": {"model": "dall-e-2", "image": "x"},
    "POST /v1/videos": {"model": "sora-2", "prompt": "a cat", "seconds": "4"},
    "POST /v1/videos/{video_id}/remix": {"prompt": "again"},
    "POST /v1/audio/speech": {"model": "tts-1", "input": "hi", "voice": "alloy"},
    "POST /v1/audio/transcriptions": {"model": "whisper-1", "file": "x"},
    "POST /v1/audio/translations": {"model": "whisper-1", "file": "x"},
    "POST /v1/responses": {"model": "gpt-4o", "input": "hi [sim:tokens=2]", "max_output_tokens": 9},
}


def v1_routes() -> list[str]:
    """Every route answering in OpenAI's shape, as 'METHOD /path' (the fuzz
    must know them all; the Anthropic and Gemini routes have test_fuzz_native)."""
    native = (relay.ANTHROPIC, relay.GEMINI)
    return sorted(
        f"{method} {path.replace('{model:path}', '{model}')}"
        for method, path, _, render in relay.ENDPOINTS
        if render not in native
    )


ROUTES = v1_routes()


@dataclass
class World:
    """What the fuzz runs against: the catalog's ids and one account's tokens."""

    models: list[str]
    by_kind: list[str]  # a few models of each kind
    keys: list[str]
    management_key: str


def text_or(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(["hi", "[sim:tokens=3]", "1 1 1 1"]), value)


def parts() -> st.SearchStrategy[Any]:
    url = text_or(st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "http://x/a.png"]))
    detail = {"detail": text_or(values)}
    image = st.one_of(st.fixed_dictionaries({"url": url}, optional=detail), values)
    audio = st.one_of(
        st.fixed_dictionaries({"data": text_or(values), "format": text_or(values)}), values
    )
    file_fields = {"file_id": text_or(values), "file_data": text_or(values)}
    file = st.one_of(st.fixed_dictionaries({}, optional=file_fields), values)
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": text_or(values)}),
        st.fixed_dictionaries({"type": st.just("image_url"), "image_url": image}),
        st.fixed_dictionaries({"type": st.just("input_audio"), "input_audio": audio}),
        st.fixed_dictionaries({"type": st.just("file"), "file": file}),
        st.fixed_dictionaries({"type": values}),
        values,
    )


def messages() -> st.SearchStrategy[Any]:
    message = st.fixed_dictionaries(
        {
            "role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool"]), values),
            "content": st.one_of(text_or(values), st.lists(parts(), max_size=5)),
        }
    )
    return st.one_of(st.lists(st.one_of(message, values), min_size=1, max_size=4), values)


def request_strategy(world: World) -> st.SearchStrategy[dict[str, Any]]:
    of_each_kind = st.sampled_from(world.by_kind)
    model = st.one_of(
        *[of_each_kind] * 6,
        st.sampled_from(world.models),
        st.sampled_from(HOSTILE_TEXT),
        values,
    )
    field_values = {
        "model": model,
        "messages": messages(),
        **{name: st.one_of(st.sampled_from(usual), values) for name, usual in USUAL.items()},
    }
    path_value = st.one_of(st.sampled_from(["video_x", "gpt-4o", "sora-2"]),
                           st.sampled_from(HOSTILE_TEXT), st.text(max_size=20))  # fmt: skip

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        route = draw(st.sampled_from(ROUTES + sorted(VALID) * 2))  # calls more often
        method, template = route.split(" ", 1)
        path = template
        for name in ("video_id", "model", "response_id"):
            if "{" + name + "}" in path:
                path = path.replace("{" + name + "}", quote(str(draw(path_value)), safe=""))
        params = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    name: st.one_of(st.sampled_from(USUAL.get(name, ["1"])), scalars).map(str)
                    for name in QUERY_FIELDS.get(route, [])
                },
            )
        )
        body: str | bytes | None = None
        if method == "POST":
            fields = {name: field_values.get(name, values) for name in BODY_FIELDS[route]}
            shape = draw(st.sampled_from(["valid", "valid", "valid", "fields", "any", "bytes"]))
            if shape == "valid":
                changed = draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True))
                mutated = {f: draw(fields[f]) for f in changed}
                if "model" in fields:
                    mutated.setdefault("model", draw(model))
                body = dump({**VALID[route], **mutated})
            elif shape == "fields":
                body = dump(draw(st.fixed_dictionaries({}, optional=fields)))
            elif shape == "any":
                body = dump(draw(values))
            else:
                body = draw(st.sampled_from([b"", b"{", b"\xff\xfe", b'{"a": NaN}', b"null"]))
        key = draw(st.sampled_from(world.keys))
        return {"method": method, "path": path, "params": params, "body": body, "key": key,
                "route": route}  # fmt: skip

    return build()


def money(client: httpx.Client) -> dict[str, Any]:
    """The account's balance and its tokens' use, as the API shows them."""
    me = client.get("/api/me")
    tokens = client.get("/api/tokens")
    assert me.status_code == tokens.status_code == 200, (me.text, tokens.text)
    return {
        "balance": me.json()["balance_usd"],
        "used": {t["id"]: t["used_usd"] for t in tokens.json()["data"]},
    }


def fuzz(base_url: str, world: World) -> None:
    owner = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {world.management_key}"}
    )
    callers = {key: httpx.Client(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"})
               for key in world.keys}  # fmt: skip

    @FUZZ
    @given(request_strategy(world))
    def one(call: dict[str, Any]) -> None:
        before = money(owner)
        headers = {"content-type": "application/json"} if call["body"] is not None else {}
        got = callers[call["key"]].request(
            call["method"], call["path"], params=call["params"], content=call["body"],
            headers=headers,
        )  # fmt: skip
        assert got.status_code < 500, (call, got.status_code, got.text[:500])
        if got.status_code >= 400:
            assert_json_error(got)
            assert money(owner) == before, (call, got.status_code, got.text[:300])

    try:
        one()
    finally:
        owner.close()
        for client in callers.values():
            client.close()


def test_the_fuzz_knows_every_v1_route() -> None:
    assert set(BODY_FIELDS) <= set(ROUTES)
    assert set(QUERY_FIELDS) <= set(ROUTES)
    posts = {route for route in ROUTES if route.startswith("POST ")}
    assert posts == set(BODY_FIELDS) == set(VALID), posts ^ set(BODY_FIELDS)


@pytest.mark.timeout(300)
async def test_hostile_input_on_every_v1_route(served: Served, simulator: Simulator) -> None:
    account = await served.new_account("20")
    mkey = account["management_key"]
    keys = [
        (await served.new_token(mkey, billing_mode=mode, quota_usd="10"))["key"]
        for mode in ("pay_per_use_priority", "pay_per_call", "pay_per_use")
    ]
    catalog = sorted(served.gw.state.catalog, key=lambda m: m.id)
    by_kind = [m.id for kind in ModelKind for m in [m for m in catalog if m.kind is kind][:8]]
    world = World([m.id for m in catalog], by_kind, keys, mkey)
    # Video jobs stay unfinished meanwhile: one settling in the background would
    # move the balance between a rejected call's two readings.
    rendering = simulator.config.video_render_ms
    simulator.update_config(video_render_ms=3_600_000)
    try:
        await asyncio.to_thread(fuzz, served.base_url, world)
    finally:
        simulator.update_config(video_render_ms=rendering)
