"""The simulator's images and videos endpoints, over loopback with the openai SDK and aiohttp."""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import openai
import pytest

from tollway.simulator import ConfigError, Simulator, SimulatorConfig, start
from tollway.simulator.images import GPT_IMAGE_OUTPUT_TOKENS
from tollway.simulator.media import PNG_SIGNATURE, encode_png, mp4_placeholder
from tollway.simulator.video_jobs import VIDEOS, VideoJob, VideoStore

# The SDK marks the Sora methods deprecated; that warning is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

SIZES = ("1024x1024", "1024x1536", "1536x1024")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


@pytest.fixture(scope="module")
async def sim_server() -> AsyncIterator[Simulator]:
    sim = await start(SimulatorConfig())
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: Simulator) -> Simulator:
    """The shared simulator: default settings, zero stats, no jobs, the real clock."""
    sim_server.update_config(**SimulatorConfig().to_dict())
    sim_server.reset()
    store = sim_server.app[VIDEOS]
    store.clear()
    store.clock = time.monotonic
    return sim_server


@pytest.fixture
def clock(sim: Simulator) -> FakeClock:
    fake = FakeClock()
    sim.app[VIDEOS].clock = fake
    return fake


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def root(sim: Simulator) -> str:
    return f"http://{sim.host}:{sim.port}"


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG's structure (signature, chunk CRCs, IHDR/IDAT/IEND) and return
    (width, height, pixels) of an 8-bit RGB image with filter 0 rows."""
    assert data[:8] == PNG_SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) == crc, tag
        chunks.append((tag, body))
        pos += 12 + length
    assert pos == len(data)
    tags = [tag for tag, _ in chunks]
    assert tags[0] == b"IHDR" and tags[-1] == b"IEND" and b"IDAT" in tags
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    assert all(raw[row * stride] == 0 for row in range(height))
    pixels = b"".join(raw[row * stride + 1 : (row + 1) * stride] for row in range(height))
    return width, height, pixels


def b64_image(item: Any) -> bytes:
    assert item.b64_json and item.url is None
    return base64.b64decode(item.b64_json)


# --- images -----------------------------------------------------------------


def test_encode_png_roundtrip() -> None:
    pixels = bytes(range(2 * 3 * 3))
    assert decode_png(encode_png(3, 2, pixels)) == (3, 2, pixels)
    with pytest.raises(ValueError):
        encode_png(3, 2, b"short")


async def test_png_valid_and_deterministic(client: openai.AsyncOpenAI) -> None:
    async def generate(prompt: str, size: Any) -> list[bytes]:
        resp = await client.images.generate(
            model="dall-e-2", prompt=prompt, n=2, size=size, response_format="b64_json"
        )
        assert resp.data is not None
        return [b64_image(item) for item in resp.data]

    first = await generate("a red fox in snow", "512x512")
    assert first == await generate("a red fox in snow", "512x512")
    assert first[0] != first[1]  # the index is part of the key
    assert await generate("a blue fox in snow", "512x512") != first
    assert (await generate("a red fox in snow", "256x256"))[0] != first[0]
    width, height, pixels = decode_png(first[0])
    assert (width, height) == (16, 16) and len(set(pixels)) > 3

    tall = await client.images.generate(model="gpt-image-1", prompt="x", size="1024x1536")
    assert tall.data is not None
    assert decode_png(b64_image(tall.data[0]))[:2] == (11, 16)  # aspect ratio kept


async def test_url_and_b64(
    sim: Simulator, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    as_url = await client.images.generate(model="dall-e-3", prompt="a lighthouse at dusk")
    assert as_url.data is not None and len(as_url.data) == 1
    item = as_url.data[0]
    assert item.b64_json is None and item.url is not None
    assert item.url.startswith(f"{root(sim)}/_sim/files/") and item.url.endswith(".png")
    assert item.revised_prompt == "a lighthouse at dusk"
    assert as_url.usage is None and as_url.size is None and as_url.quality is None
    async with http.get(item.url) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        fetched = await resp.read()
    as_b64 = await client.images.generate(
        model="dall-e-3", prompt="a lighthouse at dusk", response_format="b64_json"
    )
    assert as_b64.data is not None and b64_image(as_b64.data[0]) == fetched
    decode_png(fetched)

    async with http.get(f"{root(sim)}/_sim/files/img_nothing.png") as resp:
        assert resp.status == 404 and "error" in await resp.json()
    # gpt-image models ignore response_format: always base64.
    async with http.post(
        f"{sim.base_url}/images/generations",
        json={"model": "gpt-image-1", "prompt": "p", "response_format": "url"},
    ) as resp:
        body = await resp.json()
    assert "b64_json" in body["data"][0] and "url" not in body["data"][0]
    assert sim.stats.by_path == {"/v1/images/generations": 3}  # file fetches not counted


@pytest.mark.parametrize("quality", ["low", "medium", "high"])
async def test_gpt_image_usage_from_the_table(client: openai.AsyncOpenAI, quality: Any) -> None:
    prompt = "a watercolor map of an imaginary island"  # 7 words
    for size in SIZES:
        for n in (1, 3):
            resp = await client.images.generate(
                model="gpt-image-1", prompt=prompt, size=size, quality=quality, n=n
            )
            per_image = GPT_IMAGE_OUTPUT_TOKENS[quality][size]
            assert resp.usage is not None
            assert resp.usage.input_tokens == 7
            assert resp.usage.input_tokens_details.text_tokens == 7
            assert resp.usage.input_tokens_details.image_tokens == 0
            assert resp.usage.output_tokens == per_image * n
            assert resp.usage.total_tokens == 7 + per_image * n
            assert resp.quality == quality and resp.size == size
            assert resp.data is not None and len(resp.data) == n


async def test_gpt_image_table_and_defaults(client: openai.AsyncOpenAI) -> None:
    assert GPT_IMAGE_OUTPUT_TOKENS == {
        "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
        "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
        "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
    }
    auto = await client.images.generate(
        model="gpt-image-1-mini", prompt="one two", size="auto", quality="auto"
    )
    assert auto.usage and auto.usage.output_tokens == 1056  # auto = medium, 1024x1024
    assert (auto.quality, auto.size, auto.background, auto.output_format) == (
        "medium",
        "1024x1024",
        "opaque",
        "png",
    )
    plain = await client.images.generate(model="gpt-image-1", prompt="one two")
    assert plain.usage == auto.usage
    echoed = await client.images.generate(
        model="gpt-image-1", prompt="p", background="transparent", output_format="webp"
    )
    assert echoed.background == "transparent" and echoed.output_format == "webp"
    other = await client.images.generate(
        model="some-flux", prompt="p", size=cast(Any, "640x480"), response_format="b64_json"
    )
    assert other.usage is None and other.data is not None
    assert decode_png(b64_image(other.data[0]))[:2] == (16, 12)
    dalle2 = await client.images.generate(model="dall-e-2", prompt="p", n=3)
    assert dalle2.usage is None and dalle2.data and len(dalle2.data) == 3


async def test_image_validation_errors(sim: Simulator, http: aiohttp.ClientSession) -> None:
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"model": "dall-e-3", "prompt": "p", "n": 2}, "n"),
        ({"model": "dall-e-3", "prompt": "p", "size": "512x512"}, "size"),
        ({"model": "dall-e-3", "prompt": "p", "quality": "high"}, "quality"),
        ({"model": "dall-e-2", "prompt": "p", "size": "1536x1024"}, "size"),
        ({"model": "dall-e-2", "prompt": "p", "size": "auto"}, "size"),
        ({"model": "gpt-image-1", "prompt": "p", "size": "1792x1024"}, "size"),
        ({"model": "gpt-image-1", "prompt": "p", "quality": "hd"}, "quality"),
        ({"model": "gpt-image-1", "prompt": "p", "n": 11}, "n"),
        ({"model": "gpt-image-1", "prompt": "p", "n": 0}, "n"),
        ({"model": "gpt-image-1", "prompt": "p", "output_format": "gif"}, "output_format"),
        ({"model": "gpt-image-1", "prompt": "p", "background": "pink"}, "background"),
        ({"model": "dall-e-2", "prompt": "p", "response_format": "png"}, "response_format"),
        ({"model": "dall-e-3", "prompt": "p", "style": "loud"}, "style"),
        ({"model": "flux", "prompt": "p", "size": "big"}, "size"),
        ({"model": "flux", "prompt": "p", "size": 1024}, "size"),
        ({"model": "gpt-image-1"}, "prompt"),
        ({"model": "gpt-image-1", "prompt": "  "}, "prompt"),
        ({"model": "gpt-image-1", "prompt": "p [sim:nope=1]"}, "prompt"),
    ]
    for body, param in cases:
        async with http.post(f"{sim.base_url}/images/generations", json=body) as resp:
            assert resp.status == 400, body
            error = (await resp.json())["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error" and error["param"] == param, body
    async with http.post(
        f"{sim.base_url}/images/generations", json={"prompt": "no model: dall-e-2"}
    ) as resp:
        assert resp.status == 200 and "url" in (await resp.json())["data"][0]


async def test_image_directives(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await client.images.generate(model="gpt-image-1", prompt="cat [sim:error=429]")
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        await client.images.generate(model="dall-e-3", prompt="cat [sim:error=500]")
    began = time.perf_counter()
    slow = await client.images.generate(model="gpt-image-1", prompt="cat [sim:latency_ms=50]")
    assert time.perf_counter() - began >= 0.05
    assert slow.usage and slow.usage.input_tokens == 2  # directives count as words
    quiet = await client.images.generate(model="gpt-image-1", prompt="cat [sim:no_usage]")
    assert quiet.usage is None and quiet.data


# --- videos -----------------------------------------------------------------


async def test_video_lifecycle(
    sim: Simulator, client: openai.AsyncOpenAI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    sim.update_config(video_queue_ms=100, video_render_ms=400)
    video = await client.videos.create(prompt="a calico cat playing piano", seconds="8")
    assert video.id.startswith("video_") and video.object == "video"
    assert (video.model, video.seconds, video.size) == ("sora-2", "8", "720x1280")
    assert (video.status, video.progress) == ("queued", 0)
    assert video.completed_at is None and video.expires_at is None and video.error is None
    assert video.remixed_from_video_id is None

    async def retrieve() -> tuple[Any, int]:
        async with http.get(f"{sim.base_url}/videos/{video.id}") as resp:
            assert resp.status == 200
            return await resp.json(), int(resp.headers["openai-poll-after-ms"])

    body, poll_after = await retrieve()
    assert body["status"] == "queued" and poll_after == 500
    with pytest.raises(openai.NotFoundError) as early:
        await client.videos.download_content(video.id)
    assert early.value.code == "video_not_ready"

    clock.advance(100 + 200)  # half-way through rendering
    body, poll_after = await retrieve()
    assert (body["status"], body["progress"], poll_after) == ("in_progress", 50, 200)
    clock.advance(199)
    assert (await client.videos.retrieve(video.id)).progress == 99
    with pytest.raises(openai.NotFoundError):
        await client.videos.download_content(video.id, variant="thumbnail")

    clock.advance(1)
    done = await client.videos.retrieve(video.id)
    assert (done.status, done.progress, done.error) == ("completed", 100, None)
    assert done.completed_at is not None and done.completed_at >= done.created_at
    assert done.expires_at == done.completed_at + 3600
    content = await client.videos.download_content(video.id)
    assert content.response.headers["content-type"] == "video/mp4"
    mp4 = content.content
    assert mp4[4:8] == b"ftyp" and mp4[8:12] == b"isom"
    assert mp4 == (await client.videos.download_content(video.id, variant="video")).content
    thumbnail = await client.videos.download_content(video.id, variant="thumbnail")
    assert thumbnail.response.headers["content-type"] == "image/png"
    assert decode_png(thumbnail.content)[:2] == (9, 16)  # 720x1280 scaled
    sprites = await client.videos.download_content(video.id, variant="spritesheet")
    assert decode_png(sprites.content)[:2] == (64, 28)
    async with http.get(f"{sim.base_url}/videos/{video.id}/content?variant=gif") as resp:
        assert resp.status == 400 and (await resp.json())["error"]["param"] == "variant"
    _, poll_after = await retrieve()
    assert poll_after == 1000


async def test_video_real_timing_and_sdk_poll(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    sim.update_config(video_queue_ms=20, video_render_ms=60)
    began = time.perf_counter()
    video = await client.videos.create_and_poll(prompt="waves on a shore", size="1280x720")
    elapsed = time.perf_counter() - began
    assert video.status == "completed" and video.size == "1280x720"
    assert 0.08 <= elapsed < 2  # the poll-after header kept the SDK from waiting 1 s
    content = await client.videos.download_content(video.id)
    assert content.content == mp4_placeholder("sora-2\x00waves on a shore\x004\x001280x720")


async def test_video_multipart_json_and_urlencoded(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.base_url}/videos"
    async with http.post(url, json={"prompt": "p", "model": "veo-3.0", "seconds": 8}) as resp:
        body = await resp.json()
        assert resp.status == 200 and (body["model"], body["seconds"]) == ("veo-3.0", "8")
    form = aiohttp.FormData()
    form.add_field("prompt", "with a reference")
    form.add_field("model", "sora-2-pro")
    form.add_field("size", "1792x1024")
    form.add_field("input_reference", b"\x89PNG...", filename="ref.png", content_type="image/png")
    async with http.post(url, data=form) as resp:
        body = await resp.json()
        assert resp.status == 200 and (body["model"], body["size"]) == ("sora-2-pro", "1792x1024")
    recorded = sim.stats.recent[-1]["body"]
    assert recorded["input_reference"] == {
        "filename": "ref.png",
        "content_type": "image/png",
        "bytes": 7,
    }
    async with http.post(url, data={"prompt": "form", "seconds": "12"}) as resp:
        assert resp.status == 200 and (await resp.json())["seconds"] == "12"


async def test_video_validation(
    sim: Simulator, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    reseller = await client.videos.create(
        prompt="p", model="sora_video2", seconds=cast(Any, "10"), size=cast(Any, "640x480")
    )
    assert (reseller.seconds, reseller.size) == ("10", "640x480")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prompt": "p", "seconds": "10"}, "seconds"),
        ({"prompt": "p", "model": "sora-2-pro", "seconds": 4.5}, "seconds"),
        ({"prompt": "p", "model": "veo-3", "seconds": "0"}, "seconds"),
        ({"prompt": "p", "model": "veo-3", "seconds": "-4"}, "seconds"),
        ({"prompt": "p", "model": "veo-3", "seconds": ["4"]}, "seconds"),
        ({"prompt": "p", "size": "1920x1080"}, "size"),
        ({"prompt": "p", "model": "veo-3", "size": "wide"}, "size"),
        ({"model": "sora-2"}, "prompt"),
        ({"prompt": "p", "model": 7}, "model"),
        ({"prompt": "p [sim:video_bogus]"}, "prompt"),
        ({"prompt": "p [sim:video_render_ms=x]"}, "prompt"),
        ({"prompt": "p [sim:video_fail=1]"}, "prompt"),
    ]
    for body, param in cases:
        async with http.post(f"{sim.base_url}/videos", json=body) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["error"]["param"] == param, body
    async with http.post(f"{sim.base_url}/videos", data=b"{oops") as resp:
        assert resp.status == 400
    async with http.get(f"{sim.base_url}/videos?limit=0") as resp:
        assert resp.status == 400
    async with http.get(f"{sim.base_url}/videos?order=up") as resp:
        assert resp.status == 400
    with pytest.raises(openai.NotFoundError):
        await client.videos.retrieve("video_missing")


async def test_video_directives(
    sim: Simulator, client: openai.AsyncOpenAI, clock: FakeClock
) -> None:
    sim.update_config(video_queue_ms=0, video_render_ms=100)
    doomed = await client.videos.create(prompt="a storm [sim:video_fail]")
    slow = await client.videos.create(prompt="a storm [sim:video_render_ms=1000]")
    held = await client.videos.create(prompt="calm [sim:video_queue_ms=300]")
    clock.advance(100)
    failed = await client.videos.retrieve(doomed.id)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "video_generation_failed" and failed.completed_at is None
    with pytest.raises(openai.NotFoundError) as gone:
        await client.videos.download_content(doomed.id)
    assert gone.value.code == "video_failed"
    assert (await client.videos.retrieve(slow.id)).progress == 10
    assert (await client.videos.retrieve(held.id)).status == "queued"
    clock.advance(900)
    assert (await client.videos.retrieve(slow.id)).status == "completed"

    with pytest.raises(openai.InternalServerError):
        await client.videos.create(prompt="x [sim:error=503]")
    with pytest.raises(openai.RateLimitError):
        await client.videos.create(prompt="x [sim:error=429]")
    listed = await client.videos.list(limit=100)
    assert len(listed.data) == 3  # failed creates leave no job
    began = time.perf_counter()
    await client.videos.create(prompt="x [sim:latency_ms=40]")
    assert time.perf_counter() - began >= 0.04


async def test_video_failure_rate_is_reproducible(
    sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    sim.update_config(video_queue_ms=0, video_render_ms=0, video_failure_rate=0.5, seed=11)

    async def statuses() -> list[str]:
        found: list[str] = []
        for index in range(16):
            video = await client.videos.create(prompt=f"clip {index}")
            found.append((await client.videos.retrieve(video.id)).status)
        return found

    first = await statuses()
    assert set(first) == {"completed", "failed"}
    sim.reset()  # re-seeds
    assert await statuses() == first
    sim.update_config(seed=12)
    assert await statuses() != first
    sim.update_config(video_failure_rate=0.0)
    assert set(await statuses()) == {"completed"}


async def test_list_delete_remix(
    sim: Simulator, client: openai.AsyncOpenAI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    ids = [(await client.videos.create(prompt=f"scene {i}")).id for i in range(5)]
    newest_first = await client.videos.list()
    assert [v.id for v in newest_first.data] == ids[::-1]
    async with http.get(f"{sim.base_url}/videos?limit=2&order=asc") as resp:
        page = await resp.json()
    assert page["object"] == "list" and page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[1])
    assert [v.id async for v in client.videos.list(limit=2, order="asc")] == ids
    async with http.get(f"{sim.base_url}/videos?after={ids[3]}&order=asc") as resp:
        tail = await resp.json()
    assert [v["id"] for v in tail["data"]] == [ids[4]] and tail["has_more"] is False
    async with http.get(f"{sim.base_url}/videos?after=video_nope") as resp:
        assert resp.status == 400

    deleted = await client.videos.delete(ids[2])
    assert (deleted.id, deleted.object, deleted.deleted) == (ids[2], "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        await client.videos.retrieve(ids[2])
    with pytest.raises(openai.NotFoundError):
        await client.videos.delete(ids[2])
    assert ids[2] not in [v.id for v in (await client.videos.list()).data]

    with pytest.raises(openai.BadRequestError) as early:
        await client.videos.remix(ids[0], prompt="now at night")
    assert early.value.code == "invalid_video_status"
    clock.advance(1000)
    remix = await client.videos.remix(ids[0], prompt="now at night")
    assert remix.remixed_from_video_id == ids[0] and remix.status == "queued"
    assert remix.prompt == "now at night" and remix.id not in ids
    with pytest.raises(openai.NotFoundError):
        await client.videos.remix("video_nope", prompt="x")
    clock.advance(1000)
    source = await client.videos.download_content(ids[0])
    remixed = await client.videos.download_content(remix.id)
    assert source.content != remixed.content


async def test_expire_control(
    sim: Simulator, client: openai.AsyncOpenAI, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    video = await client.videos.create(prompt="fireworks")
    clock.advance(1000)
    assert (await client.videos.retrieve(video.id)).status == "completed"
    async with http.post(f"{root(sim)}/_sim/videos/{video.id}/expire") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "failed" and body["error"]["code"] == "video_expired"
    assert body["progress"] == 100 and body["completed_at"] is not None
    assert body["expires_at"] >= body["completed_at"] - 1
    clock.advance(5000)
    expired = await client.videos.retrieve(video.id)
    assert expired.status == "failed" and expired.error and expired.error.code == "video_expired"
    assert expired.expires_at == body["expires_at"]
    with pytest.raises(openai.NotFoundError) as gone:
        await client.videos.download_content(video.id)
    assert gone.value.code == "video_expired"

    pending = await client.videos.create(prompt="still queued")
    async with http.post(f"{root(sim)}/_sim/videos/{pending.id}/expire") as resp:
        body = await resp.json()
    assert (body["status"], body["progress"], body["completed_at"]) == ("failed", 0, None)
    async with http.post(f"{root(sim)}/_sim/videos/video_nope/expire") as resp:
        assert resp.status == 404
    assert "/_sim/videos/{video_id}/expire" not in sim.stats.by_path


async def test_stats_count_route_patterns(
    sim: Simulator, client: openai.AsyncOpenAI, clock: FakeClock
) -> None:
    video = await client.videos.create(prompt="p")
    await client.videos.retrieve(video.id)
    clock.advance(1000)
    await client.videos.download_content(video.id)
    await client.videos.list()
    await client.videos.remix(video.id, prompt="q")
    await client.videos.delete(video.id)
    with pytest.raises(openai.NotFoundError):
        await client.videos.retrieve(video.id)
    assert sim.stats.by_path == {
        "/v1/videos": 2,
        "/v1/videos/{video_id}": 3,
        "/v1/videos/{video_id}/content": 1,
        "/v1/videos/{video_id}/remix": 1,
    }
    assert sim.stats.errors == 1


async def test_api_key_applies_to_media(http: aiohttp.ClientSession) -> None:
    async with await start(SimulatorConfig(api_key="sk-sim")) as sim:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="bad", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError):
                await c.images.generate(model="dall-e-2", prompt="p")
            with pytest.raises(openai.AuthenticationError):
                await c.videos.create(prompt="p")
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-sim") as good:
            image = await good.images.generate(model="dall-e-2", prompt="p")
        assert image.data and image.data[0].url
        async with http.get(image.data[0].url) as resp:  # file urls need no key
            assert resp.status == 200


def test_job_store_is_bounded() -> None:
    store = VideoStore(limit=3)
    for index in range(5):
        store.add(VideoJob(f"video_{index}", "sora-2", "p", "4", "720x1280", 0.0, 0.0, 0, 0, False))
    assert list(store.jobs) == ["video_2", "video_3", "video_4"]


def test_video_config_validation() -> None:
    config = SimulatorConfig()
    assert (config.video_queue_ms, config.video_render_ms, config.video_failure_rate) == (
        50,
        200,
        0.0,
    )
    with pytest.raises(ConfigError):
        SimulatorConfig(video_failure_rate=1.5)
    with pytest.raises(ConfigError):
        SimulatorConfig(video_render_ms=-1)
    with pytest.raises(ConfigError):
        SimulatorConfig(video_queue_ms=0.5)  # type: ignore[arg-type]


async def test_video_config_over_http(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{root(sim)}/_sim/config", json={"video_render_ms": 5, "video_failure_rate": 1}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["video_failure_rate"] == 1.0
    assert sim.config.video_render_ms == 5
