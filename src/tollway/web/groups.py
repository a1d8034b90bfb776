"""Admin: price groups (docs/billing.md, "Price groups"). The list with each
group's multiplier, description and place in the auto list; an add form and
an edit page (multiplier, description, auto rank: blank takes the group out
of the auto list). Through tollway.manage.groups, as /api/groups.

Groups are not renamed or deleted: tokens, accounts, channels and usage
records name them.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError
from tollway.manage import groups as service
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import admin_page, field, flash, form_of, gateway

LIST = "/admin/groups"
# A group's name goes in the query: "." and ".." are names, and a browser
# would resolve them as a path's segments.
EDIT = LIST + "/edit"
FIELDS = ("name", "multiplier", "description", "auto_rank")


def routes() -> list[Route]:
    return [
        Route(LIST, groups_page, methods=["GET"]),
        Route(LIST, create_group, methods=["POST"]),
        Route(EDIT, edit_page, methods=["GET"]),
        Route(EDIT, save_group, methods=["POST"]),
    ]


def blank_form() -> dict[str, str]:
    return {"name": "", "multiplier": "1", "description": "", "auto_rank": ""}


def form_values(form: FormData) -> dict[str, str]:
    return {name: field(form, name) for name in FIELDS}


def group_form(group: dict[str, Any]) -> dict[str, str]:
    """An edit form's starting values: the group's."""
    rank = group["auto_rank"]
    return {
        "name": group["name"],
        "multiplier": group["multiplier"],
        "description": group["description"] or "",
        "auto_rank": "" if rank is None else str(rank),
    }


def parsed(values: dict[str, str], new: bool) -> dict[str, Any]:
    """The service's fields from the form (the multiplier stays the text typed:
    the service reads it as a decimal, never a float)."""
    fields: dict[str, Any] = {"name": values["name"]} if new else {}
    rank = values["auto_rank"]
    fields["multiplier"] = values["multiplier"]
    fields["description"] = values["description"] or None
    fields["auto_rank"] = forms.whole_number(rank, "Auto rank", "auto_rank", 0) if rank else None
    return fields


def with_places(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each group with ``auto_place``: 1 for the first group a token of group
    ``auto`` tries (lowest rank, then name, as the router orders them), None
    when the group is not in the auto list."""
    ranked = sorted((g["auto_rank"], g["name"]) for g in groups if g["auto_rank"] is not None)
    places = {name: place for place, (_, name) in enumerate(ranked, start=1)}
    return [{**g, "auto_place": places.get(g["name"])} for g in groups]


async def _list(
    request: Request, values: dict[str, str], status: int = 200, error: str | None = None
) -> Response:
    groups = with_places(await service.list_groups(gateway(request)))
    context = {"groups": groups, "form": values, "error": error}
    return render(request, "admin_groups.html", context, status=status)


@admin_page
async def groups_page(request: Request) -> Response:
    return await _list(request, blank_form())


@admin_page
async def create_group(request: Request) -> Response:
    values = form_values(form_of(request))
    try:
        made = await service.create_group(gateway(request), parsed(values, new=True))
    except ApiError as exc:
        return await _list(request, values, 400, exc.message)
    flash(request, f"Added group “{made['name']}” at × {made['multiplier']}.")
    return RedirectResponse(LIST, status_code=303)


async def _edit(
    request: Request, group: dict[str, Any], values: dict[str, str], error: str | None = None
) -> Response:
    context = {"group": group, "form": values, "error": error}
    return render(request, "admin_group.html", context, status=400 if error else 200)


@admin_page
async def edit_page(request: Request) -> Response:
    group = await service.get_group(gateway(request), request.query_params.get("name", ""))
    return await _edit(request, group, group_form(group))


@admin_page
async def save_group(request: Request) -> Response:
    gw = gateway(request)
    group = await service.get_group(gw, request.query_params.get("name", ""))
    values = {**form_values(form_of(request)), "name": group["name"]}
    try:
        saved = await service.update_group(gw, group["name"], parsed(values, new=False))
    except ApiError as exc:
        return await _edit(request, group, values, exc.message)
    name, multiplier = saved["name"], saved["multiplier"]
    flash(request, f"Saved group “{name}” (× {multiplier}); it applies from the next call.")
    return RedirectResponse(LIST, status_code=303)
