"""What every management endpoint needs: the caller's account, and a JSON
body whose numbers never pass through a float."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from tollway.errors import ApiError, bad_request, forbidden, invalid_api_key
from tollway.gateway import Gateway
from tollway.manage import audit
from tollway.manage.accounts import SESSION_ACCOUNT, Account, by_management_key
from tollway.manage.checks import row_id
from tollway.timeutil import parse_iso
from tollway.types import MAX_ID, MoneyError, usd_to_nano


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def current_account(request: Request) -> Account:
    """The caller: by management key (Bearer), or a web session set upstream."""
    account = request.scope.get(SESSION_ACCOUNT)
    if not isinstance(account, Account):
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer " or not header[7:].strip():
            raise invalid_api_key("Send your management key as 'Authorization: Bearer ...'.")
        account = await by_management_key(gateway(request), header[7:].strip())
    audit.acting(account.id, account.username, account.is_admin)
    return account


async def admin_account(request: Request) -> Account:
    account = await current_account(request)
    if not account.is_admin:
        raise forbidden("Only an admin may do this.", "admin_only")
    return account


# How deep a body may nest: a chat request quoted under "request" (messages,
# content parts, a tool's JSON schema) needs a dozen levels at most.
MAX_DEPTH = 64


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object: numbers that are not integers parse as
    Decimal (never float); no NaN or Infinity; nested at most ``MAX_DEPTH``
    deep; no NUL in any string. Its size is limited where /api is mounted
    (``tollway.guard.BodyLimit``)."""
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}", parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise _nested_too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(
            f"The request body is not valid JSON: {str(exc)[:200]}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    _check_tree(data)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _nested_too_deep() -> ApiError:
    return bad_request(
        f"The request body nests deeper than {MAX_DEPTH} levels.", code="invalid_json"
    )


def _check_tree(data: Any) -> None:
    """Depth and NUL, walked without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _nested_too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_string(value)


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise bad_request("The request body has a NUL character in a string.", code="invalid_json")


def money_nano(value: Any, param: str) -> int:
    """A USD amount from JSON: a plain decimal string or a number (parsed as
    Decimal), within the maximum (``tollway.types.usd_to_nano``)."""
    try:
        return usd_to_nano(value)
    except MoneyError as exc:
        raise bad_request(f"'{param}': {exc}.", param=param) from None


def optional_money_nano(value: Any, param: str) -> int | None:
    return None if value is None else money_nano(value, param)


def optional_time(value: Any, param: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise bad_request(f"'{param}' must be an ISO 8601 time or null.", param=param)
    try:
        return parse_iso(value).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # Overflow: past year 9999 once in UTC
        raise bad_request(f"'{param}' is not an ISO 8601 time: {value!r}.", param=param) from exc


def target_account(caller: Account, asked: Any) -> int:
    """Whose resources: the caller's own, or (admins only) any account's."""
    if asked is None:
        return caller.id
    asked = row_id(asked, "account_id")
    if asked == caller.id:
        return caller.id
    if not caller.is_admin:
        raise forbidden("Only an admin may act on another account.", "admin_only")
    return asked


Caller = Annotated[Account, Depends(current_account)]
Admin = Annotated[Account, Depends(admin_account)]
# Ids in paths and query strings: what the id columns can hold, else a 400.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# A query string's text: a name or a filter (NUL is refused where /api is mounted).
QueryText = Annotated[str | None, Query(max_length=200)]
