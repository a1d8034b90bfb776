"""``POST /v1/rerank``: deterministic relevance scores in Cohere's or Jina's shape.

Models billed by tokens (``jina-*``, Voyage's ``rerank-2*``) answer as Jina:
``{model, usage: {total_tokens, prompt_tokens}, results}``, each result with
its ``document`` unless ``return_documents`` is false. Every other model
answers as Cohere (v1): ``{id, results, meta: {api_version, billed_units:
{search_units}}}``, a result's ``document`` only when ``return_documents``.

Counted by words, as the other endpoints (a test can compute it):

- tokens = query words x documents + the documents' words;
- search units = ceil(chunks / 100), a document being
  ceil((query words + its words) / 500) chunks (at least one).

A document's score is the share of the query's words it contains, nudged
by a hash so that ties keep a stable order; results are sorted by score,
highest first, cut to ``top_n``. Directives ride in the query
(``[sim:no_usage]`` leaves out the usage or billed units).
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from .common import (
    STATE,
    ApiError,
    begin_call,
    int_param,
    json_response,
    read_json,
    require_model,
    usage_wanted,
)
from .directives import DirectiveError, parse_directives

TOKEN_BILLED = ("jina", "rerank-2")
MAX_DOCUMENTS = 10_000
CHUNK_WORDS = 500
DOCUMENTS_PER_SEARCH_UNIT = 100


def _documents(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_DOCUMENTS:
        raise ApiError(
            400, f"documents must hold 1 to {MAX_DOCUMENTS} documents", param="documents"
        )
    texts = []
    for document in raw:
        if isinstance(document, dict) and isinstance(document.get("text"), str):
            document = document["text"]
        if not isinstance(document, str):
            raise ApiError(400, "each document must be a string or {text}", param="documents")
        texts.append(document)
    return texts


def score(query: str, document: str) -> float:
    asked = set(query.lower().split())
    found = len(asked.intersection(document.lower().split())) / max(len(asked), 1)
    nudge = hashlib.blake2b(document.encode(), digest_size=2).digest()
    return round(0.05 + 0.9 * found + int.from_bytes(nudge, "big") / 65535 / 100, 6)


def tokens(query: str, documents: list[str]) -> int:
    words = len(query.split())
    return words * len(documents) + sum(len(d.split()) for d in documents)


def search_units(query: str, documents: list[str]) -> int:
    words = len(query.split())
    chunks = sum(max(-(-(words + len(d.split())) // CHUNK_WORDS), 1) for d in documents)
    return -(-chunks // DOCUMENTS_PER_SEARCH_UNIT)


async def rerank(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    model = require_model(body)
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise ApiError(400, "query must be a non-empty string", param="query")
    documents = _documents(body.get("documents"))
    top_n = int_param(body, "top_n", 1, MAX_DOCUMENTS) or len(documents)
    try:
        directives = parse_directives(query)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="query") from exc
    await begin_call(state, directives)
    jina = model.startswith(TOKEN_BILLED)
    returned = body.get("return_documents", jina) is True
    ranked = sorted(range(len(documents)), key=lambda i: (-score(query, documents[i]), i))[:top_n]
    results = []
    for index in ranked:
        entry: dict[str, Any] = {"index": index, "relevance_score": score(query, documents[index])}
        if returned:
            entry["document"] = {"text": documents[index]}
        results.append(entry)
    reported = usage_wanted(state, directives)
    if jina:
        out: dict[str, Any] = {"model": model, "results": results}
        if reported:
            used = tokens(query, documents)
            out["usage"] = {"total_tokens": used, "prompt_tokens": used}
        return json_response(out)
    meta: dict[str, Any] = {"api_version": {"version": "1"}}
    if reported:
        meta["billed_units"] = {"search_units": search_units(query, documents)}
    return json_response({"id": state.new_id("rerank"), "results": results, "meta": meta})


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/rerank", rerank)
