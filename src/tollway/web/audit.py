"""Admin: the audit log (docs/audit.md). The newest entries first: when, who,
the action, its target and what changed (compact JSON), filtered by an action
prefix ("account.") or an exact target ("account:5"), up to a limit. Through
tollway.manage.audit, as GET /api/audit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.errors import bad_request
from tollway.manage import audit as service
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import admin_page, gateway

PATH = "/admin/audit"
DEFAULT_LIMIT = 100


def routes() -> list[Route]:
    return [Route(PATH, audit_page, methods=["GET"])]


@dataclass(frozen=True)
class Filters:
    action: str
    target: str
    limit: int


def filters_of(params: Any) -> Filters:
    """The query's filters; a limit outside 1 to ``MAX_LISTED`` is explained, not clamped."""
    limit = forms.whole_number(params.get("limit", ""), "Limit", "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= service.MAX_LISTED:
        raise bad_request(f"Limit: enter a number from 1 to {service.MAX_LISTED}.", "limit")
    return Filters(params.get("action", "").strip(), params.get("target", "").strip(), limit)


def compact(detail: dict[str, Any] | None) -> str:
    """What changed, as one line of JSON (keys in the order the change wrote them)."""
    return "" if detail is None else json.dumps(detail, separators=(",", ":"), ensure_ascii=False)


@admin_page
async def audit_page(request: Request) -> Response:
    chosen = filters_of(request.query_params)
    entries = await service.list_audit(
        gateway(request), chosen.limit, chosen.action or None, chosen.target or None
    )
    for entry in entries:
        entry["detail_json"] = compact(entry["detail"])
    context = {"entries": entries, "filters": chosen, "max_listed": service.MAX_LISTED}
    return render(request, "admin_audit.html", context)
