"""What every management endpoint needs: the caller's account, and a JSON
body whose numbers never pass through a float."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Request

from tollway.errors import bad_request, forbidden, invalid_api_key
from tollway.gateway import Gateway
from tollway.manage.accounts import SESSION_ACCOUNT, Account, by_management_key
from tollway.timeutil import parse_iso
from tollway.types import MoneyError, usd_to_nano


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def current_account(request: Request) -> Account:
    """The caller: by management key (Bearer), or a web session set upstream."""
    session_account = request.scope.get(SESSION_ACCOUNT)
    if isinstance(session_account, Account):
        return session_account
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer " or not header[7:].strip():
        raise invalid_api_key("Send your management key as 'Authorization: Bearer ...'.")
    return await by_management_key(gateway(request), header[7:].strip())


async def admin_account(request: Request) -> Account:
    account = await current_account(request)
    if not account.is_admin:
        raise forbidden("Only an admin may do this.", "admin_only")
    return account


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return data


def money_nano(value: Any, param: str) -> int:
    """A USD amount from JSON: a string or a number (parsed as Decimal)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise bad_request(
            f"'{param}' must be a decimal amount in USD, e.g. \"10.50\".", param=param
        )
    try:
        return usd_to_nano(value.strip() if isinstance(value, str) else value)
    except MoneyError as exc:
        raise bad_request(f"'{param}': {exc}", param=param) from exc


def optional_money_nano(value: Any, param: str) -> int | None:
    return None if value is None else money_nano(value, param)


def optional_time(value: Any, param: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be an ISO 8601 time or null.", param=param)
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise bad_request(f"'{param}' is not an ISO 8601 time: {value!r}.", param=param) from exc


def target_account(caller: Account, asked: int | None) -> int:
    """Whose resources: the caller's own, or (admins only) any account's."""
    if asked is None or asked == caller.id:
        return caller.id
    if not caller.is_admin:
        raise forbidden("Only an admin may act on another account.", "admin_only")
    return asked


Caller = Annotated[Account, Depends(current_account)]
Admin = Annotated[Account, Depends(admin_account)]
