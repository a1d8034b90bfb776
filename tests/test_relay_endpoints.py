"""Which models each metered endpoint serves: a model of another kind is a
400 naming the endpoint for its kind, before anything is held or sent; and
no catalog model, on any /v1 metered endpoint, in any billing mode, makes
the gateway answer 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tollway.simulator import Simulator
from tollway.types import BillingMode, Model

from conftest import Served, add_channel, customer, serve, test_settings

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

HELLO = [{"role": "user", "content": "Hello there"}]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
IMAGES = "/v1/images/generations"
VIDEOS = "/v1/videos"


def body_for(path: str, model: str) -> dict[str, Any]:
    if path == CHAT:
        return {"model": model, "messages": HELLO, "max_tokens": 16}
    if path == EMBEDDINGS:
        return {"model": model, "input": "one two three"}
    return {"model": model, "prompt": "a lighthouse at dawn"}


def wrong_endpoint(got: httpx.Response) -> dict[str, Any]:
    assert got.status_code == 400, got.text
    error: dict[str, Any] = got.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "model",
        "wrong_endpoint",
    )
    return error


async def nothing_charged_or_sent(
    served: Served, mkey: str, simulator: Simulator, sent_before: int
) -> None:
    assert await served.balance_usd(mkey) == "10"
    async with served.client(mkey) as c:
        assert (await c.get("/api/usage")).json()["data"] == []
    assert simulator.stats.requests == sent_before, "a refused call reached the upstream"


WRONG = [
    # model, endpoint it was sent to, words the message must carry
    ("sora-2", CHAT, ["sora-2 is a video model", "POST /v1/videos"]),
    ("sora-2-pro", CHAT, ["sora-2-pro is a video model", "POST /v1/videos"]),
    ("veo-3.0-generate-001", CHAT, ["is a video model", "POST /v1/videos"]),
    ("sora-2", EMBEDDINGS, ["sora-2 is a video model", "POST /v1/videos"]),
    ("sora-2-pro", EMBEDDINGS, ["is a video model", "POST /v1/videos"]),
    ("veo3", EMBEDDINGS, ["veo-3.0-generate-001 is a video model", "POST /v1/videos"]),
    ("sora_video2", CHAT, ["is a video model", "POST /v1/videos"]),
    ("dall-e-3", CHAT, ["dall-e-3 is an image model", "POST /v1/images/generations"]),
    ("flux-1.1-pro", EMBEDDINGS, ["is an image model", "POST /v1/images/generations"]),
    ("gpt-4o", EMBEDDINGS, ["gpt-4o is a multimodal model", "POST /v1/chat/completions"]),
    ("text-embedding-3-small", CHAT, ["is an embedding model", "POST /v1/embeddings"]),
    ("text-embedding-3-small", IMAGES, ["is an embedding model", "POST /v1/embeddings"]),
    ("gpt-4o", IMAGES, ["is a multimodal model", "POST /v1/chat/completions"]),
    ("sora-2", IMAGES, ["is a video model", "POST /v1/videos"]),
    ("gpt-4o", VIDEOS, ["is a multimodal model", "POST /v1/chat/completions"]),
    ("dall-e-3", VIDEOS, ["is an image model", "POST /v1/images/generations"]),
]


@pytest.mark.parametrize(("model", "path", "words"), WRONG)
@pytest.mark.parametrize("mode", ["pay_per_use_priority", "pay_per_call"])
async def test_a_model_on_an_endpoint_of_another_kind_is_a_400_naming_the_right_one(
    served: Served, simulator: Simulator, model: str, path: str, words: list[str], mode: str
) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    sent = simulator.stats.requests
    async with served.client(key) as c:
        error = wrong_endpoint(await c.post(path, json=body_for(path, model)))
    for word in words:
        assert word in error["message"], error["message"]
    assert path.removeprefix("/") in error["message"]  # and where it was sent
    await nothing_charged_or_sent(served, mkey, simulator, sent)


async def test_the_kind_is_checked_before_the_billing_mode(
    served: Served, simulator: Simulator
) -> None:
    """A pay_per_use token sending sora-2 to chat is told about the endpoint
    first: no mode would make that call work."""
    mkey, key = await customer(served, billing_mode="pay_per_use")
    sent = simulator.stats.requests
    async with served.client(key) as c:
        wrong_endpoint(await c.post(CHAT, json=body_for(CHAT, "sora-2")))
    await nothing_charged_or_sent(served, mkey, simulator, sent)


async def test_audio_models_are_served_by_chat(served: Served) -> None:
    """gpt-4o-audio-preview and gpt-audio are chat-completions models."""
    _, key = await customer(served)
    async with served.client(key) as c:
        got = await c.post(CHAT, json=body_for(CHAT, "gpt-4o-audio-preview"))
        assert got.status_code == 200, got.text
        error = wrong_endpoint(await c.post(EMBEDDINGS, json=body_for(EMBEDDINGS, "gpt-audio")))
    assert "gpt-audio is an audio model" in error["message"]
    assert "POST /v1/chat/completions" in error["message"]


async def test_model_listing_is_not_filtered_by_kind(served: Served) -> None:
    _, key = await customer(served)
    async with served.client(key) as c:
        ids = {m["id"] for m in (await c.get("/v1/models")).json()["data"]}
        one = await c.get("/v1/models/sora-2")
    assert {"gpt-4o", "sora-2", "dall-e-3", "text-embedding-3-small", "gpt-audio"} <= ids
    assert one.status_code == 200


async def test_a_remix_of_a_job_whose_model_is_no_longer_video_is_refused(
    served: Served,
) -> None:
    """The remix resolves its source's model with the same check."""
    _, key = await customer(served)
    async with served.client(key) as c:
        made = await c.post(VIDEOS, json=body_for(VIDEOS, "sora_video2"))
        assert made.status_code == 200, made.text
        edited = await served.admin.patch("/api/models/sora_video2", json={"kind": "image"})
        assert edited.status_code == 200, edited.text
        remix = await c.post(f"{VIDEOS}/{made.json()['id']}/remix", json={"prompt": "again"})
    error = wrong_endpoint(remix)
    assert "sora_video2 is an image model" in error["message"]
    assert "/remix" in error["message"]


async def test_only_a_video_model_may_be_priced_per_second(served: Served) -> None:
    """A per-second price has no seconds to count on chat, embeddings or
    images: such a model could only answer 500 there, so it is refused."""
    edited = await served.admin.patch("/api/models/sora-2", json={"kind": "text"})
    assert edited.status_code == 400, edited.text
    assert "per-second" in edited.json()["error"]["message"]
    made = await served.admin.post(
        "/api/models",
        json={"id": "clip-1", "kind": "image", "per_call": {"price": "0.1", "unit": "second"}},
    )
    assert made.status_code == 400, made.text
    _, key = await customer(served)
    async with served.client(key) as c:
        wrong_endpoint(await c.post(CHAT, json=body_for(CHAT, "sora-2")))  # still a video model


QUOTES = [
    ("sora-2", {"messages": HELLO}, "POST /v1/videos"),
    ("sora-2", {"input": "one"}, "POST /v1/videos"),
    ("dall-e-3", {"messages": HELLO}, "POST /v1/images/generations"),
    ("gpt-4o", {"prompt": "a cat"}, "POST /v1/chat/completions"),
    ("gpt-4o", {"query": "q", "documents": ["a"]}, "POST /v1/chat/completions"),
    ("text-embedding-3-small", {"messages": HELLO}, "POST /v1/embeddings"),
]


@pytest.mark.parametrize(("model", "request_body", "words"), QUOTES)
async def test_a_quote_for_a_model_on_the_wrong_endpoint_gets_the_same_refusal(
    served: Served, model: str, request_body: dict[str, Any], words: str
) -> None:
    mkey, _ = await customer(served)
    async with served.client(mkey) as c:
        got = await c.post(
            "/api/quote",
            json={"model": model, "billing_mode": "pay_per_use_priority", "request": request_body},
        )
    error = wrong_endpoint(got)
    assert words in error["message"], error["message"]


# --- no 5xx, whatever the model, endpoint and mode -----------------------------

MODES = [mode.value for mode in BillingMode]
CONCURRENCY = 8
# Besides each endpoint's plainest body: the options that change what is billed.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    CHAT: [{}, {"stream": True, "n": 2}],
    EMBEDDINGS: [{}, {"input": ["one", "two"]}],
    IMAGES: [
        {},
        {"size": "1792x1024", "quality": "hd", "n": 2},
        {"size": "256x256"},
        {"size": "auto", "quality": "auto"},
    ],
    VIDEOS: [{}, {"seconds": "8", "size": "1792x1024"}],
}


@pytest.fixture
async def served_hybrid(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    """Hybrid enabled, so every mode has a token."""
    async with serve(test_settings(database_url, allow_hybrid=True), catalog_models) as s:
        await add_channel(s, simulator.base_url)
        yield s


def well_formed(got: httpx.Response, what: str) -> None:
    assert got.status_code < 500, f"{what}: {got.status_code} {got.text}"
    if got.status_code >= 400:
        error = got.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, what
        assert isinstance(error["message"], str) and error["message"], what


async def test_no_catalog_model_on_any_endpoint_in_any_mode_answers_5xx(
    served_hybrid: Served, catalog_models: list[Model]
) -> None:
    served = served_hybrid
    account = await served.new_account("100000")
    keys = {
        mode: (await served.new_token(account["management_key"], billing_mode=mode))["key"]
        for mode in MODES
    }
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: dict[str, int] = {}
    created: list[str] = []
    bad: list[str] = []

    async def one(c: httpx.AsyncClient, path: str, body: dict[str, Any], what: str) -> None:
        async with gate:
            got = await c.post(path, json=body)
        try:
            well_formed(got, what)
        except AssertionError as exc:
            bad.append(str(exc).splitlines()[0][:300])
        outcomes[what] = got.status_code
        if path == VIDEOS and got.status_code == 200:
            created.append(got.json()["id"])

    clients = {mode: served.client(key) for mode, key in keys.items()}
    try:
        await asyncio.gather(
            *(
                one(
                    clients[mode],
                    path,
                    {**body_for(path, model.id), **variant},
                    f"{model.id} {path} {mode} {variant}",
                )
                for model in catalog_models
                for path, variants in VARIANTS.items()
                for variant in variants
                for mode in MODES
            )
        )
        assert not bad, f"{len(bad)} bad answers:\n" + "\n".join(bad[:40])
        assert created, "no video job was made: the remix leg tests nothing"
        await asyncio.gather(
            *(
                one(clients[mode], f"{VIDEOS}/{job}/remix", {"prompt": "again"}, f"remix {mode}")
                for job in created
                for mode in MODES
            )
        )
    finally:
        for client in clients.values():
            await client.aclose()
    assert not bad, f"{len(bad)} bad answers:\n" + "\n".join(bad[:40])
    # Every kind was served somewhere (the enumeration reached the upstream).
    served_ok = {what.split(" ")[1] for what, status in outcomes.items() if status == 200}
    assert served_ok >= {CHAT, EMBEDDINGS, IMAGES, VIDEOS}


async def test_no_quote_for_a_catalog_model_answers_5xx(
    served_hybrid: Served, catalog_models: list[Model]
) -> None:
    served = served_hybrid
    account = await served.new_account("0")
    bodies = [body_for(path, "-") for path in (CHAT, EMBEDDINGS, IMAGES)]
    async with served.client(account["management_key"]) as c:
        for model in catalog_models:
            for mode in MODES:
                for body in bodies:
                    request = {k: v for k, v in body.items() if k != "model"}
                    got = await c.post(
                        "/api/quote",
                        json={"model": model.id, "billing_mode": mode, "request": request},
                    )
                    well_formed(got, f"quote {model.id} {mode} {sorted(request)}")
                got = await c.post(
                    "/api/quote", json={"model": model.id, "billing_mode": mode, "n": 2}
                )
                well_formed(got, f"quote {model.id} {mode} from fields")
