"""Money as it comes in (amounts in USD, as clients and admins write them):
plain ASCII decimal strings or JSON numbers, at most 9 decimal places, within
one documented maximum; and a balance that never leaves the range 64 bits
hold, whatever is credited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from test_ledger import account

from tollway.db.schema import accounts, ledger
from tollway.ledger import Ledger, LedgerError
from tollway.types import MAX_NANO, MAX_USD, MoneyError, usd_to_nano

GOOD = [
    ("0", 0),
    ("10", 10_000_000_000),
    ("0.5", 500_000_000),
    ("-2.25", -2_250_000_000),
    ("-0", 0),
    ("007.10", 7_100_000_000),
    ("0.000000001", 1),
    ("1000000000", MAX_NANO),
    ("-1000000000", -MAX_NANO),
    (12, 12_000_000_000),
    (Decimal("1E+3"), 1_000_000_000_000),  # a JSON number 1e3: a number, exact, in range
    (Decimal("2.50000000000"), 2_500_000_000),  # trailing zeros are exact
    (Decimal("1000000000"), MAX_NANO),
]

BAD = [
    "1_000",  # Python's digit separators
    "٣",  # an Arabic-Indic digit
    "３",  # a fullwidth digit
    " 1",
    "1 ",
    "1 000",
    "\t5",
    "",
    "-",
    ".5",
    "5.",
    "+5",
    "1e3",
    "1E3",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "sNaN",
    "0x10",
    "1,000",
    "0.0000000001",  # finer than a nano-USD
    "1000000000.000000001",  # just past the maximum
    "9223372036.854775807",
    "1e30",
    "1e309",
    "1" * 5000,
    "5\x00",
    "１",
    1.5,  # a float: never
    True,
    None,
    [1],
    {"amount": 1},
    10**20,
    -(10**10),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1E+30"),
    Decimal("1E+309"),
    Decimal("1E-10"),
    Decimal("1000000000.000000001"),
    Decimal("0.1000000000000000000000000000000000001"),  # past Decimal's 28 digits
]


@pytest.mark.parametrize(("text", "nano"), GOOD)
def test_plain_amounts_parse_exactly(text: str | int | Decimal, nano: int) -> None:
    assert usd_to_nano(text) == nano


@pytest.mark.parametrize("text", BAD, ids=repr)
def test_anything_else_is_refused(text: object) -> None:
    with pytest.raises(MoneyError):
        usd_to_nano(text)  # type: ignore[arg-type]


def test_the_maximum_leaves_room_for_a_sum_in_64_bits() -> None:
    assert MAX_USD == 1_000_000_000
    assert MAX_NANO * 4 < 2**63  # balance + amount, both at most the maximum, never overflows


async def test_a_credit_past_the_maximum_balance_is_refused_and_not_applied(
    engine: AsyncEngine, book: Ledger
) -> None:
    account_id, _ = await account(engine, 0)
    assert await book.credit(account_id, MAX_NANO, "the most") == MAX_NANO
    with pytest.raises(LedgerError, match="maximum"):
        await book.credit(account_id, 1, "one nano too many")
    assert await book.credit(account_id, -MAX_NANO, "back") == 0
    assert await book.credit(account_id, -MAX_NANO, "the least") == -MAX_NANO
    with pytest.raises(LedgerError, match="maximum"):
        await book.credit(account_id, -1, "one nano too few")
    with pytest.raises(LedgerError, match="maximum"):
        await book.credit(account_id, 2**63, "past 64 bits")
    async with engine.connect() as conn:
        balance = (
            await conn.execute(select(accounts.c.balance_nano).where(accounts.c.id == account_id))
        ).scalar_one()
        query = select(ledger.c.amount_nano).where(ledger.c.account_id == account_id)
        entries = (await conn.execute(query)).scalars()
        assert isinstance(balance, int) and balance == -MAX_NANO
        assert sorted(entries) == sorted([MAX_NANO, -MAX_NANO, -MAX_NANO])
