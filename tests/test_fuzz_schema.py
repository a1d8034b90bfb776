"""Schemathesis over the gateway's two OpenAPI documents: /api's (FastAPI's,
served at /api/openapi.json) as an admin and as a plain user, and the relay's
(tollway/relay/openapi_v1.yaml) with the API key of an account with credit.

Each operation gets a bounded, derandomized run of generated requests, valid
and invalid by its schema, against the gateway served on loopback with its
real database and a channel to the simulator. No answer may be a 5xx, and
every answer's status, content type and body (each event of a stream) must
be ones the document gives.
The relay's document must also list exactly the routes the app registers.

Schemathesis's calls block: they run on a thread while the served gateway
runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import compile_path

from tollway import relay
from tollway.api import create_api
from tollway.relay.openapi import openapi_v1
from tollway.simulator import Simulator

from conftest import ADMIN_KEY, Served, customer

# Examples per operation and generation mode; more for a longer hunt:
# TOLLWAY_SCHEMA_EXAMPLES=200 python3 -m pytest tests/test_fuzz_schema.py
EXAMPLES = int(os.environ.get("TOLLWAY_SCHEMA_EXAMPLES", "15"))
RUN = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run: CI stays stable
    database=None,
    suppress_health_check=list(HealthCheck),
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def v1_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (METHOD, path) the document lists."""
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in _path_item(document, item)
        if method in METHODS
    }


def _path_item(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    ref = item.get("$ref")
    if ref is None:
        return item
    found: dict[str, Any] = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def registered_route(method: str, path: str) -> str | None:
    """The relay route (``relay.ENDPOINTS``) that serves a documented
    operation, matched as the app matches it (its parameters filled in)."""
    concrete = path.replace("{model}", "gpt-4o").replace("{video_id}", "video_x")
    for route_method, template, _, _ in relay.ENDPOINTS:
        regex, _, _ = compile_path(template)
        if route_method == method and regex.match(concrete):
            return f"{route_method} {template}"
    return None


def test_the_v1_document_is_valid_openapi() -> None:
    document = openapi_v1()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_api_document_is_valid_openapi_and_names_the_errors_it_answers() -> None:
    document = create_api().openapi()
    validate(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "422" not in answers, (method, path)  # invalid input is a 400
            assert {"400", "401", "404"} <= set(answers), (method, path)


def test_the_v1_document_lists_every_registered_route_and_nothing_else() -> None:
    documented = v1_operations(openapi_v1())
    served = {registered_route(method, path): (method, path) for method, path in documented}
    assert None not in served, [op for op in documented if registered_route(*op) is None]
    registered = {f"{method} {path}" for method, path, _, _ in relay.ENDPOINTS}
    assert set(served) == registered, set(served) ^ registered


def fuzz(
    schema: schemathesis.BaseSchema,
    base_url: str,
    headers: dict[str, str],
    keep: Callable[[Any], bool] = lambda case: True,
) -> Counter[int]:
    """Every operation of ``schema``: its documented examples, then a bounded
    run of valid and invalid data. Returns how many answers had each status."""
    statuses: Counter[int] = Counter()

    def call(case: Any) -> None:
        got = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        statuses[got.status_code] += 1

    for result in schema.get_all_operations():
        operation = result.ok()
        for example in schema.get_strategies_from_examples(operation):
            settings(RUN, max_examples=1)(given(case=example.filter(keep))(call))()
        generated = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])
        RUN(given(case=generated.filter(keep))(call))()
    return statuses


def not_the_admin(admin_id: int) -> Callable[[Any], bool]:
    """Keeps the admin's own account out of the run: disabling it (PATCH
    /users/{id}) would leave the rest of the run answering 401s."""
    return lambda case: str((case.path_parameters or {}).get("account_id")) != str(admin_id)


@pytest.mark.timeout(300)
async def test_schemathesis_over_v1_and_api(served: Served, simulator: Simulator) -> None:
    owner = await served.new_account("50")
    token = await served.new_token(owner["management_key"], quota_usd="20")
    user = await served.new_account("5")
    admin_id = (await served.admin.get("/api/me")).json()["id"]
    v1 = schemathesis.openapi.from_dict(openapi_v1())
    api_url = served.base_url + "/api"
    # Video jobs stay unfinished: none settles in the background meanwhile.
    rendering = simulator.config.video_render_ms
    simulator.update_config(video_render_ms=3_600_000)
    try:
        # The relay first: the admin's run below may disable its channel or account.
        relayed = await asyncio.to_thread(
            fuzz,
            v1,
            served.base_url,
            {"Authorization": f"Bearer {token['key']}"},
        )
        api = await asyncio.to_thread(schemathesis.openapi.from_url, api_url + "/openapi.json")
        managed = await asyncio.to_thread(
            fuzz, api, api_url, {"Authorization": f"Bearer {user['management_key']}"}
        )
        managed += await asyncio.to_thread(
            fuzz, api, api_url, {"Authorization": f"Bearer {ADMIN_KEY}"}, not_the_admin(admin_id)
        )
        # The run reached past the first checks: calls were served and billed.
        assert relayed[200] >= 8, relayed
        assert managed[200] + managed[201] >= 20, managed
    finally:
        simulator.update_config(video_render_ms=rendering)


async def test_a_form_field_named_with_a_control_character_is_no_5xx(served: Served) -> None:
    _, key = await customer(served, "5", billing_mode="pay_per_call")
    # Written by hand: httpx would escape the name (as the openai SDK does).
    body = (
        b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na cat\r\n'
        b'--b\r\nContent-Disposition: form-data; name="a\x0eb"\r\n\r\n1\r\n--b--\r\n'
    )
    async with served.client(key) as client:
        got = await client.post(
            "/v1/videos",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    assert got.status_code < 500, got.text
