"""Per-use prices imported from genai-prices, and the refresh plan built on them."""

from __future__ import annotations

import datetime
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import types as gp

from tollway.catalog import Catalog, load_catalog
from tollway.catalog.genai_import import (
    ImportedPrice,
    apply_markup,
    genai_prices_version,
    import_per_use_prices,
    is_genai_sourced,
    plan_price_refresh,
)
from tollway.catalog.loader import default_catalog_paths, read_catalog_file
from tollway.types import Model, ModelKind, PerUsePrice

D = Decimal
DAY = datetime.date(2026, 11, 27)
REPO = Path(__file__).resolve().parent.parent


def _info(model_id: str, prices: object, **extra: object) -> gp.ModelInfo:
    return gp.ModelInfo(
        id=model_id,
        match=gp.ClauseEquals(equals=model_id),
        prices=prices,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def _provider(*models: gp.ModelInfo, provider_id: str = "openai") -> list[gp.Provider]:
    return [gp.Provider(id=provider_id, name=provider_id, api_pattern="x", models=list(models))]


def _import_one(
    info: gp.ModelInfo, markup: Decimal = Decimal(0), day: datetime.date = DAY
) -> ImportedPrice | None:
    found = import_per_use_prices(markup, as_of=day, providers=_provider(info))
    return found[0] if found else None


# --- markup arithmetic --------------------------------------------------------


@pytest.mark.parametrize(
    ("price_usd", "markup_pct", "expected_nano"),
    [
        ("0.075", 10, 82_500_000),
        ("0.075", 0, 75_000_000),
        ("5", 0, 5_000_000_000),
        ("2.5", "12.5", 2_812_500_000),
        ("0.000000005", 10, 6),  # 5.5 nano rounds half-up to 6
        ("0.000000001", 25, 1),  # 1.25 rounds down to 1
        ("0.000000001", 50, 2),  # 1.5 rounds half-up to 2
        ("0.0000000001", 0, 0),  # finer than a nano: rounds to 0
    ],
)
def test_apply_markup_is_exact(price_usd: str, markup_pct: int | str, expected_nano: int) -> None:
    assert apply_markup(D(price_usd), D(markup_pct)) == expected_nano


def test_import_applies_the_markup_to_every_price() -> None:
    info = _info(
        "m", gp.ModelPrice(input_mtok=D("0.075"), cache_read_mtok=D("0.01"), output_mtok=D("0.3"))
    )
    price = _import_one(info, markup=D(10))
    assert price is not None
    assert price.per_use == PerUsePrice(
        input_mtok=82_500_000, output_mtok=330_000_000, cached_input_mtok=11_000_000
    )


@pytest.mark.parametrize("bad", [0.1, -1, D("-0.5"), D("NaN")])
def test_markup_must_be_exact_and_not_negative(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        import_per_use_prices(bad, providers=[])


# --- how genai-prices' price model is reduced ---------------------------------


def test_tiered_prices_become_tiers_restating_every_class() -> None:
    tiered = gp.TieredPrices(
        base=D("1.25"),
        tiers=[gp.Tier(start=200_000, price=D("2.5")), gp.Tier(start=1_000_000, price=D("5"))],
    )
    output = gp.TieredPrices(base=D("10"), tiers=[gp.Tier(start=200_000, price=D("15"))])
    prices = gp.ModelPrice(input_mtok=tiered, output_mtok=output, cache_write_mtok=D("1.5"))
    price = _import_one(_info("m", prices, name="Model"))
    assert price is not None
    assert price.per_use.input_mtok == 1_250_000_000
    assert price.per_use.cache_write_mtok == 1_500_000_000
    assert [
        (t.above_tokens, t.price.input_mtok, t.price.output_mtok) for t in price.per_use.tiers
    ] == [
        (200_000, 2_500_000_000, 15_000_000_000),
        (1_000_000, 5_000_000_000, 15_000_000_000),  # output has no second tier: it stays
    ]
    assert price.per_use.tiers[0].price.cache_write_mtok == 1_500_000_000  # untiered: the base
    assert price.description == "Model"


def test_date_conditional_price_is_the_one_in_force() -> None:
    old = gp.ModelPrice(input_mtok=D("1"), output_mtok=D("2"))
    new = gp.ModelPrice(input_mtok=D("3"), output_mtok=D("4"))
    info = _info(
        "m",
        [
            gp.ConditionalPrice(prices=old),
            gp.ConditionalPrice(
                constraint=gp.StartDateConstraint(start_date=datetime.date(2027, 1, 1)), prices=new
            ),
        ],
    )
    before = _import_one(info, day=datetime.date(2026, 12, 31))
    after = _import_one(info, day=datetime.date(2027, 1, 1))
    assert before is not None and before.per_use.input_mtok == 1_000_000_000
    assert after is not None and after.per_use.input_mtok == 3_000_000_000


def test_time_of_day_price_takes_the_peak() -> None:
    off_peak = gp.ModelPrice(input_mtok=D("0.135"), output_mtok=D("0.55"))
    peak = gp.ModelPrice(input_mtok=D("0.27"), output_mtok=D("1.1"))
    window = gp.TimeOfDateConstraint(
        start_time=datetime.time(0, 30, tzinfo=datetime.UTC),
        end_time=datetime.time(16, 30, tzinfo=datetime.UTC),
    )
    info = _info(
        "m",
        [gp.ConditionalPrice(prices=off_peak), gp.ConditionalPrice(constraint=window, prices=peak)],
    )
    price = _import_one(info)
    assert price is not None
    assert price.per_use == PerUsePrice(270_000_000, 1_100_000_000)


def test_a_model_with_an_unbillable_price_key_is_skipped() -> None:
    info = _info("m", gp.ModelPrice(input_mtok=D("1"), output_mtok=D("1"), requests_kcount=D("5")))
    assert _import_one(info) is None


def test_add_on_prices_are_ignored_and_cache_writes_kept() -> None:
    info = _info(
        "m",
        gp.ModelPrice(
            input_mtok=D("3"),
            output_mtok=D("15"),
            cache_write_mtok=D("3.75"),
            web_searches_kcount=D("10"),
        ),
    )
    price = _import_one(info)
    assert price is not None
    assert price.per_use == PerUsePrice(
        3_000_000_000, 15_000_000_000, cache_write_mtok=3_750_000_000
    )


def test_token_classes_map_to_per_use_fields() -> None:
    info = _info(
        "m",
        gp.ModelPrice(
            input_mtok=D("5"),
            cache_read_mtok=D("1.25"),
            output_mtok=D("10"),
            input_image_mtok=D("8"),
            output_image_mtok=D("32"),
            input_audio_mtok=D("32"),
            output_audio_mtok=D("64"),
        ),
    )
    price = _import_one(info)
    assert price is not None
    assert price.per_use == PerUsePrice(
        input_mtok=5_000_000_000,
        output_mtok=10_000_000_000,
        cached_input_mtok=1_250_000_000,
        image_input_mtok=8_000_000_000,
        image_output_mtok=32_000_000_000,
        audio_input_mtok=32_000_000_000,
        audio_output_mtok=64_000_000_000,
    )
    assert price.kind == ModelKind.IMAGE


@pytest.mark.parametrize(
    "info",
    [
        _info("deprecated", gp.ModelPrice(input_mtok=D("1"), output_mtok=D("1")), deprecated=True),
        _info("free", gp.ModelPrice()),
        _info("no-output", gp.ModelPrice(input_mtok=D("1"))),
        _info("variant:extended", gp.ModelPrice(input_mtok=D("1"), output_mtok=D("1"))),
    ],
    ids=lambda info: info.id,
)
def test_models_that_cannot_be_sold_are_skipped(info: gp.ModelInfo) -> None:
    assert _import_one(info) is None


def test_an_embedding_has_a_zero_output_price() -> None:
    price = _import_one(_info("text-embedding-9", gp.ModelPrice(input_mtok=D("0.02"))))
    assert price is not None
    assert price.kind == ModelKind.EMBEDDING
    assert price.per_use == PerUsePrice(20_000_000, 0)


def test_aliases_come_from_exact_match_clauses() -> None:
    info = gp.ModelInfo(
        id="m",
        match=gp.ClauseOr(
            or_=[
                gp.ClauseEquals(equals="m"),
                gp.ClauseEquals(equals="m-2025-01-01"),
                gp.ClauseStartsWith(starts_with="m-"),
            ]
        ),
        prices=gp.ModelPrice(input_mtok=D("1"), output_mtok=D("1")),
    )
    price = _import_one(info)
    assert price is not None and price.aliases == ("m-2025-01-01",)


def test_the_first_source_wins_a_shared_id() -> None:
    first = _provider(_info("shared", gp.ModelPrice(input_mtok=D("1"), output_mtok=D("1"))))
    second = _provider(
        _info("shared", gp.ModelPrice(input_mtok=D("9"), output_mtok=D("9"))), provider_id="groq"
    )
    [price] = import_per_use_prices(as_of=DAY, providers=first + second)
    assert price.genai_provider == "openai" and price.per_use.input_mtok == 1_000_000_000


# --- the real bundled data ----------------------------------------------------


def test_bundled_data_imports_offline() -> None:
    prices = {p.model_id: p for p in import_per_use_prices(as_of=DAY)}
    assert len(prices) >= 200
    assert prices["gpt-4.1"].per_use.input_mtok == 2_000_000_000
    assert all(
        p.source.startswith(f"genai-prices {genai_prices_version()} (") for p in prices.values()
    )
    # The package prices gpt-4o below its hand-set entry in data/guide.yaml ($5/M input):
    # that entry must win.
    assert prices["gpt-4o"].per_use.input_mtok != 5_000_000_000


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _shipped_as_of() -> tuple[str, datetime.date]:
    for path in default_catalog_paths():
        if path.name.startswith("genai_"):
            generated = read_catalog_file(path).generated
            assert generated is not None
            return generated.genai_prices, generated.as_of
    raise AssertionError("no generated data file is shipped")


def test_shipped_snapshot_matches_the_installed_package(catalog: Catalog) -> None:
    version, as_of = _shipped_as_of()
    if version != genai_prices_version():
        pytest.skip(
            f"data generated from genai-prices {version}, {genai_prices_version()} installed"
        )
    assert plan_price_refresh(catalog, as_of=as_of) == []


def test_gen_catalog_check_reports_the_files_current() -> None:
    version, _as_of = _shipped_as_of()
    if version != genai_prices_version():
        pytest.skip("data generated from another genai-prices version")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_catalog.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- plan_price_refresh -------------------------------------------------------


def test_refresh_with_markup_reprices_only_genai_entries(catalog: Catalog) -> None:
    _version, as_of = _shipped_as_of()
    changes = plan_price_refresh(catalog, D(10), as_of=as_of)
    changed = {c.model_id: c for c in changes}
    assert len(changed) >= 200
    for model_id in ["gpt-4o", "claude-3-5-sonnet-20241022", "gpt-image-1", "deepseek-chat"]:
        assert model_id not in changed
    assert all(is_genai_sourced(catalog.resolve(model_id)) for model_id in changed)
    gpt41 = changed["gpt-4.1"]
    assert gpt41.old == PerUsePrice(2_000_000_000, 8_000_000_000, cached_input_mtok=500_000_000)
    assert gpt41.new == PerUsePrice(2_200_000_000, 8_800_000_000, cached_input_mtok=550_000_000)
    assert gpt41.model.per_use == gpt41.new
    assert gpt41.model.source.endswith("+10% markup") and is_genai_sourced(gpt41.model)
    refreshed = catalog.with_overrides(c.model for c in changes)
    assert refreshed.resolve("gpt-4.1").per_use == gpt41.new
    assert refreshed.resolve("gpt-4o") == catalog.resolve("gpt-4o")


def test_refresh_leaves_guide_and_curated_entries_alone() -> None:
    def model(model_id: str, source: str) -> Model:
        return Model(
            id=model_id,
            kind=ModelKind.TEXT,
            provider="openai",
            per_use=PerUsePrice(1, 1),
            source=source,
        )

    providers = _provider(
        _info("guide-model", gp.ModelPrice(input_mtok=D("2"), output_mtok=D("2"))),
        _info("curated-model", gp.ModelPrice(input_mtok=D("2"), output_mtok=D("2"))),
        _info("package-model", gp.ModelPrice(input_mtok=D("2"), output_mtok=D("2"))),
    )
    catalog = Catalog(
        [
            model("guide-model", "billing-modes-guide"),
            model("curated-model", "curated: reseller price"),
            model("package-model", "genai-prices 0.2.3 (openai)"),
        ]
    )
    changes = plan_price_refresh(catalog, as_of=DAY, providers=providers)
    assert [c.model_id for c in changes] == ["package-model"]
    assert changes[0].new == PerUsePrice(2_000_000_000, 2_000_000_000)
