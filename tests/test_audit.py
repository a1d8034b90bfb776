"""The admin audit log: credits and debits, price and group edits, account
changes and tokens edited by admins are written with who and what; a user's
own token edits are not; keys and passwords never appear; only admins read it."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Served, customer


async def audit(served: Served, **params: Any) -> list[dict[str, Any]]:
    got = await served.admin.get("/api/audit", params=params)
    assert got.status_code == 200, got.text
    entries: list[dict[str, Any]] = got.json()["data"]
    return entries


async def test_admin_changes_are_written_with_who_and_what(served: Served) -> None:
    account = await served.new_account("2.50")  # a credit by the admin
    target = f"account:{account['id']}"
    await served.admin.patch(f"/api/users/{account['id']}", json={"rpm_limit": 9})
    await served.admin.post(
        f"/api/users/{account['id']}/credit", json={"amount_usd": "-0.50", "reason": "refund"}
    )
    entries = await audit(served, target=target)
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["account.debit", "account.limits", "account.credit"]
    debit = entries[0]
    assert debit["actor"] == "admin (admin)" and debit["actor_account_id"] is not None
    assert debit["detail"] == {"amount_usd": "-0.5", "reason": "refund"}
    assert entries[1]["detail"] == {"rpm_limit": 9}


async def test_price_and_group_edits_are_written(served: Served) -> None:
    got = await served.admin.patch(
        "/api/models/gpt-4o-mini", json={"per_use": {"input_mtok": "0.2", "output_mtok": "0.7"}}
    )
    assert got.status_code == 200, got.text
    await served.admin.post("/api/groups", json={"name": "vip", "multiplier": "0.8"})
    entries = await audit(served, action="model.")
    assert entries[0]["target"] == "model:gpt-4o-mini"
    assert entries[0]["detail"]["per_use"]["input_mtok"] == "0.2"
    groups = await audit(served, action="group.create")
    assert groups[0]["detail"]["multiplier"] == "0.8"


async def test_tokens_edited_by_admins_only(served: Served) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        token = (await c.post("/api/tokens", json={"name": "mine"})).json()
        await c.patch(f"/api/tokens/{token['id']}", json={"name": "renamed"})  # the user's own
    await served.admin.patch(f"/api/tokens/{token['id']}", json={"enabled": False})
    entries = await audit(served, target=f"token:{token['id']}")
    assert [e["action"] for e in entries] == ["token.update"]
    assert entries[0]["detail"]["enabled"] is False


async def test_secrets_never_reach_the_log(served: Served) -> None:
    account = await served.new_account("0")
    await served.admin.patch(f"/api/users/{account['id']}", json={"password": "s3cret-pass!"})
    got = await served.admin.get("/api/audit")
    assert "s3cret-pass!" not in got.text
    assert ADMIN_KEY not in got.text and account["management_key"] not in got.text
    entry = (await audit(served, action="account.password"))[0]
    assert entry["detail"] == {"password": "(changed)"}


async def test_only_admins_read_it(served: Served) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        got = await c.get("/api/audit")
    assert got.status_code == 403


async def test_channel_changes_are_written_without_their_keys(served: Served) -> None:
    channel = {"name": "audited", "type": "openai", "base_url": "http://127.0.0.1:1/v1",
               "api_key": "sk-upstream-very-secret", "models": ["gpt-4o"]}  # fmt: skip
    made = await served.admin.post("/api/channels", json=channel)
    assert made.status_code == 201, made.text
    channel_id = made.json()["id"]
    await served.admin.patch(f"/api/channels/{channel_id}", json={"priority": 5})
    await served.admin.delete(f"/api/channels/{channel_id}")
    entries = await audit(served, target=f"channel:{channel_id}")
    assert [e["action"] for e in entries] == ["channel.delete", "channel.update", "channel.create"]
    assert entries[1]["detail"] == {"priority": 5}
    assert entries[2]["detail"]["api_keys"] == "(changed)"
    got = await served.admin.get("/api/audit")
    assert "sk-upstream-very-secret" not in got.text
