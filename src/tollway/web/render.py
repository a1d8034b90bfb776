"""Templates and the filters pages share: USD amounts as exact strings, UTC
times, billing modes by their display names (``MODE_INFO``).

Jinja2 is imported when the first page is rendered, not at start: a worker
that only relays never loads it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.modes import MODE_INFO
from tollway.manage.accounts import SESSION_ACCOUNT
from tollway.timeutil import parse_iso
from tollway.types import BillingMode
from tollway.web.session import csrf_token, pop_flashes

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"
NO_STORE = {"Cache-Control": "no-store"}


def usd(amount: str | int | Decimal | None, none: str = "—") -> str:
    """'$1,234.50', '$0.000195', '−$5.00': grouped, at least cents, never rounded."""
    if amount is None:
        return none
    value = Decimal(str(amount))
    if value == value.quantize(Decimal("0.01")):
        value = value.quantize(Decimal("0.01"))
    sign = "−" if value < 0 else ""
    return f"{sign}${abs(value):,f}"


def when(iso_time: str | None, none: str = "—") -> str:
    if not iso_time:
        return none
    return parse_iso(iso_time).strftime("%Y-%m-%d %H:%M")


def mode_name(value: str) -> str:
    try:
        return MODE_INFO[BillingMode(value)].name
    except ValueError:
        return value


def make_templates() -> Jinja2Templates:
    import jinja2
    from starlette.templating import Jinja2Templates

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "svg"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=usd, when=when, mode_name=mode_name)
    return Jinja2Templates(env=env)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    state = request.app.state
    templates: Jinja2Templates | None = getattr(state, "templates", None)
    if templates is None:
        templates = state.templates = make_templates()
    account = request.scope.get(SESSION_ACCOUNT)
    base = {
        "account": account,
        "csrf": csrf_token(request),
        "flashes": pop_flashes(request),
        "path": request.url.path,
        "error": None,
    }
    return templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status, headers=headers
    )
