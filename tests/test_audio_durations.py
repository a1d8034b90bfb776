"""Durations of non-WAV uploads (billing/audio.played_ms): read from the
container by mutagen, billed as an estimate when whisper-1's upstream reports
none, and never trusted past the hold."""

from __future__ import annotations

import io
import struct
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from test_audio import cost

from tollway.billing import audio
from tollway.billing.shapes import AudioShape
from tollway.types import Usage

from conftest import Served, customer, sdk, usage_records


def flac(samples: int, rate: int = 16_000, padding: int = 0) -> bytes:
    """A FLAC file's head: its STREAMINFO says ``samples`` at ``rate``."""
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6  # block sizes, frame sizes
    # 20 bits rate, 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits samples
    packed = (rate << 44) | (0 << 41) | (15 << 36) | samples
    info += packed.to_bytes(8, "big") + b"\x00" * 16  # the MD5
    return b"fLaC" + bytes([0x80, 0, 0, 34]) + info + b"\x00" * padding


def mp3(frames: int) -> bytes:
    """Constant-rate MPEG-1 layer III frames (128 kbit/s, 44.1 kHz) of silence."""
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413  # 144 x 128000 / 44100 = 417 bytes
    return frame * frames


def test_a_flac_duration_is_its_samples_over_its_rate_rounded_up_to_the_ms() -> None:
    assert audio.played_ms(io.BytesIO(flac(120_000))) == 7_500
    assert audio.played_ms(io.BytesIO(flac(16_001))) == 1_001  # 1000.0625 ms


def test_an_mp3_duration_is_read_from_its_frames() -> None:
    ms = audio.played_ms(io.BytesIO(mp3(383)))  # 383 x 1152 samples at 44.1 kHz
    assert ms is not None and abs(ms - 383 * 1152 * 1000 / 44_100) < 60


def test_what_is_not_a_container_it_knows_has_no_duration() -> None:
    assert audio.played_ms(io.BytesIO(b"")) is None
    assert audio.played_ms(io.BytesIO(b"fLaC" + b"\xff" * 10)) is None
    assert audio.played_ms(io.BytesIO(flac(0))) is None  # zero samples: nothing to go by


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.sampled_from([b"", b"fLaC", b"OggS", b"ID3", b"\xff\xfb"]))
def test_any_bytes_give_a_duration_or_none_and_leave_the_file_at_its_start(
    data: bytes, head: bytes
) -> None:
    file = io.BytesIO(head + data)
    ms = audio.played_ms(file)
    assert ms is None or 0 < ms <= audio.MAX_PLAYED_S * 1000
    assert file.tell() == 0


def test_a_container_that_overstates_is_billed_no_more_than_the_hold() -> None:
    """A 1 KB FLAC claiming an hour: the estimate stops at the hold (its size
    at the lowest bit rate), since a container is not a bound."""
    data = flac(16_000 * 3600, padding=1000)
    shape = audio.transcription_shape(data[:4096], len(data), None, io.BytesIO(data))
    assert shape.audio_ms is None and shape.played_ms == 3_600_000
    assert audio.audio_hold_ms(shape) == -(-len(data) * 1000 // audio.LOWEST_BYTES_PER_SECOND)
    assert audio.estimated_audio_ms(shape) == audio.audio_hold_ms(shape)


def test_a_wav_header_wins_and_no_container_is_read() -> None:
    shape = AudioShape(transcribes=True, audio_bytes=10**6, audio_ms=2_000, played_ms=9_000)
    assert audio.estimated_audio_ms(shape) == 2_000


async def test_whisper_bills_a_flac_by_its_duration_when_the_answer_has_none(
    served: Served,
) -> None:
    """response_format=text carries no usage: the container's 7.5 s are billed."""
    mkey, key = await customer(served)
    data = flac(120_000, padding=60_000)  # 7.5 s; 60 KB (3.75 s at 128 kbit/s)
    async with sdk(served, key) as client:
        text = await client.audio.transcriptions.create(
            model="whisper-1", file=("a.flac", data, "audio/flac"), response_format="text"
        )
    assert isinstance(text, str)
    [record] = await usage_records(served, mkey)
    assert (record["audio_input_ms"], record["usage_source"]) == (7_500, "estimated")
    assert Decimal(record["cost_usd"]) == cost(served, "whisper-1", Usage(audio_input_ms=7_500))
