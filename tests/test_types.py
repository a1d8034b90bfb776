from decimal import Decimal

import pytest

from tollway.types import MoneyError, nano_to_usd, usd_to_nano


@pytest.mark.parametrize(
    ("amount", "nano"),
    [
        ("0.000195", 195_000),
        ("5", 5_000_000_000),
        (3, 3_000_000_000),
        (Decimal("0.000000001"), 1),
        ("-1.5", -1_500_000_000),
        (Decimal("1E-3"), 1_000_000),  # a JSON number 1e-3; as a string it is refused
    ],
)
def test_usd_to_nano(amount: str | int | Decimal, nano: int) -> None:
    assert usd_to_nano(amount) == nano


@pytest.mark.parametrize(
    "bad", [0.1, True, "abc", "0.0000000001", "NaN", "Infinity", None, "1e-3", "1_000"]
)
def test_usd_to_nano_refuses(bad: object) -> None:
    with pytest.raises(MoneyError):
        usd_to_nano(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("nano", "text"),
    [
        (195_000, "0.000195"),
        (0, "0"),
        (5_000_000_000, "5"),
        (-1_500_000_000, "-1.5"),
        (1, "0.000000001"),
    ],
)
def test_nano_to_usd(nano: int, text: str) -> None:
    assert nano_to_usd(nano) == text
