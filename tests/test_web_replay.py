"""The advisor's replay prices past calls as they were billed: variants and seconds."""

from tollway.billing.pricing import bill
from tollway.catalog import load_catalog
from tollway.manage.advisor import usage_of
from tollway.types import TOKEN_CLASSES, BillingMethod


def record(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "items": 1,
        "tokens": dict.fromkeys(TOKEN_CLASSES, 0),
        "unit_prices_usd": {},
        "detail": None,
    }
    base.update(fields)
    return base


def test_image_variant_and_video_seconds_come_back() -> None:
    catalog = load_catalog()
    hd = usage_of(record(unit_prices_usd={"images:1792x1024/hd": "0.12"}))
    assert bill(catalog.resolve("dall-e-3"), BillingMethod.PER_CALL, hd).total_nano == 120_000_000
    video = usage_of(
        record(
            unit_prices_usd={"seconds:1280x720/standard": "0.1"},
            detail="video video_ab12: 8 s at 1280x720",
        )
    )
    assert video.seconds == 8 and video.variant == "1280x720/standard"
    assert bill(catalog.resolve("sora-2"), BillingMethod.PER_CALL, video).total_nano == 800_000_000
