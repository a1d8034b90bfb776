"""Which genai-prices providers and models the catalog takes, and whose they are.

genai-prices lists models by the provider that sells them; an inference host
(Groq, Together) sells other makers' open-weight models, so their maker is
inferred from the model id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GenaiSource:
    """Which models of one genai-prices provider the catalog takes, and whose
    they are (``maker``; None: inferred from the model id)."""

    genai_provider: str
    maker: str | None
    include: str = ""
    exclude: str = ""


# Priority order: when two providers price the same id, the first one wins.
IMPORT_SOURCES: tuple[GenaiSource, ...] = (
    GenaiSource("openai", "openai", exclude=r"^(ft:|ada$|babbage|curie|davinci|text-davinci)|-$"),
    GenaiSource("anthropic", "anthropic"),
    # Google also lists Anthropic's models as resold on Vertex: Anthropic's own wins.
    GenaiSource("google", "google", include=r"^(gemini|gemma)"),
    GenaiSource("deepseek", "deepseek"),
    GenaiSource("mistral", "mistral", exclude=r"^(deepseek|zai)-"),
    GenaiSource("x-ai", "xai"),
    GenaiSource("cohere", "cohere"),
    GenaiSource("moonshotai", "moonshot"),
    GenaiSource("zai", "zhipu"),
    GenaiSource("minimax", "minimax"),
    GenaiSource("voyageai", "voyage"),
    GenaiSource("meta", "meta"),
    # Open-weight models (Llama, Qwen, Gemma, gpt-oss ...) at an inference host's price.
    GenaiSource("groq", None),
    GenaiSource(
        "together",
        None,
        include=r"^(meta-llama|Qwen|mistralai|deepseek-ai|google|moonshotai|zai-org|MiniMaxAI|nvidia)/",
        # Superseded generations and base (non-chat) checkpoints.
        exclude=r"Llama-2|Llama-3-|Qwen1\.5|-v0\.1$|gemma-\d+b$|coder-33b",
    ),
)

_MAKER_BY_ORG = {
    "meta-llama": "meta",
    "qwen": "qwen",
    "mistralai": "mistral",
    "deepseek-ai": "deepseek",
    "google": "google",
    "moonshotai": "moonshot",
    "zai-org": "zhipu",
    "minimaxai": "minimax",
    "openai": "openai",
    "nvidia": "nvidia",
}
_MAKER_BY_NAME = (
    ("deepseek", "deepseek"),
    ("qwen", "qwen"),
    ("mixtral", "mistral"),
    ("mistral", "mistral"),
    ("gemma", "google"),
    ("llama", "meta"),
    ("kimi", "moonshot"),
    ("gpt-oss", "openai"),
    ("whisper", "openai"),
    ("glm", "zhipu"),
)


def selected(model_id: str, source: GenaiSource) -> bool:
    """Whether ``source`` takes the model ``model_id``."""
    if ":" in model_id or " " in model_id:
        return False  # routing variants ("gpt-4o:extended"), not models to sell
    if source.include and not re.search(source.include, model_id):
        return False
    return not (source.exclude and re.search(source.exclude, model_id))


def maker_of(model_id: str, source: GenaiSource) -> str:
    """The source's maker, or one inferred from the id (the host's name if none fits)."""
    return source.maker or _maker_from_id(model_id, source.genai_provider)


def _maker_from_id(model_id: str, fallback: str) -> str:
    org, slash, _rest = model_id.partition("/")
    if slash and org.lower() in _MAKER_BY_ORG:
        return _MAKER_BY_ORG[org.lower()]
    name = model_id.lower()
    for needle, maker in _MAKER_BY_NAME:
        if needle in name:
            return maker
    return fallback
