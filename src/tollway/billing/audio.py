"""Speech and transcription: what billing reads of their requests, their
holds, and what a call is billed by when the upstream reports no usage.

Speech (``POST /v1/audio/speech``):

- priced per character (tts-1, tts-1-hd: ``input_mchar``): the characters of
  ``input`` (Unicode code points), known before the call, so the hold is
  exactly the charge;
- priced by tokens (gpt-4o-mini-tts): text in, audio out. The hold counts the
  text a token a byte and the audio at ``SPEECH_HOLD_TOKENS_PER_CHAR`` audio
  tokens a character at speed 1 (more when slower), at least
  ``SPEECH_HOLD_MIN_TOKENS``. Only an SSE answer (``stream_format: "sse"``)
  reports usage; otherwise the call is billed by an estimate: the text's
  tokens as counted, and ``SPEECH_TOKENS_PER_SECOND`` audio tokens a second
  of speech at ``SPEECH_CHARS_PER_SECOND`` characters a second x speed.

Transcription and translation (``POST /v1/audio/transcriptions`` and
``/translations``):

- priced per minute (whisper-1: ``audio_input_minute``), counted in
  milliseconds: billed from the upstream's ``usage: {type: "duration",
  seconds}`` (or a verbose answer's ``duration``); without either (the text,
  srt and vtt formats carry none), by the file's duration as its WAV header
  says it, else as its container says it (MP3, M4A/MP4, Ogg, FLAC: read by
  mutagen), else estimated from its size at ``TYPICAL_BYTES_PER_SECOND``
  (128 kbit/s; webm), never above the hold;
- priced by tokens (gpt-4o(-mini)-transcribe): billed from ``usage: {type:
  "tokens", input_tokens, input_token_details{text_tokens, audio_tokens},
  output_tokens}``.

The hold of a file is the most its audio can be: its duration when the WAV
header says it (the data it holds over its byte rate, a bound), else its size
at ``LOWEST_BYTES_PER_SECOND`` (6 kbit/s, the
lowest rate a speech codec the API accepts is used at); a token-priced model
holds ``HOLD_AUDIO_TOKENS_PER_SECOND`` audio tokens and
``HOLD_TRANSCRIPT_TOKENS_PER_SECOND`` output tokens a second of it.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import IO, Any

import mutagen

from tollway.billing.shapes import AudioShape
from tollway.errors import bad_request
from tollway.types import Model, Usage, UsageSource

log = logging.getLogger(__name__)

MAX_SPEECH_CHARS = 4096
MAX_INSTRUCTIONS_CHARS = 4096
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_PLAYED_S = 24 * 3600  # a container saying longer is not believed
MAX_PROMPT_CHARS = 4096
MAX_LANGUAGE_CHARS = 16
MIN_SPEED_PERCENT, MAX_SPEED_PERCENT = 25, 400

# Content types of the speech formats, as OpenAI answers them.
SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
VOICES = frozenset(
    {
        "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx",
        "nova", "sage", "shimmer", "verse", "marin", "cedar",
    }
)  # fmt: skip
STREAM_FORMATS = frozenset({"audio", "sse"})
# Models that read aloud only: no instructions, no SSE.
PLAIN_SPEECH_MODELS = frozenset({"tts-1", "tts-1-hd"})
TRANSCRIPT_FORMATS = frozenset({"json", "text", "srt", "verbose_json", "vtt", "diarized_json"})
TEXT_FORMATS = frozenset({"text", "srt", "vtt"})  # plain text answers: no usage
GRANULARITIES = frozenset({"word", "segment"})

# Holds and estimates (see the module's docstring).
SPEECH_HOLD_TOKENS_PER_CHAR = 4
SPEECH_HOLD_MIN_TOKENS = 200
SPEECH_CHARS_PER_SECOND = 12
SPEECH_TOKENS_PER_SECOND = 20
LOWEST_BYTES_PER_SECOND = 750
TYPICAL_BYTES_PER_SECOND = 16_000
HOLD_AUDIO_TOKENS_PER_SECOND = 32
HOLD_TRANSCRIPT_TOKENS_PER_SECOND = 16
HOLD_TRANSCRIPT_MIN_TOKENS = 64
ESTIMATE_AUDIO_TOKENS_PER_SECOND = 10


# --- requests ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    response_format: str
    stream_format: str
    speed_percent: int


def speech_request(payload: dict[str, Any], model: Model) -> SpeechRequest:
    """A speech body's fields, each checked (a 400 naming the field)."""
    text = payload.get("input")
    if not isinstance(text, str) or not text:
        raise bad_request("'input' must be a non-empty string.", param="input")
    if len(text) > MAX_SPEECH_CHARS:
        raise bad_request(
            f"'input' is {len(text)} characters; the most is {MAX_SPEECH_CHARS}.", param="input"
        )
    _check_voice(payload.get("voice"))
    fmt = _choice(payload, "response_format", SPEECH_FORMATS, "mp3")
    stream = _choice(payload, "stream_format", STREAM_FORMATS, "audio")
    instructions = payload.get("instructions")
    if instructions is not None and (
        not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS_CHARS
    ):
        raise bad_request(
            f"'instructions' must be a string of at most {MAX_INSTRUCTIONS_CHARS} characters.",
            param="instructions",
        )
    if model.id in PLAIN_SPEECH_MODELS:
        if instructions:
            raise bad_request(f"{model.id} takes no 'instructions'.", param="instructions")
        if stream == "sse":
            raise bad_request(f"{model.id} cannot answer as SSE.", param="stream_format")
    return SpeechRequest(text, fmt, stream, speed_percent(payload.get("speed")))


def _check_voice(voice: Any) -> None:
    if isinstance(voice, str) and voice in VOICES:
        return
    if isinstance(voice, dict) and set(voice) == {"id"}:
        custom = voice["id"]
        if isinstance(custom, str) and 0 < len(custom) <= 200 and custom.isascii():
            return
    raise bad_request(
        f'\'voice\' must be one of {", ".join(sorted(VOICES))}, or {{"id": "voice_..."}}.',
        param="voice",
    )


def _choice(payload: dict[str, Any], name: str, allowed: Any, default: str) -> str:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in allowed:
        raise bad_request(f"'{name}' must be one of {', '.join(sorted(allowed))}.", param=name)
    return value


def speed_percent(value: Any) -> int:
    """A speed (0.25 to 4.0, default 1) in hundredths, rounded down (a slower
    speed is longer audio: the hold errs high)."""
    if value is None:
        return 100
    exact = _decimal(value)
    if exact is None or not Decimal("0.25") <= exact <= 4:
        raise bad_request("'speed' must be a number from 0.25 to 4.0.", param="speed")
    return int(exact * 100)


def _decimal(value: Any) -> Decimal | None:
    """A JSON number or a form's text as an exact decimal (None: not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    text = repr(value) if isinstance(value, float) else str(value)
    if len(text) > 32:
        return None
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None


def speech_shape(asked: SpeechRequest, payload: dict[str, Any]) -> AudioShape:
    instructions = payload.get("instructions")
    text_bytes = len(asked.text.encode()) + len((instructions or "").encode())
    return AudioShape(
        transcribes=False,
        characters=len(asked.text),
        text_bytes=text_bytes,
        speed_percent=asked.speed_percent,
    )


def transcription_fields(fields: dict[str, Any], translating: bool) -> str:
    """Check a transcription's text fields; its response_format."""
    fmt = fields.get("response_format", "json")
    if not isinstance(fmt, str) or fmt not in TRANSCRIPT_FORMATS:
        raise bad_request(
            f"'response_format' must be one of {', '.join(sorted(TRANSCRIPT_FORMATS))}.",
            param="response_format",
        )
    for name, most in (("prompt", MAX_PROMPT_CHARS), ("language", MAX_LANGUAGE_CHARS)):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > most):
            raise bad_request(f"'{name}' must be text of at most {most} characters.", param=name)
    temperature = fields.get("temperature")
    if temperature is not None:
        exact = _decimal(temperature)
        if exact is None or not 0 <= exact <= 1:
            raise bad_request("'temperature' must be a number from 0 to 1.", param="temperature")
    stream = fields.get("stream")
    if stream is not None and stream not in ("true", "false"):
        raise bad_request("'stream' must be true or false.", param="stream")
    if translating and fmt == "diarized_json":
        raise bad_request("Translations do not answer diarized_json.", param="response_format")
    return fmt


def check_granularities(values: list[Any]) -> None:
    if len(values) > 2 or any(not isinstance(v, str) or v not in GRANULARITIES for v in values):
        raise bad_request(
            "'timestamp_granularities[]' may be 'word' and/or 'segment'.",
            param="timestamp_granularities",
        )


def transcription_shape(
    head: bytes, size: int, prompt: str | None, file: IO[bytes] | None = None
) -> AudioShape:
    """A file of ``size`` bytes starting with ``head`` (``file``: all of it,
    for its container's duration when it is not WAV), and the prompt sent along."""
    wav_ms = wav_duration_ms(head, size)
    return AudioShape(
        transcribes=True,
        text_bytes=len((prompt or "").encode()),
        audio_bytes=size,
        audio_ms=wav_ms,
        played_ms=played_ms(file) if wav_ms is None and file is not None else None,
    )


# --- reading a file's duration ----------------------------------------------

WAV_HEAD_BYTES = 4096  # how much of a file is read for its header


def wav_duration_ms(head: bytes, file_bytes: int) -> int | None:
    """A RIFF/WAVE file's duration in ms (rounded up) from its header: the
    ``data`` chunk's size (at most what the file holds) over the ``fmt``
    chunk's byte rate. None when the bytes are not a WAV header this can read."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    at, byte_rate = 12, 0
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack_from("<I", head, at + 4)[0]
        if chunk == b"fmt " and size >= 16 and at + 24 <= len(head):
            byte_rate = struct.unpack_from("<I", head, at + 16)[0]
        elif chunk == b"data":
            if byte_rate <= 0:
                return None
            return -(-min(size, file_bytes) * 1000 // byte_rate)
        at += 8 + size + (size & 1)
    return None


def played_ms(file: IO[bytes]) -> int | None:
    """The audio's duration in ms (rounded up) as its container says it
    (MP3, M4A/MP4, Ogg, FLAC, by mutagen), None when it cannot tell. A header
    can understate, so this bills an estimate, never bounds a hold."""
    try:
        file.seek(0)
        found = mutagen.File(file)
        seconds = found.info.length if found is not None else 0
    except Exception:  # a hostile or unknown file: mutagen's errors are many
        log.debug("no duration read from an uploaded file", exc_info=True)
        return None
    finally:
        file.seek(0)
    if not isinstance(seconds, int | float) or not 0 < seconds < MAX_PLAYED_S:
        return None
    return int((Decimal(repr(float(seconds))) * 1000).to_integral_value(ROUND_CEILING))


def looks_like_audio(head: bytes) -> bool:
    """Whether a file starts as one of the formats the API takes does (flac,
    mp3, mp4/m4a, mpeg, ogg, wav, webm): a text or image file is refused before
    anything is held."""
    return (
        (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or head[:4] in (b"fLaC", b"OggS", b"\x1aE\xdf\xa3")
        or head[:3] == b"ID3"
        or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # an MPEG frame
        or head[4:8] == b"ftyp"
        or head[:4] == b"\x00\x00\x01\xba"  # MPEG program stream
    )


# --- holds --------------------------------------------------------------------


def hold_usage(shape: AudioShape, model: Model) -> Usage:
    """The most a speech or transcription call can use on ``model``."""
    price = model.per_use
    if price is None:  # per call: one call
        return Usage()
    if not shape.transcribes:
        if price.input_mchar is not None:
            return Usage(input_characters=shape.characters)
        return Usage(
            input_tokens=shape.text_bytes + 1,
            audio_output_tokens=speech_hold_tokens(shape.characters, shape.speed_percent),
        )
    most_ms = audio_hold_ms(shape)
    if price.audio_input_minute is not None:
        return Usage(audio_input_ms=most_ms)
    return Usage(
        input_tokens=shape.text_bytes + 1,
        audio_input_tokens=_per_second(most_ms, HOLD_AUDIO_TOKENS_PER_SECOND),
        output_tokens=max(
            _per_second(most_ms, HOLD_TRANSCRIPT_TOKENS_PER_SECOND), HOLD_TRANSCRIPT_MIN_TOKENS
        ),
    )


def speech_hold_tokens(characters: int, speed: int) -> int:
    held = -(-characters * SPEECH_HOLD_TOKENS_PER_CHAR * 100 // speed)
    return max(held, SPEECH_HOLD_MIN_TOKENS)


def audio_hold_ms(shape: AudioShape) -> int:
    """The longest the file can be: its header's duration, else its size at
    the lowest bit rate."""
    most = -(-shape.audio_bytes * 1000 // LOWEST_BYTES_PER_SECOND)
    return most if shape.audio_ms is None else min(shape.audio_ms, most)


def _per_second(ms: int, rate: int) -> int:
    return -(-ms * rate // 1000)


# --- estimates (no usage reported) -----------------------------------------------


def speech_estimate(shape: AudioShape, text_tokens: int) -> Usage:
    """A token-priced speech call without usage: the text as counted, and the
    audio at the estimated length of the speech."""
    per_second = SPEECH_CHARS_PER_SECOND * shape.speed_percent
    audio = -(-shape.characters * SPEECH_TOKENS_PER_SECOND * 100 // per_second)
    return Usage(input_tokens=text_tokens, audio_output_tokens=audio, source=UsageSource.ESTIMATED)


def estimated_audio_ms(shape: AudioShape) -> int:
    """The file's duration as billed without usage: its header's, else its
    size at a typical rate (never above the hold)."""
    if shape.audio_ms is not None:
        return audio_hold_ms(shape)
    if shape.played_ms is not None:
        return min(shape.played_ms, audio_hold_ms(shape))
    return min(-(-shape.audio_bytes * 1000 // TYPICAL_BYTES_PER_SECOND), audio_hold_ms(shape))


def transcription_estimate(
    shape: AudioShape, model: Model, prompt_tokens: int, text_tokens: int
) -> Usage:
    """A transcription without usage: by the minute, its estimated duration;
    by tokens, the prompt and the transcript as counted and the audio at
    ``ESTIMATE_AUDIO_TOKENS_PER_SECOND``."""
    ms = estimated_audio_ms(shape)
    price = model.per_use
    if price is not None and price.audio_input_minute is not None:
        return Usage(audio_input_ms=ms, source=UsageSource.ESTIMATED)
    return Usage(
        input_tokens=prompt_tokens,
        audio_input_tokens=_per_second(ms, ESTIMATE_AUDIO_TOKENS_PER_SECOND),
        output_tokens=text_tokens,
        source=UsageSource.ESTIMATED,
    )


def reported_ms(answer: dict[str, Any]) -> int | None:
    """A verbose answer's ``duration`` (seconds) in whole ms, rounded up."""
    exact = _decimal(answer.get("duration"))
    if exact is None or not 0 <= exact <= 10**7:
        return None
    return int((exact * 1000).to_integral_value(rounding=ROUND_CEILING))
