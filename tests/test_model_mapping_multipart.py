"""A channel's ``model_mapping`` renames the model inside multipart bodies
too: ``with_field`` replaces one text part of a body ``encode_multipart``
wrote and keeps every other byte (hostile values and file contents
included), ``renamed`` uses it, and through real processes (the gateway and
the simulator on loopback, the openai SDK as the client) an image edit, a
transcription and a video made from a reference reach the upstream by the
channel's name for the model."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartParser
from test_audio import wav

from tollway.providers import Outbound
from tollway.relay.failover import renamed
from tollway.relay.multipart import encode_multipart, text_field, with_field
from tollway.simulator.media import encode_png
from tollway.state import Channel, ChannelKey

from conftest import ADMIN_KEY
from processes import Operator, gateways

MAPPING = {
    "gpt-image-1": "azure-east/gpt-image-1",
    "whisper-1": "whisper-large-v3",
    "sora-2": "sora-2-eastus",
}
# What a hostile client can put in a value or a file to look like a part.
LOOKALIKES = [
    b'\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o\r\n',
    b"\r\n--tollway0123456789abcdef0123456789abcdef\r\n",
    b"--tollway\r\n--\r\n\r\n\r\n",
    b'name="model"',
]


def upload(data: bytes, filename: str = "photo.png") -> UploadFile:
    return UploadFile(
        io.BytesIO(data), filename=filename, headers=Headers({"content-type": "image/png"})
    )


async def parsed(body: bytes, content_type: str) -> FormData:
    """The body as an upstream reads it (starlette's parser, not ours)."""

    async def once() -> AsyncIterator[bytes]:
        yield body

    return await MultiPartParser(Headers({"content-type": content_type}), once()).parse()


async def fields_of(body: bytes, content_type: str) -> list[tuple[str, str | bytes]]:
    form = await parsed(body, content_type)
    out: list[tuple[str, str | bytes]] = []
    for name, value in form.multi_items():
        out.append((name, await value.read() if isinstance(value, UploadFile) else value))
    await form.close()
    return out


# --- with_field ---------------------------------------------------------------


async def test_the_model_part_is_replaced_and_every_other_byte_kept() -> None:
    items = [("prompt", "a fox"), ("model", "gpt-image-1"), ("image", upload(b"\x89PNG"))]
    body, content_type = await encode_multipart(items)
    changed = with_field(body, content_type, "model", "azure-east/gpt-image-1")
    value_at = body.index(b'name="model"\r\n\r\n') + len(b'name="model"\r\n\r\n')
    assert changed == (
        body[:value_at] + b"azure-east/gpt-image-1" + body[value_at + len(b"gpt-image-1") :]
    )
    assert await fields_of(changed, content_type) == [
        ("prompt", "a fox"),
        ("model", "azure-east/gpt-image-1"),
        ("image", b"\x89PNG"),
    ]


async def test_without_such_a_text_part_the_body_is_the_same() -> None:
    body, content_type = await encode_multipart([("prompt", "model"), ("model", upload(b"x"))])
    assert with_field(body, content_type, "model", "other") is body  # a file is no field
    assert text_field(body, content_type, "model") is None
    assert with_field(body, content_type, "mode", "other") is body
    assert with_field(body, content_type, "model[]", "other") is body


async def test_a_body_not_framed_as_encoded_is_left_as_is() -> None:
    body, content_type = await encode_multipart([("model", "whisper-1")])
    for broken, kind in [
        (body[:-4], content_type),  # cut before its closing delimiter
        (body.replace(b"--\r\n", b"xx\r\n"), content_type),
        (b"preamble\r\n" + body, content_type),
        (body, "multipart/form-data"),  # no boundary
        (body, "multipart/form-data; boundary=another"),
        (b"", content_type),
    ]:
        assert with_field(broken, kind, "model", "mapped") is broken
        assert text_field(broken, kind, "model") is None


async def test_a_repeated_field_is_replaced_each_time_and_read_as_the_last() -> None:
    body, content_type = await encode_multipart([("model", "a"), ("n", "1"), ("model", "b")])
    assert text_field(body, content_type, "model") == "b"
    changed = with_field(body, content_type, "model", "")
    assert await fields_of(changed, content_type) == [("model", ""), ("n", "1"), ("model", "")]


async def test_a_quoted_boundary_and_an_escaped_name_are_found() -> None:
    body, content_type = await encode_multipart([('a "b"\r\nc', "old")])
    quoted = content_type.replace("boundary=", 'boundary="') + '"'
    assert text_field(body, quoted, 'a "b"\r\nc') == "old"
    assert await fields_of(with_field(body, quoted, 'a "b"\r\nc', "new"), content_type) == [
        ("a %22b%22%0D%0Ac", "new")
    ]


async def test_megabytes_of_lookalikes_in_a_file_are_passed_over() -> None:
    """A file of nothing but part-like lines (each a false start for a
    search) is passed over in one linear scan (a tenth of a second)."""
    hostile = b"".join(LOOKALIKES) * 80_000  # about 9 MB
    items = [("image", upload(hostile)), ("model", "gpt-image-1")]
    body, content_type = await encode_multipart(items)
    changed = with_field(body, content_type, "model", "mapped")
    value_at = body.rindex(b'name="model"\r\n\r\n') + len(b'name="model"\r\n\r\n')
    assert changed == body[:value_at] + b"mapped" + body[value_at + len(b"gpt-image-1") :]


values = st.one_of(
    st.text(),
    st.sampled_from([v.decode() for v in LOOKALIKES]),
    st.lists(st.sampled_from(["\r\n", "--", "tollway", 'name="model"', "\r\n\r\n", "x"])).map(
        "".join
    ),
)
contents = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([*LOOKALIKES, b"\r", b"\n", b"-"])).map(b"".join),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=values,
    new=values,
    other=values,
    file=contents,
    at=st.integers(min_value=0, max_value=3),
)
async def test_any_value_replaces_the_model_and_nothing_else(
    old: str, new: str, other: str, file: bytes, at: int
) -> None:
    items: list[tuple[str, object]] = [
        ("prompt", other),
        ("model", upload(file, "model")),  # a file part of the same name
        ("image", upload(file)),
    ]
    items.insert(at, ("model", old))
    body, content_type = await encode_multipart(items)
    changed = with_field(body, content_type, "model", new)
    assert len(changed) == len(body) - len(old.encode()) + len(new.encode())
    assert text_field(changed, content_type, "model") == new
    expected = [(k, new if k == "model" and isinstance(v, str) else v) for k, v in items]
    assert await fields_of(changed, content_type) == [
        (k, file if isinstance(v, UploadFile) else v) for k, v in expected
    ]


# --- renamed -------------------------------------------------------------------


def channel(mapping: dict[str, str]) -> Channel:
    key = ChannelKey(0, "sim-key")
    return Channel(
        1, "mapped", "openai", "http://sim", (key,), frozenset({"*"}), model_mapping=mapping
    )


async def test_renamed_renames_a_form_whether_or_not_the_call_has_a_payload() -> None:
    body, content_type = await encode_multipart([("model", "whisper-1"), ("file", upload(b"RIFF"))])
    transcription = Outbound("audio/transcriptions", body, None, content_type=content_type)
    sent = renamed(transcription, channel(MAPPING))
    assert text_field(sent.body, content_type, "model") == "whisper-large-v3"
    assert renamed(transcription, channel({"gpt-4o": "x"})) is transcription
    body, content_type = await encode_multipart([("model", "gpt-image-1"), ("image", upload(b""))])
    edit = Outbound("images/edits", body, {"model": "gpt-image-1"}, content_type=content_type)
    sent = renamed(edit, channel(MAPPING))
    assert text_field(sent.body, content_type, "model") == "azure-east/gpt-image-1"
    assert sent.payload == {"model": "azure-east/gpt-image-1"}


# --- through real processes ----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")  # the SDK's, not ours
def test_mapped_models_reach_the_upstream_by_their_mapped_names(
    simulator_url: str,
    tmp_path: Path,
) -> None:
    with gateways({"TOLLWAY_DATA_DIR": str(tmp_path / "data")}, tmp_path) as [base]:
        op = Operator(base)
        mkey, key, _ = op.setup(simulator_url, "5")
        mapped = httpx.patch(
            f"{base}/api/channels/1",
            json={"model_mapping": MAPPING},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert mapped.status_code == 200, mapped.text
        with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client:
            image = encode_png(16, 16, bytes(16 * 16 * 3))
            edit = client.images.edit(
                model="gpt-image-1", image=("fox.png", image, "image/png"), prompt="a red fox"
            )
            text = client.audio.transcriptions.create(
                model="whisper-1", file=("hello.wav", wav(1_000), "audio/wav")
            )
            video = client.videos.create(
                model="sora-2",
                prompt="a lighthouse",
                input_reference=("ref.png", image, "image/png"),
            )
            seen = httpx.get(simulator_url.removesuffix("/v1") + "/_sim/requests").json()
            uploaded = [r["body"]["model"] for r in seen if r["path"] == "/v1/videos"]
        plain = httpx.post(  # a JSON body (the SDK sends videos as forms)
            f"{base}/v1/videos",
            json={"model": "sora-2", "prompt": "a lighthouse"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert plain.status_code == 200, plain.text
        assert edit.data and text.text and video.id
        seen = httpx.get(simulator_url.removesuffix("/v1") + "/_sim/requests").json()
        sent = {r["path"]: r["body"]["model"] for r in seen if r["method"] == "POST"}
        assert sent["/v1/images/edits"] == "azure-east/gpt-image-1"
        assert sent["/v1/audio/transcriptions"] == "whisper-large-v3"
        assert sent["/v1/videos"] == "sora-2-eastus"
        videos = [r for r in seen if r["method"] == "POST" and r["path"] == "/v1/videos"]
        assert uploaded == ["sora-2-eastus"]
        assert [r["body"]["model"] for r in videos] == ["sora-2-eastus", "sora-2-eastus"]
        billed = {r["model"] for r in op.usage(mkey)}  # the video's once it is made
        assert {"gpt-image-1", "whisper-1"} <= billed <= {"gpt-image-1", "whisper-1", "sora-2"}
