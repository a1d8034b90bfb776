"""The model catalog: shipped data, load-time validation, and look-ups."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.catalog import (
    Catalog,
    CatalogError,
    UnknownModel,
    load_catalog,
    load_catalog_files,
)
from tollway.types import (
    BillingMethod,
    Model,
    ModelKind,
    PerCallPrice,
    PerCallUnit,
    PerUsePrice,
    usd_to_nano,
)

PER_USE = frozenset({BillingMethod.PER_USE})
PER_CALL = frozenset({BillingMethod.PER_CALL})
BOTH = frozenset({BillingMethod.PER_USE, BillingMethod.PER_CALL})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


# --- the shipped data -------------------------------------------------------


def test_shipped_files_load_with_at_least_200_models() -> None:
    models = load_catalog_files()
    assert len(models) >= 200
    assert len({m.id for m in models}) == len(models)


# id -> (kind, per-use prices in nano-USD per 1M tokens, per-call nano-USD, default method)
GUIDE_PRICES: dict[str, tuple[ModelKind, PerUsePrice | None, int | None, BillingMethod | None]] = {
    "gpt-4o": (ModelKind.MULTIMODAL, PerUsePrice(5_000_000_000, 15_000_000_000), None, None),
    "claude-3-5-sonnet-20241022": (
        ModelKind.MULTIMODAL,
        PerUsePrice(3_000_000_000, 15_000_000_000),
        None,
        None,
    ),
    "gpt-image-1": (
        ModelKind.IMAGE,
        PerUsePrice(
            input_mtok=5_000_000_000,
            output_mtok=40_000_000_000,
            cached_input_mtok=1_250_000_000,
            image_input_mtok=10_000_000_000,
            image_output_mtok=40_000_000_000,
        ),
        None,
        None,
    ),
    "gpt-image-1-mini": (
        ModelKind.IMAGE,
        PerUsePrice(
            input_mtok=2_000_000_000,
            output_mtok=8_000_000_000,
            cached_input_mtok=200_000_000,
            image_input_mtok=2_500_000_000,
            image_output_mtok=8_000_000_000,
        ),
        None,
        None,
    ),
    "gemini-3-pro-image-preview": (ModelKind.IMAGE, None, 50_000_000, None),
    "gemini-2.5-flash-image": (
        ModelKind.IMAGE,
        PerUsePrice(
            input_mtok=300_000_000, output_mtok=2_500_000_000, image_output_mtok=30_000_000_000
        ),
        39_000_000,
        BillingMethod.PER_CALL,
    ),
    "sora_video2": (ModelKind.VIDEO, None, 150_000_000, None),
    "flux-1.1-pro": (ModelKind.IMAGE, None, 40_000_000, None),
    "flux-1.1-pro-ultra": (ModelKind.IMAGE, None, 60_000_000, None),
    "flux-pro-1.1-raw": (ModelKind.IMAGE, None, 60_000_000, None),
    "dall-e-3": (ModelKind.IMAGE, None, 40_000_000, None),
    "dall-e-2": (ModelKind.IMAGE, None, 20_000_000, None),
    "deepseek-chat": (
        ModelKind.TEXT,
        PerUsePrice(270_000_000, 1_100_000_000, cached_input_mtok=70_000_000),
        2_000_000,
        BillingMethod.PER_USE,
    ),
}


@pytest.mark.parametrize("model_id", sorted(GUIDE_PRICES))
def test_guide_and_curated_prices(catalog: Catalog, model_id: str) -> None:
    kind, per_use, per_call_nano, default_method = GUIDE_PRICES[model_id]
    model = catalog.resolve(model_id)
    assert model.kind == kind
    assert model.per_use == per_use
    if per_call_nano is None:
        assert model.per_call is None
    else:
        assert model.per_call is not None
        assert model.per_call.price_nano == per_call_nano
        assert model.per_call.unit == UNIT_BY_KIND.get(kind, PerCallUnit.CALL)
    assert model.default_method == default_method
    assert not model.source.startswith("genai-prices")


UNIT_BY_KIND = {ModelKind.IMAGE: PerCallUnit.IMAGE, ModelKind.VIDEO: PerCallUnit.VIDEO}


# OpenAI's published per-image prices, in nano-USD.
SIZE_QUALITY_TABLES = {
    "dall-e-3": {
        "1024x1024/standard": 40_000_000,
        "1792x1024/standard": 80_000_000,
        "1024x1792/standard": 80_000_000,
        "1024x1024/hd": 80_000_000,
        "1792x1024/hd": 120_000_000,
        "1024x1792/hd": 120_000_000,
    },
    "dall-e-2": {
        "256x256/standard": 16_000_000,
        "512x512/standard": 18_000_000,
        "1024x1024/standard": 20_000_000,
    },
}


@pytest.mark.parametrize("model_id", sorted(SIZE_QUALITY_TABLES))
def test_size_quality_tables(catalog: Catalog, model_id: str) -> None:
    price = catalog.resolve(model_id).per_call
    assert price is not None and price.unit is PerCallUnit.IMAGE
    assert dict(price.variants) == SIZE_QUALITY_TABLES[model_id]
    assert price.default_variant == "1024x1024/standard"
    assert dict(price.variants)[price.default_variant] == price.price_nano


def test_every_image_video_and_rerank_price_says_its_unit(catalog: Catalog) -> None:
    units = {
        ModelKind.IMAGE: {PerCallUnit.IMAGE},
        ModelKind.VIDEO: {PerCallUnit.VIDEO, PerCallUnit.SECOND},
        ModelKind.RERANK: {PerCallUnit.SEARCH},
    }
    for model in catalog.models:
        if model.per_call is not None and model.kind in units:
            assert model.per_call.unit in units[model.kind], model.id


def test_guide_aliases(catalog: Catalog) -> None:
    assert catalog.resolve("nano-banana-pro").id == "gemini-3-pro-image-preview"
    assert catalog.resolve("nano-banana").id == "gemini-2.5-flash-image"


@pytest.mark.parametrize(
    ("model_id", "methods"),
    [
        # The guide's own table of which method each example is billed by.
        ("gpt-4o", PER_USE),
        ("gpt-image-1", PER_USE),
        ("gemini-3-pro-image-preview", PER_CALL),
        ("sora_video2", PER_CALL),
    ],
)
def test_guide_table_methods(catalog: Catalog, model_id: str, methods: frozenset) -> None:
    assert catalog.resolve(model_id).methods == methods


def test_every_kind_is_present(catalog: Catalog) -> None:
    assert {m.kind for m in catalog.models} == set(ModelKind)


@pytest.mark.parametrize("methods", [PER_USE, PER_CALL, BOTH], ids=["per_use", "per_call", "both"])
def test_every_decision_table_column_has_models(catalog: Catalog, methods: frozenset) -> None:
    assert any(m.methods == methods for m in catalog.models)


def test_both_methods_covers_text_and_image_models(catalog: Catalog) -> None:
    both = [m for m in catalog.models if m.methods == BOTH]
    assert {m.kind for m in both} >= {ModelKind.TEXT, ModelKind.IMAGE}
    assert all(m.default_method in m.methods for m in both)


@pytest.mark.parametrize(
    "model_id",
    ["sora-2", "sora-2-pro", "veo-3.0-generate-001", "veo-3.1-generate-preview"],
)
def test_video_models_are_sold_per_call(catalog: Catalog, model_id: str) -> None:
    model = catalog.resolve(model_id)
    assert model.kind == ModelKind.VIDEO
    assert model.methods == PER_CALL


@pytest.mark.parametrize(
    "model_id", ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
)
def test_embeddings(catalog: Catalog, model_id: str) -> None:
    model = catalog.resolve(model_id)
    assert model.kind == ModelKind.EMBEDDING
    assert model.per_use is not None and model.per_use.output_mtok == 0


def test_families_are_covered(catalog: Catalog) -> None:
    providers = {m.provider for m in catalog.models}
    assert {"openai", "anthropic", "google", "deepseek", "mistral", "meta", "qwen", "xai"} <= (
        providers
    )
    assert "bfl" in providers


def test_every_model_says_where_its_price_comes_from(catalog: Catalog) -> None:
    assert all(m.source for m in catalog.models)
    genai = [m for m in catalog.models if m.source.startswith("genai-prices")]
    assert len(genai) >= 200
    assert all(m.methods == PER_USE for m in genai)


# --- load-time validation ---------------------------------------------------

GOOD_ENTRY = """\
- id: good-model
  kind: text
  provider: openai
  per_use: {input_mtok: "1", output_mtok: "2"}
  source: test
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write(body: str, name: str = "models.yaml") -> Path:
        path = tmp_path / name
        indented = textwrap.indent(textwrap.dedent(body), "  ")
        path.write_text("models:\n" + indented, encoding="utf-8")
        return path

    return write


def test_a_valid_file_loads(write: Callable[..., Path]) -> None:
    [model] = load_catalog_files([write(GOOD_ENTRY)])
    assert model == Model(
        id="good-model",
        kind=ModelKind.TEXT,
        provider="openai",
        per_use=PerUsePrice(1_000_000_000, 2_000_000_000),
        source="test",
    )


def test_a_per_call_table_and_unit_load(write: Callable[..., Path]) -> None:
    body = """\
    - id: sized
      kind: image
      provider: openai
      per_call:
        price: "0.04"
        default_variant: 1024x1024/standard
        variants: {1024x1024/standard: "0.04", 1792x1024/hd: "0.12"}
      source: test
    - id: clip
      kind: video
      provider: openai
      per_call: {price: "0.1", unit: second}
      source: test
    - id: plain
      kind: text
      provider: openai
      per_call: {price: "0.002"}
      source: test
    """
    sized, clip, plain = load_catalog_files([write(body)])
    assert sized.per_call == PerCallPrice(
        40_000_000,
        PerCallUnit.IMAGE,
        (("1024x1024/standard", 40_000_000), ("1792x1024/hd", 120_000_000)),
        "1024x1024/standard",
    )
    assert clip.per_call == PerCallPrice(100_000_000, PerCallUnit.SECOND)
    assert plain.per_call == PerCallPrice(2_000_000, PerCallUnit.CALL)


def _entry(**fields: str) -> str:
    """A one-model file body; each field's value is given as YAML text."""
    base = {
        "id": "m",
        "kind": "image",
        "provider": "openai",
        "per_call": '{price: "0.04"}',
        "source": "test",
    }
    base.update(fields)
    lines = [f"{key}: {value}" for key, value in base.items() if value != "<drop>"]
    return "- " + "\n  ".join(lines) + "\n"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"per_call": "{price: 0.04}"}, ["per_call.price", "got float 0.04"]),
        ({"per_call": "{price: 1}"}, ["per_call.price", "got int 1"]),
        ({"per_call": '{price: "-0.04"}'}, ["per_call.price", "negative"]),
        ({"per_call": '{price: "0.0000000001"}'}, ["per_call.price", "9 decimal places"]),
        ({"per_call": '{price: "abc"}'}, ["per_call.price", "not a decimal amount"]),
        (
            {"per_use": '{input_mtok: 0.075, output_mtok: "1"}'},
            ["per_use.input_mtok", "got float 0.075"],
        ),
        ({"colour": "red"}, ["colour", "Extra inputs are not permitted"]),
        (
            {"per_use": '{input_mtok: "1", ouput_mtok: "1"}', "per_call": "<drop>"},
            ["per_use.ouput_mtok"],
        ),
        ({"per_call": "<drop>"}, ["no price"]),
        ({"default_method": "per_use"}, ["default_method is per_use", "no per_use price"]),
        (
            {"per_use": '{input_mtok: "1", output_mtok: "1"}'},
            ["both per_use and per_call", "default_method"],
        ),
        ({"kind": "hologram"}, ["kind"]),
        ({"source": "<drop>"}, ["source", "Field required"]),
        ({"aliases": "[m]"}, ["repeats the model's own id"]),
        ({"per_call": '{price: "1", unit: minute}'}, ["per_call.unit"]),
        ({"per_call": '{price: "1", unit: search}'}, ["unit: search", "rerank models only"]),
        (
            {"per_call": '{price: "1", default_variant: 1x1/hd, variants: {1x1/hd: 1}}'},
            ["per_call.variants.1x1/hd", "got int 1"],
        ),
        (
            {"per_call": '{price: "1", default_variant: big/hd, variants: {big/hd: "1"}}'},
            ["per_call.variants.big/hd", "pattern"],
        ),
        ({"per_call": '{price: "1", variants: {1x1/hd: "1"}}'}, ["needs default_variant"]),
        (
            {"per_call": '{price: "1", default_variant: 2x2/hd, variants: {1x1/hd: "1"}}'},
            ["'2x2/hd' is not in variants"],
        ),
        (
            {"per_call": '{price: "2", default_variant: 1x1/hd, variants: {1x1/hd: "1"}}'},
            ["differs from the price of the default variant"],
        ),
        ({"per_call": '{price: "1", default_variant: 1x1/hd}'}, ["no variants table"]),
        ({"per_call": '{price: "1", variants: {}}'}, ["variants is empty"]),
    ],
    ids=[
        "float-price",
        "int-price",
        "negative",
        "sub-nano",
        "not-decimal",
        "float-per-use",
        "unknown-field",
        "unknown-price-field",
        "no-price",
        "default-without-price",
        "both-without-default",
        "unknown-kind",
        "no-source",
        "alias-is-own-id",
        "unknown-unit",
        "search-unit-not-rerank",
        "variant-float-price",
        "variant-bad-key",
        "variants-without-default",
        "default-not-in-variants",
        "default-price-differs",
        "default-without-variants",
        "empty-variants",
    ],
)
def test_rejections_name_file_model_and_field(
    write: Callable[..., Path], fields: dict[str, str], expected: list[str]
) -> None:
    path = write(_entry(**fields), name="bad.yaml")
    with pytest.raises(CatalogError) as caught:
        load_catalog_files([path])
    message = str(caught.value)
    assert message.startswith("bad.yaml: model 'm': ")
    for fragment in expected:
        assert fragment in message


def test_duplicate_id_across_files(write: Callable[..., Path]) -> None:
    first = write(GOOD_ENTRY, name="a.yaml")
    second = write(GOOD_ENTRY, name="b.yaml")
    with pytest.raises(CatalogError, match=r"duplicate model id 'good-model' \(b.yaml\).*a.yaml"):
        load_catalog_files([first, second])


def test_duplicate_id_in_one_file(write: Callable[..., Path]) -> None:
    with pytest.raises(CatalogError, match="duplicate model id 'good-model'"):
        load_catalog_files([write(GOOD_ENTRY + GOOD_ENTRY)])


def test_alias_equal_to_another_models_id(write: Callable[..., Path]) -> None:
    first = write(GOOD_ENTRY, name="a.yaml")
    second = write(_entry(id="other", aliases="[good-model]"), name="b.yaml")
    with pytest.raises(CatalogError, match="alias 'good-model' clashes with the id"):
        load_catalog_files([first, second])


def test_alias_equal_to_another_models_alias(write: Callable[..., Path]) -> None:
    first = write(_entry(id="one", aliases="[shared]"), name="a.yaml")
    second = write(_entry(id="two", aliases="[shared]"), name="b.yaml")
    with pytest.raises(CatalogError, match=r"'two' \(b.yaml\): its alias 'shared'"):
        load_catalog_files([first, second])


def test_names_differing_only_in_case_clash(write: Callable[..., Path]) -> None:
    path = write(_entry(id="Model-X") + _entry(id="model-x"))
    with pytest.raises(CatalogError, match="clashes"):
        load_catalog_files([path])


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(
        "models:\n  - id: m\n    id: n\n    kind: text\n    provider: x\n    source: t\n"
        '    per_use: {input_mtok: "1", output_mtok: "1"}\n',
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match=r"twice.yaml: .*'id' is given twice"):
        load_catalog_files([path])


def test_a_file_without_models_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("modles: []\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"empty.yaml: .*models"):
        load_catalog_files([path])


# --- Catalog ----------------------------------------------------------------


def _model(model_id: str, *aliases: str, input_nano: int = 1) -> Model:
    return Model(
        id=model_id,
        kind=ModelKind.TEXT,
        provider="test",
        per_use=PerUsePrice(input_nano, 1),
        aliases=aliases,
        source="test",
    )


@pytest.fixture
def small() -> Catalog:
    return Catalog([_model("gpt-4o", "gpt-4o-latest"), _model("alpha"), _model("Zeta-Model")])


def test_lookup_by_id_alias_and_case(small: Catalog) -> None:
    assert small.get("gpt-4o") is small.get("gpt-4o-latest") is small.get("GPT-4O-Latest")
    assert small.get("zeta-model") is small.get("Zeta-Model")
    assert small.get("gpt-5") is None
    assert "GPT-4o" in small and "nope" not in small


def test_models_are_ordered_by_id_and_counted(small: Catalog) -> None:
    assert [m.id for m in small.models] == ["Zeta-Model", "alpha", "gpt-4o"]
    assert len(small) == 3
    assert isinstance(small.models, tuple)


def test_unknown_model_suggests_close_names(small: Catalog) -> None:
    with pytest.raises(UnknownModel) as caught:
        small.resolve("gpt4o")
    assert issubclass(UnknownModel, LookupError)
    assert caught.value.name == "gpt4o"
    assert caught.value.suggestions[0] == "gpt-4o"
    assert str(caught.value).startswith("unknown model 'gpt4o'; did you mean 'gpt-4o'")


def test_unknown_model_without_suggestions(small: Catalog) -> None:
    with pytest.raises(UnknownModel, match=r"^unknown model 'qqqqqqqq'$"):
        small.resolve("qqqqqqqq")


def test_with_overrides_replaces_and_adds(small: Catalog) -> None:
    edited = small.with_overrides([_model("alpha", "a", input_nano=7), _model("new-model")])
    assert edited.resolve("a").per_use == PerUsePrice(7, 1)
    assert edited.get("new-model") is not None
    assert len(edited) == 4
    # The original is untouched.
    assert small.get("a") is None and small.resolve("alpha").per_use == PerUsePrice(1, 1)


def test_with_overrides_refuses_a_clashing_alias(small: Catalog) -> None:
    with pytest.raises(CatalogError, match="clashes"):
        small.with_overrides([_model("alpha", "GPT-4o-latest")])


def test_catalog_is_immutable(small: Catalog) -> None:
    with pytest.raises(AttributeError):
        small._models = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        small.models[0].id = "x"


def test_shipped_catalog_resolves_every_name(catalog: Catalog) -> None:
    for model in catalog.models:
        for name in (model.id, *model.aliases):
            assert catalog.get(name) is model
            assert catalog.get(name.upper()) is model


# --- per character and per audio minute prices ------------------------------------------

_PRICE_TEXT = st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,9})?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(price=_PRICE_TEXT, field=st.sampled_from(["input_mchar", "audio_input_minute"]))
def test_character_and_minute_prices_load_exactly(
    tmp_path_factory: pytest.TempPathFactory, price: str, field: str
) -> None:
    path = tmp_path_factory.mktemp("c") / "audio.yaml"
    body = _entry(kind="speech", per_call="<drop>", per_use=f'{{{field}: "{price}"}}')
    path.write_text("models:\n" + body)
    [model] = load_catalog_files([path])
    assert model.per_use is not None
    assert getattr(model.per_use, field) == usd_to_nano(price)
    assert model.per_use.input_mtok is None and model.per_use.output_mtok is None


@pytest.mark.parametrize(
    ("per_use", "expected"),
    [
        ("{}", "per_use needs at least one price"),
        ("{input_mchar: 15}", "got int 15"),
        ('{audio_input_minute: "-0.006"}', "negative"),
        ('{input_mchar: "0.0000000001"}', "9 decimal places"),
    ],
)
def test_bad_character_and_minute_prices_are_refused(
    write: Callable[..., Path], per_use: str, expected: str
) -> None:
    path = write(_entry(kind="speech", per_call="<drop>", per_use=per_use), name="bad.yaml")
    with pytest.raises(CatalogError, match=r"bad\.yaml: model 'm'") as caught:
        load_catalog_files([path])
    assert expected in str(caught.value)


def test_the_shipped_audio_models(catalog: Catalog) -> None:
    expected = {
        "tts-1": (ModelKind.SPEECH, "input_mchar", "15"),
        "tts-1-hd": (ModelKind.SPEECH, "input_mchar", "30"),
        "whisper-1": (ModelKind.TRANSCRIPTION, "audio_input_minute", "0.006"),
        "gpt-4o-mini-tts": (ModelKind.SPEECH, "output_mtok", "12"),
        "gpt-4o-transcribe": (ModelKind.TRANSCRIPTION, "audio_input_mtok", "6"),
        "gpt-4o-mini-transcribe": (ModelKind.TRANSCRIPTION, "audio_input_mtok", "3"),
    }
    for model_id, (kind, field, usd) in expected.items():
        model = catalog.get(model_id)
        assert model is not None and model.per_use is not None, model_id
        assert model.kind is kind
        assert getattr(model.per_use, field) == usd_to_nano(usd)
