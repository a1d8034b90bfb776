"""Videos through a served gateway and the simulator, driven by the official
SDK: the charge for each model and mode to the nano-USD, the refusals and
their messages, refunds when a job fails or expires upstream with nobody
polling, one charge however many pollers and replicas, and jobs private to
the account that made them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import httpx
import openai
import pytest
from sqlalchemy import select

from tollway.db.schema import ledger, video_jobs
from tollway.settings import Settings
from tollway.simulator import Simulator, SimulatorConfig
from tollway.simulator.media import mp4_placeholder
from tollway.types import NANO_PER_USD, Model, nano_to_usd
from tollway.videos.reconciler import reconcile_once, reconcile_videos
from tollway.videos.store import load_job

from conftest import Served, add_channel, customer, sdk, serve, test_settings

# The SDK marks the Sora methods deprecated; that warning is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

RECONCILE_EVERY_S = 0.05
SLOW = "[sim:video_render_ms=60000]"  # a job that stays in progress for the test


@contextlib.asynccontextmanager
async def serve_videos(settings: Settings, models: list[Model]) -> AsyncIterator[Served]:
    """A served gateway with a fast video reconciler beside app.py's own."""
    async with serve(settings, models) as served:
        reconciler = asyncio.create_task(reconcile_videos(served.gw, every_s=RECONCILE_EVERY_S))
        try:
            yield served
        finally:
            reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler


@pytest.fixture
async def sim(simulator: Simulator) -> AsyncIterator[Simulator]:
    simulator.update_config(video_queue_ms=20, video_render_ms=100, video_failure_rate=0.0)
    yield simulator
    defaults = SimulatorConfig()
    simulator.update_config(
        video_queue_ms=defaults.video_queue_ms,
        video_render_ms=defaults.video_render_ms,
        video_failure_rate=defaults.video_failure_rate,
    )


@pytest.fixture
async def served(
    database_url: str, catalog_models: list[Model], sim: Simulator
) -> AsyncIterator[Served]:
    async with serve_videos(test_settings(database_url), catalog_models) as s:
        await add_channel(s, sim.base_url)
        yield s


async def me(served: Served, management_key: str) -> dict[str, Any]:
    async with served.client(management_key) as c:
        got = await c.get("/api/me")
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


async def usage_records(served: Served, management_key: str) -> list[dict[str, Any]]:
    async with served.client(management_key) as c:
        got = await c.get("/api/usage")
    assert got.status_code == 200, got.text
    records: list[dict[str, Any]] = got.json()["data"]
    return records


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def spent(balance_usd: str, credit: str = "10") -> int:
    return int((Decimal(credit) - Decimal(balance_usd)) * NANO_PER_USD)


async def upstream_id(served: Served, video_id: str) -> str:
    job = await load_job(served.gw, video_id)
    assert job is not None
    return job.upstream_id


# --- the charge for each model and mode ----------------------------------------

# model, seconds, size, token mode -> nano-USD, "priced line=unit price (USD)"
CHARGES = [
    ("sora_video2", None, None, "pay_per_use_priority", 150_000_000, "videos=0.15"),
    ("sora_video2", "10", "1280x720", "pay_per_call", 150_000_000, "videos=0.15"),
    ("sora-2", None, None, "pay_per_use_priority", 400_000_000, "seconds:720x1280/standard=0.1"),
    ("sora-2", "8", "1280x720", "pay_per_call_priority", 800_000_000,
     "seconds:1280x720/standard=0.1"),
    ("sora-2-pro", "12", "1792x1024", "pay_per_call", 6_000_000_000,
     "seconds:1792x1024/standard=0.5"),
    ("sora-2-pro", "4", "1280x720", "pay_per_use_priority", 1_200_000_000,
     "seconds:1280x720/standard=0.3"),
    ("veo3.1", "8", None, "pay_per_use_priority", 3_200_000_000, "seconds=0.4"),
    ("veo-3.1-fast-generate-preview", "4", "720x1280", "pay_per_call", 600_000_000,
     "seconds=0.15"),
    ("veo2", None, None, "pay_per_call_priority", 2_800_000_000, "seconds=0.35"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "seconds", "size", "mode", "nano", "price"), CHARGES)
async def test_charge_per_model_and_mode(
    served: Served,
    model: str,
    seconds: str | None,
    size: str | None,
    mode: str,
    nano: int,
    price: str,
) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    asked: dict[str, Any] = {"model": model}
    if seconds:
        asked["seconds"] = seconds
    if size:
        asked["size"] = size
    async with sdk(served, key) as client:
        created = await client.videos.create(prompt="a lighthouse at dusk", **asked)
        assert created.id.startswith("video_") and created.status in ("queued", "in_progress")
        assert created.id != await upstream_id(served, created.id)
        done = await client.videos.poll(created.id)
        assert (done.id, done.status) == (created.id, "completed")
        raw = await client.videos.with_raw_response.retrieve(created.id)
        content = await client.videos.download_content(created.id)
    model_id = served.gw.state.catalog.resolve(model).id
    made = f"{model_id}\x00a lighthouse at dusk\x00{done.seconds}\x00{done.size}"
    assert content.content == mp4_placeholder(made)
    assert content.response.headers["content-type"] == "video/mp4"
    assert raw.headers["x-tollway-billing-method"] == "per_call"
    assert raw.headers["x-tollway-cost-usd"] == nano_to_usd(nano)
    account = await me(served, mkey)
    assert spent(account["balance_usd"]) == nano
    assert account["held_usd"] == "0"
    [record] = await usage_records(served, mkey)
    assert record["request_id"] == raw.headers["x-request-id"]
    assert (record["model"], record["endpoint"]) == (model_id, "videos")
    assert (record["billing_mode"], record["method"]) == (mode, "per_call")
    assert (record["items"], record["status"], record["cost_usd"]) == (1, "ok", nano_to_usd(nano))
    line, _, unit_usd = price.partition("=")
    assert record["unit_prices_usd"] == {line: unit_usd}
    assert f"{done.seconds} s at {done.size}" in record["detail"]


async def test_hold_at_creation_settled_on_completion(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(
            prompt="slow [sim:video_render_ms=600]", model="sora-2", seconds="8"
        )
        account = await me(served, mkey)
        assert (account["balance_usd"], account["held_usd"]) == ("10", "0.8")
        assert await usage_records(served, mkey) == []
        await client.videos.poll(video.id)
    account = await me(served, mkey)
    assert (account["balance_usd"], account["held_usd"]) == ("9.2", "0")


async def test_completed_job_is_charged_with_nobody_polling(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        await client.videos.create(prompt="unwatched", model="sora_video2")

    async def charged() -> bool:
        return (await me(served, mkey))["balance_usd"] == "9.85"

    await eventually(charged)
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("ok", "0.15")


# --- refusals -----------------------------------------------------------------

REFUSALS = [
    # token mode, create fields -> status, code, param, words in the message
    ("pay_per_use", {"model": "sora_video2"}, 403, "billing_mode_mismatch", None,
     ["pay_per_use", "sora_video2", "per_call", "pay_per_use_priority"]),
    ("pay_per_use", {"model": "sora-2"}, 403, "billing_mode_mismatch", None,
     ["pay_per_use", "pay_per_call"]),
    ("pay_per_use_priority", {"model": "sora-2", "seconds": "5"}, 400, "invalid_request",
     "seconds", ["'4', '8' or '12'"]),
    ("pay_per_use_priority", {"model": "sora_video2", "seconds": "4"}, 400, "invalid_request",
     "seconds", ["'10'"]),
    ("pay_per_use_priority", {"model": "sora-2", "size": "1792x1024"}, 400, "invalid_request",
     "size", ["no price for size 1792x1024", "720x1280, 1280x720"]),
    ("pay_per_use_priority", {"model": "sora-2-pro", "size": "640x480"}, 400, "invalid_request",
     "size", ["720x1280, 1280x720, 1024x1792, 1792x1024"]),
    ("pay_per_use_priority", {"model": "gpt-4o"}, 400, "wrong_endpoint", "model",
     ["gpt-4o is a multimodal model", "use POST /v1/chat/completions", "serves video models"]),
    ("pay_per_use_priority", {"model": "sora-3"}, 404, "model_not_found", "model", ["sora-3"]),
    ("pay_per_use_priority", {"model": "sora-2", "prompt": "  "}, 400, "invalid_request",
     "prompt", ["prompt"]),
    # $1 of credit, a $6 video
    ("pay_per_use_priority", {"model": "sora-2-pro", "seconds": "12", "size": "1024x1792"}, 402,
     "insufficient_quota", None, ["costs $6", "account balance", "available ($1)"]),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "fields", "status", "code", "param", "words"), REFUSALS)
async def test_refusals_cost_nothing_and_reach_no_upstream(
    served: Served,
    sim: Simulator,
    mode: str,
    fields: dict[str, Any],
    status: int,
    code: str,
    param: str | None,
    words: list[str],
) -> None:
    mkey, key = await customer(served, credit="1", billing_mode=mode)
    creates = sim.stats.by_path.get("/v1/videos", 0)
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.videos.create(**{"prompt": "p", **fields})
    error = refused.value
    assert (error.status_code, error.code) == (status, code)
    body = cast(dict[str, Any], error.body)
    assert body["param"] == param
    for word in words:
        assert word in body["message"], body["message"]
    assert sim.stats.by_path.get("/v1/videos", 0) == creates
    account = await me(served, mkey)
    assert (account["balance_usd"], account["held_usd"]) == ("1", "0")
    assert await usage_records(served, mkey) == []


async def test_token_quota_refuses_the_hold(served: Served) -> None:
    _, key = await customer(served, quota_usd="0.5")
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.videos.create(prompt="p", model="sora-2", seconds="8")
    assert (refused.value.status_code, refused.value.code) == (402, "insufficient_quota")
    assert "API key's quota" in refused.value.message


async def test_bad_bodies(served: Served) -> None:
    _, key = await customer(served)
    async with served.client(key) as c:
        got = await c.post("/v1/videos", content=b"prompt=p", headers={"content-type": "text/x"})
        assert got.status_code == 415
        got = await c.post(
            "/v1/videos", content=b"{oops", headers={"content-type": "application/json"}
        )
        assert (got.status_code, got.json()["error"]["code"]) == (400, "invalid_json")
        got = await c.post(
            "/v1/videos", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
        )
        assert got.status_code == 400
        got = await c.post("/v1/videos", json={"prompt": "p", "seconds": 4.5})
        assert (got.status_code, got.json()["error"]["param"]) == (400, "seconds")
        got = await c.get("/v1/videos", params={"limit": "0"})
        assert (got.status_code, got.json()["error"]["param"]) == (400, "limit")
        got = await c.get("/v1/videos", params={"after": "video_nope"})
        assert (got.status_code, got.json()["error"]["param"]) == (400, "after")
    async with served.client("sk-wrong") as c:
        got = await c.get("/v1/videos")
        assert got.status_code == 401


# --- refunds ------------------------------------------------------------------


async def test_upstream_refusal_at_creation_releases_the_hold(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.videos.create(prompt="p [sim:error=500]", model="sora-2")
    assert (failed.value.status_code, failed.value.code) == (502, "upstream_error")
    account = await me(served, mkey)
    assert (account["balance_usd"], account["held_usd"]) == ("10", "0")
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"], record["items"]) == ("upstream_error", "0", 0)


async def test_failed_video_is_refunded_with_nobody_polling(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt="doomed [sim:video_fail]", model="sora-2")
        assert (await me(served, mkey))["held_usd"] == "0.4"

        async def refunded() -> bool:
            return bool(await usage_records(served, mkey))

        await eventually(refunded)
        account = await me(served, mkey)
        assert (account["balance_usd"], account["held_usd"]) == ("10", "0")
        [record] = await usage_records(served, mkey)
        assert (record["status"], record["cost_usd"]) == ("video_failed", "0")
        assert "video_generation_failed" in record["detail"]
        failed = await client.videos.retrieve(video.id)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.code == "video_generation_failed"
        with pytest.raises(openai.NotFoundError) as gone:
            await client.videos.download_content(video.id)
        assert gone.value.code == "video_failed"
    assert len(await usage_records(served, mkey)) == 1


async def test_video_expired_upstream_is_refunded(served: Served, sim: Simulator) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt=f"forgotten {SLOW}", model="sora-2")
    remote = await upstream_id(served, video.id)
    async with httpx.AsyncClient() as http:
        got = await http.post(f"http://{sim.host}:{sim.port}/_sim/videos/{remote}/expire")
        assert got.status_code == 200

    async def refunded() -> bool:
        return bool(await usage_records(served, mkey))

    await eventually(refunded)
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("video_expired", "0")
    assert (await me(served, mkey))["balance_usd"] == "10"


async def test_a_job_that_never_finishes_is_given_up(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt=f"endless {SLOW}", model="sora-2")
        await reconcile_once(served.gw, max_age_s=0)
        [record] = await usage_records(served, mkey)
        assert (record["status"], record["cost_usd"]) == ("timed_out", "0")
        assert (await me(served, mkey))["held_usd"] == "0"
        seen = await client.videos.retrieve(video.id)
        assert seen.status == "failed" and seen.error is not None
        assert seen.error.code == "video_timed_out"
        with pytest.raises(openai.NotFoundError):
            await client.videos.download_content(video.id)


async def test_delete_cancels_and_refunds_an_unfinished_job(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt=f"never mind {SLOW}", model="sora-2")
        deleted = await client.videos.delete(video.id)
        assert (deleted.id, deleted.deleted) == (video.id, True)
        with pytest.raises(openai.NotFoundError):
            await client.videos.retrieve(video.id)
        assert (await client.videos.list()).data == []
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("cancelled", "0")
    assert (await me(served, mkey))["balance_usd"] == "10"


async def test_delete_after_completion_keeps_the_charge(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt="keep", model="sora_video2")
        await asyncio.sleep(0.3)  # done upstream; maybe not seen yet
        await client.videos.delete(video.id)
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("ok", "0.15")


# --- exactly once -------------------------------------------------------------


async def test_concurrent_polls_on_two_replicas_charge_once(
    served: Served, database_url: str, catalog_models: list[Model]
) -> None:
    mkey, key = await customer(served)
    async with (
        serve_videos(test_settings(database_url), catalog_models) as replica,
        sdk(served, key) as one,
        sdk(replica, key) as two,
    ):
        video = await one.videos.create(
            prompt="busy [sim:video_render_ms=400]", model="sora-2", seconds="4"
        )

        async def poll(client: openai.AsyncOpenAI) -> tuple[str, str | None]:
            while True:
                raw = await client.videos.with_raw_response.retrieve(video.id)
                seen = raw.parse()
                if seen.status not in ("queued", "in_progress"):
                    return seen.status, raw.headers.get("x-tollway-cost-usd")
                await asyncio.sleep(0.005)

        ends = await asyncio.gather(*(poll(c) for c in [one, two] * 12))
        assert set(ends) == {("completed", "0.4")}  # every poller sees the one charge
        first = await one.videos.download_content(video.id)
        second = await two.videos.download_content(video.id)
        assert first.content == second.content
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("ok", "0.4")
    assert (await me(served, mkey))["balance_usd"] == "9.6"
    job = await load_job(served.gw, video.id)
    assert job is not None and job.cost_nano == 400_000_000
    async with served.gw.engine.connect() as conn:
        kinds = (
            await conn.execute(select(ledger.c.kind).where(ledger.c.request_id == job.request_id))
        ).scalars()
        assert sorted(kinds) == ["hold", "settle"]


async def test_a_claimed_close_left_unrecorded_is_finished_once(served: Served) -> None:
    """A process that stopped between claiming a job's end and the ledger: the
    reconciler closes the hold, and closing it again changes nothing."""
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(prompt=f"crash {SLOW}", model="sora_video2")
    a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
    async with served.gw.engine.begin() as conn:  # what a crash after the claim leaves
        await conn.execute(
            video_jobs.update()
            .where(video_jobs.c.id == video.id)
            .values(state="completed", closed_at=a_minute_ago)
        )
    await reconcile_once(served.gw, max_age_s=3600)
    await reconcile_once(served.gw, max_age_s=3600)
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("ok", "0.15")
    assert (await me(served, mkey))["balance_usd"] == "9.85"


async def test_stale_hold_release_leaves_video_holds_to_their_jobs(served: Served) -> None:
    """A video may render for longer than any call runs: its hold is closed by
    its job (or given up at the job's maximum age), never as a stale hold."""
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        await client.videos.create(prompt=f"long {SLOW}", model="sora-2")
    await served.gw.ledger.release_stale_holds(timedelta(0))
    assert (await me(served, mkey))["held_usd"] == "0.4"


# --- ownership ----------------------------------------------------------------


async def test_only_the_owning_account_sees_its_jobs(served: Served) -> None:
    owner_mkey, owner_key = await customer(served)
    second_key = (await served.new_token(owner_mkey))["key"]
    _, other_key = await customer(served)
    async with sdk(served, owner_key) as owner, sdk(served, other_key) as other:
        video = await owner.videos.create(prompt="mine", model="sora_video2")
        await owner.videos.poll(video.id)
        for attempt in (
            lambda: other.videos.retrieve(video.id),
            lambda: other.videos.download_content(video.id),
            lambda: other.videos.delete(video.id),
            lambda: other.videos.remix(video.id, prompt="ours now"),
        ):
            with pytest.raises(openai.NotFoundError) as hidden:
                await attempt()
            body = cast(dict[str, Any], hidden.value.body)
            assert body["message"] == f"No video found with id '{video.id}'."
        assert (await other.videos.list()).data == []
        async with served.client(other_key) as c:
            got = await c.get("/v1/videos", params={"after": video.id})
            assert got.status_code == 400
    async with sdk(served, second_key) as same_account:
        assert (await same_account.videos.retrieve(video.id)).status == "completed"
        assert (await same_account.videos.download_content(video.id)).content


# --- the API's shape ----------------------------------------------------------


async def test_list_pages_newest_first(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        made = [
            (await client.videos.create(prompt=f"n{i} {SLOW}", model="sora-2")).id for i in range(3)
        ]
        page = await client.videos.list(limit=2)
        assert [v.id for v in page.data] == made[:0:-1] and page.has_more
        rest = await client.videos.list(limit=2, after=page.data[-1].id)
        assert [v.id for v in rest.data] == made[:1] and not rest.has_more
        oldest = await client.videos.list(order="asc")
        assert [v.id for v in oldest.data] == made
        assert {v.status for v in oldest.data} <= {"queued", "in_progress"}
        for video_id in made:
            await client.videos.delete(video_id)


async def test_json_multipart_and_aliases_reach_the_upstream_explicitly(
    served: Served, sim: Simulator
) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        await client.videos.create(
            prompt="with a reference",
            model="veo3.1-fast",
            input_reference=("ref.png", b"\x89PNG-bytes", "image/png"),
        )
        sent = sim.stats.recent[-1]["body"]
        assert sent["model"] == "veo-3.1-fast-generate-preview"
        assert (sent["seconds"], sent["size"]) == ("8", "1280x720")  # the defaults, said
        assert sent["input_reference"] == {
            "filename": "ref.png",
            "content_type": "image/png",
            "bytes": 10,
        }
    async with served.client(key) as c:
        got = await c.post("/v1/videos", json={"prompt": "json", "seconds": 8})
        assert got.status_code == 200, got.text
        assert (got.json()["model"], got.json()["seconds"]) == ("sora-2", "8")
        assert got.headers["x-tollway-billing-method"] == "per_call"
        seen = await c.get(f"/v1/videos/{got.json()['id']}")
        assert seen.status_code == 200 and seen.json()["id"] == got.json()["id"]
        assert int(seen.headers["openai-poll-after-ms"]) > 0  # the upstream's, passed on
    assert sim.stats.recent[-1]["body"] == {
        "prompt": "json",
        "seconds": "8",
        "model": "sora-2",
        "size": "720x1280",
    }


async def test_content_variants_and_readiness(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        video = await client.videos.create(
            prompt="soon [sim:video_render_ms=300]", model="sora-2", size="1280x720"
        )
        with pytest.raises(openai.NotFoundError) as early:
            await client.videos.download_content(video.id)
        assert early.value.code == "video_not_ready"
        await client.videos.poll(video.id)
        thumbnail = await client.videos.download_content(video.id, variant="thumbnail")
        assert thumbnail.response.headers["content-type"] == "image/png"
        assert thumbnail.content.startswith(b"\x89PNG")
    async with served.client(key) as c:
        got = await c.get(f"/v1/videos/{video.id}/content", params={"variant": "gif"})
        assert (got.status_code, got.json()["error"]["param"]) == (400, "variant")


async def test_remix_is_billed_like_its_source(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        source = await client.videos.create(prompt="first", model="sora-2", seconds="8")
        with pytest.raises(openai.BadRequestError):  # not completed yet: the upstream says so
            await client.videos.remix(source.id, prompt="too soon")
        await client.videos.poll(source.id)
        remix = await client.videos.remix(source.id, prompt="second")
        assert remix.remixed_from_video_id == source.id and remix.id != source.id
        done = await client.videos.poll(remix.id)
        assert (done.status, done.seconds) == ("completed", "8")
    records = await usage_records(served, mkey)
    assert sorted((r["endpoint"], r["status"], r["cost_usd"]) for r in records) == [
        ("videos", "ok", "0.8"),
        ("videos/remix", "ok", "0.8"),
        ("videos/remix", "upstream_error", "0"),
    ]
    assert (await me(served, mkey))["balance_usd"] == "8.4"


async def test_quote_for_a_video_request(served: Served) -> None:
    mkey, _ = await customer(served)
    async with served.client(mkey) as c:
        got = await c.post(
            "/api/quote",
            json={
                "model": "sora-2",
                "billing_mode": "pay_per_use_priority",
                "request": {"prompt": "a cat", "seconds": "8", "size": "1280x720"},
            },
        )
        assert got.status_code == 200, got.text
        assert (got.json()["method"], got.json()["cost_usd"]) == ("per_call", "0.8")
        flat = await c.post(
            "/api/quote",
            json={
                "model": "sora_video2",
                "billing_mode": "pay_per_call",
                "request": {"prompt": "a cat"},
            },
        )
        assert flat.json()["cost_usd"] == "0.15"
        bad = await c.post(
            "/api/quote",
            json={
                "model": "sora-2",
                "billing_mode": "pay_per_call",
                "request": {"prompt": "x", "seconds": "7"},
            },
        )
        assert bad.status_code == 400
