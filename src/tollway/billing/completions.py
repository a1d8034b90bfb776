"""What billing reads of a legacy completions request (``POST /v1/completions``).

A request names one prompt or several (``prompt``: a string, an array of
strings, an array of token ids, or an array of token-id arrays); the upstream
answers ``n`` choices for each, and generates ``best_of`` of them server-side
(billed, though only ``n`` come back). So the hold is the prompt's bytes (as
for chat: no tokenizer bills more than a token a byte, and a token id takes
at least a digit and a comma) plus ``max_tokens`` x max(n, best_of) x
prompts; without ``max_tokens`` the gateway's default hold of output tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.billing.shapes import MAX_N, MAX_OUTPUT_TOKENS, CallShape, int_field
from tollway.errors import bad_request

MAX_PROMPTS = 2048  # OpenAI's batch limit for an array of prompts
MAX_BEST_OF = 20
MAX_LOGPROBS = 5
MAX_STOP = 4
MAX_TOKEN_ID = 2**31 - 1  # a vocabulary is far smaller; a 32-bit id is the range


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A completions body as billing reads it."""

    prompts: int  # how many prompts (each gets n choices)
    n: int
    best_of: int  # generated per prompt (at least n)
    max_tokens: int | None
    stream: bool

    @property
    def choices(self) -> int:
        """The choices the answer carries: what a per-call price is charged by."""
        return self.prompts * self.n


def completion_request(payload: dict[str, Any]) -> CompletionRequest:
    """Read and check the fields billing reads, and the types of the rest it passes on."""
    prompts = prompt_count(payload.get("prompt"))
    n = int_field(payload, "n", 1, MAX_N) or 1
    best_of = int_field(payload, "best_of", 1, MAX_BEST_OF)
    if best_of is not None and best_of < n:
        raise bad_request("'best_of' must be at least 'n'.", param="best_of")
    stream = _flag(payload, "stream")
    if stream and best_of is not None and best_of > n:
        raise bad_request("'best_of' cannot be used with 'stream'.", param="best_of")
    _flag(payload, "echo")
    int_field(payload, "logprobs", 0, MAX_LOGPROBS)
    _check_suffix(payload.get("suffix"))
    _check_stop(payload.get("stop"))
    _check_stream_options(payload.get("stream_options"))
    max_tokens = int_field(payload, "max_tokens", 0, MAX_OUTPUT_TOKENS)
    return CompletionRequest(prompts, n, best_of or n, max_tokens, stream)


def completion_shape(payload: dict[str, Any], body_bytes: int) -> CallShape:
    """The body's bytes as its prompt, max_tokens per generated choice."""
    asked = completion_request(payload)
    return CallShape(body_bytes, asked.max_tokens, asked.prompts * asked.best_of)


def prompt_count(prompt: Any) -> int:
    """How many prompts ``prompt`` holds, or a 400 when it is none of its four forms."""
    if isinstance(prompt, str):
        return 1
    if not isinstance(prompt, list) or not prompt:
        raise bad_request(
            "'prompt' must be a string, an array of strings, an array of token ids or an "
            "array of token-id arrays (not empty).",
            param="prompt",
        )
    if len(prompt) > MAX_PROMPTS:
        raise bad_request(f"'prompt' may hold at most {MAX_PROMPTS} prompts.", param="prompt")
    if all(isinstance(item, str) for item in prompt):
        return len(prompt)
    if _token_ids(prompt):
        return 1
    if all(isinstance(item, list) and item and _token_ids(item) for item in prompt):
        return len(prompt)
    raise bad_request(
        "'prompt' must not mix strings, token ids and token-id arrays; a token id is a whole "
        f"number from 0 to {MAX_TOKEN_ID}.",
        param="prompt",
    )


def _token_ids(items: list[Any]) -> bool:
    return all(
        isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= MAX_TOKEN_ID for t in items
    )


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"'{name}' must be true or false.", param=name)
    return value is True


def _check_suffix(suffix: Any) -> None:
    if suffix is not None and not isinstance(suffix, str):
        raise bad_request("'suffix' must be a string.", param="suffix")


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if (
        not isinstance(stop, list)
        or len(stop) > MAX_STOP
        or not all(isinstance(s, str) for s in stop)
    ):
        raise bad_request(
            f"'stop' must be a string or an array of at most {MAX_STOP} strings.", param="stop"
        )


def _check_stream_options(options: Any) -> None:
    if options is None:
        return
    usage = options.get("include_usage") if isinstance(options, dict) else None
    if not isinstance(options, dict) or (usage is not None and not isinstance(usage, bool)):
        raise bad_request(
            "'stream_options' must be an object; its 'include_usage' true or false.",
            param="stream_options",
        )
