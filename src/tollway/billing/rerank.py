"""What billing reads of a rerank request (``POST /v1/rerank``, Cohere/Jina shape).

Rerankers are billed one of two ways:

- by search units (Cohere: a per-call price per unit): one query with up to
  100 documents is one unit, and a document longer than a chunk (500 tokens
  with the query) counts as a document per chunk;
- by tokens (Jina, Voyage: a per-use input price): the query is read with
  every document, so tokens = query tokens x documents + document tokens.

The hold counts both from bytes (a token a byte at most, as for every
prompt); the settlement reads what the upstream reports
(``meta.billed_units.search_units``, ``usage.total_tokens``) and, where it
reports none, counts the same two figures with the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tollway.billing.shapes import CallShape, PromptParts, int_field
from tollway.errors import bad_request

MAX_DOCUMENTS = 1000  # Cohere's and Jina's advised most
DOCUMENTS_PER_SEARCH_UNIT = 100
CHUNK_TOKENS = 500  # a chunk of a document, with the query
# The least document text a chunk is counted to hold however long the query
# (a query near a chunk's size would otherwise make every byte a chunk).
MIN_CHUNK_TOKENS = 100
MAX_CHUNKS_PER_DOC = 10_000
MAX_TOKENS_PER_DOC = 1_000_000


@dataclass(frozen=True, slots=True)
class RerankRequest:
    query: str
    documents: tuple[str, ...]  # each document's text
    max_chunks_per_doc: int | None


def rerank_request(payload: dict[str, Any]) -> RerankRequest:
    """Read and check what billing reads, and the types of the options passed on."""
    query = payload.get("query")
    if not isinstance(query, str) or not query:
        raise bad_request("'query' must be a non-empty string.", param="query")
    documents = payload.get("documents")
    if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_DOCUMENTS:
        raise bad_request(
            f"'documents' must be an array of 1 to {MAX_DOCUMENTS} documents.", param="documents"
        )
    texts = tuple(_text(document) for document in documents)
    int_field(payload, "top_n", 1, MAX_DOCUMENTS)
    chunks = int_field(payload, "max_chunks_per_doc", 1, MAX_CHUNKS_PER_DOC)
    int_field(payload, "max_tokens_per_doc", 1, MAX_TOKENS_PER_DOC)
    returned = payload.get("return_documents")
    if returned is not None and not isinstance(returned, bool):
        raise bad_request("'return_documents' must be true or false.", param="return_documents")
    fields = payload.get("rank_fields")
    if fields is not None and not (
        isinstance(fields, list) and all(isinstance(f, str) for f in fields)
    ):
        raise bad_request("'rank_fields' must be an array of strings.", param="rank_fields")
    return RerankRequest(query, texts, chunks)


def _text(document: Any) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, dict) and isinstance(document.get("text"), str):
        return str(document["text"])
    raise bad_request(
        "Each document must be a string or an object with a 'text' string.", param="documents"
    )


def search_units(
    query_tokens: int, document_tokens: Sequence[int], max_chunks_per_doc: int | None = None
) -> int:
    """The search units a query costs over documents of these sizes (at least one)."""
    room = max(CHUNK_TOKENS - query_tokens, MIN_CHUNK_TOKENS)
    chunks = 0
    for tokens in document_tokens:
        chunked = max(-(-tokens // room), 1)
        chunks += chunked if max_chunks_per_doc is None else min(chunked, max_chunks_per_doc)
    return max(-(-chunks // DOCUMENTS_PER_SEARCH_UNIT), 1)


def pair_tokens(query_tokens: int, document_tokens: Sequence[int]) -> int:
    """The tokens a token-billed reranker reads: the query with every document."""
    return query_tokens * len(document_tokens) + sum(document_tokens)


def rerank_shape(payload: dict[str, Any], body_bytes: int) -> CallShape:
    """Held as search units (``n``) and as input tokens: the body, plus the
    query once more for every document after the first."""
    asked = rerank_request(payload)
    query = len(asked.query.encode())
    documents = [len(text.encode()) for text in asked.documents]
    units = search_units(query, documents, asked.max_chunks_per_doc)
    repeated = PromptParts(extra_tokens=query * (len(documents) - 1))
    return CallShape(body_bytes, max_output_tokens=0, n=units, parts=repeated)
