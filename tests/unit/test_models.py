"""The model facts (pipeline/models.py) agree with the JSON Schema's per-model rules and with
the catalogue built from the service's docs, so a model's rules cannot drift between them."""

from __future__ import annotations

import pytest

from pipeline import catalogue, models
from pipeline.catalogue import pricing
from pipeline.errors import ManifestError
from pipeline.read.jobs import load_batch
from pipeline.read.schema import (
    definition,
    document_validator,
    manifest_schema,
    model_rules_validator,
    validator_for,
)

LAST = "https://example.com/last.png"
EVERY_RATIO = ["16:9", "9:16", "4:3", "3:4", "1:1", "21:9", "5:4"]


def _manifest_ok(document: dict) -> bool:
    return not any(True for _ in document_validator().iter_errors({"version": 1, **document}))


def _rules_ok(body: dict) -> bool:
    return model_rules_validator().is_valid(body)


def test_the_schema_leaves_models_ratios_and_durations_to_the_catalogue_with_the_runway_defaults():
    """Any catalogued model may be named: the schema says a string (checked against the
    catalogue in Python), and keeps vidpipe's defaults, which are the Runway models'."""
    assert definition("model")["type"] == "string" and "x-expected" in definition("model")
    assert definition("model")["default"] == models.DEFAULT_MODEL
    assert definition("ratio")["default"] == models.DEFAULT_RATIO
    assert definition("duration")["default"] == models.DEFAULT_DURATION
    for model in catalogue.model_ids():
        for ratio in models.facts(model).ratios:
            assert validator_for("#/$defs/ratio").is_valid(ratio), (model, ratio)
        for duration in models.facts(model).durations:
            assert validator_for("#/$defs/duration").is_valid(duration), (model, duration)


def test_the_schema_lists_every_model_specific_field_of_the_catalogue():
    """modelFields names exactly the fields some model declares beyond vidpipe's common ones,
    so an editor accepts them and flags a typo."""
    names = {p for e in catalogue.load_catalogue()["models"].values() for p in e["schema"]["properties"]}
    common = {own for e in catalogue.load_catalogue()["models"].values() for own in e["fields"].values()}
    pattern = next(iter(definition("modelFields")["patternProperties"]))
    assert set(pattern.removeprefix("^(").removesuffix(")$").split("|")) == names - common - {"model"}


def test_the_schema_prompt_and_seed_limits_are_the_facts():
    assert definition("prompt")["maxLength"] == max(m.prompt_limit for m in models.MODELS.values())
    limit = definition("run")["properties"]["prompt_limit"]
    assert (limit["enum"], limit["default"]) == (list(models.PROMPT_LIMITS), models.DEFAULT_PROMPT_LIMIT)
    assert definition("seed")["maximum"] == models.SEED_MAX


@pytest.mark.parametrize("model", list(models.MODELS))
@pytest.mark.parametrize("ratio", EVERY_RATIO)
def test_each_model_takes_exactly_its_ratios_in_every_place_the_schema_checks(model, ratio):
    """modelRules (each expanded job) and the document rules (a job's own ratio, and one it
    inherits from defaults or matrix) accept a ratio exactly when the model's facts list it."""
    takes = ratio in models.facts(model).ratios
    in_enum = ratio in models.all_ratios()
    assert _rules_ok({"model": model, "ratio": ratio}) == takes or not in_enum
    # The document's rules (for editors) hold gen3a_turbo's ratios; contracts.py checks every model.
    if model == "gen3a_turbo":
        assert _manifest_ok({"jobs": [{"model": model, "ratio": ratio, "prompt": "p"}]}) == takes
        assert _manifest_ok({"model": model, "defaults": {"ratio": ratio, "prompt": "p"}}) == takes
        assert (
            _manifest_ok({"matrix": {"model": [model], "ratio": [ratio]}, "defaults": {"prompt": "p"}})
            == takes
        )


@pytest.mark.parametrize("model", list(models.MODELS))
def test_each_model_takes_a_last_frame_exactly_when_its_facts_say_so(model):
    takes = models.facts(model).last_frame
    assert _rules_ok({"model": model, "last_image_url": LAST}) == takes
    assert _manifest_ok({"jobs": [{"model": model, "prompt": "p", "last_image_url": LAST}]}) == takes
    assert _manifest_ok({"defaults": {"model": model, "prompt": "p", "last_image_url": LAST}}) == takes


@pytest.mark.parametrize("model", list(models.MODELS))
@pytest.mark.parametrize("duration", [3, 5, 8, 10])
def test_each_model_takes_exactly_its_durations(tmp_path, model, duration):
    takes = duration in models.facts(model).durations
    path = tmp_path / "m.yaml"
    path.write_text(f"version: 1\njobs:\n  - {{model: {model}, prompt: p, duration: {duration}}}\n")
    try:
        load_batch(path)
    except ManifestError as error:
        assert not takes
        assert [p.message for p in error.problems] == [f"{duration} is not allowed; expected 5 or 10"]
    else:
        assert takes


def test_the_schema_names_no_model_the_facts_do_not_know():
    """A model named anywhere in the schema's rules (a const) is one of the facts' models."""
    named: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("const"), str) and "turbo" in node["const"]:
                named.add(node["const"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(manifest_schema())
    assert named == set(models.MODELS)


@pytest.mark.parametrize("model", list(models.MODELS))
def test_the_facts_agree_with_the_catalogue_of_the_docs(model):
    """Ratios, durations, prompt and seed limits and the universal path's field names are the
    docs' (pipeline/catalogue). The last frame is the one known difference: the docs give
    runway/gen4_turbo a tail_image_url on the universal path, while the legacy path vidpipe
    sends by default takes none (api-contract.md), so vidpipe sends none."""
    facts = models.facts(model)
    entry = catalogue.model(model)
    assert tuple(entry["allowed"]["ratio"]["enum"]) == facts.ratios
    assert tuple(entry["allowed"]["duration"]["enum"]) == facts.durations
    assert entry["allowed"]["prompt"]["maxLength"] == facts.prompt_limit
    assert entry["allowed"]["seed"]["maximum"] == models.SEED_MAX
    for field in ("prompt", "ratio", "duration", "seed", "image_url", "last_image_url"):
        assert entry["fields"][field] == facts.field_name(field, "universal"), field
    assert "last_image_url" in entry["fields"]
    assert facts.last_frame == (model == "gen3a_turbo")


def test_prices_are_the_docs_figure_per_second():
    """525,000 credits for a 5 s gen3a_turbo clip (the docs), per second so 10 s doubles it."""
    assert models.credits_for("gen3a_turbo", 5) == 525_000
    assert models.credits_for("gen3a_turbo", 10) == 1_050_000
    snapshot = pricing.snapshot_book()
    assert not snapshot.estimated("gen3a_turbo")
    assert snapshot.estimated("runway/gen4_turbo")
    assert models.CREDITS_PER_USD == pricing.CREDITS_PER_USD == 2_000_000


def test_field_names_differ_only_on_the_universal_path():
    facts = models.facts("gen3a_turbo")
    assert facts.field_name("ratio", "legacy") == "ratio"
    assert facts.field_name("ratio", "universal") == "aspect_ratio"
    assert facts.field_name("last_image_url", "universal") == "tail_image_url"
    assert facts.field_name("seed", "universal") == "seed"


def test_every_catalogued_model_has_facts_from_its_published_schema():
    veo = models.facts("google/veo-3.1-t2v-fast")
    assert (veo.durations, veo.ratios, veo.seed, veo.last_frame) == ((4, 6, 8), ("16:9", "9:16"), True, False)
    assert veo.path == models.UNIVERSAL_PATH
    kling = models.facts("klingai/v2.1-master-text-to-video")
    assert not kling.seed and kling.typical_seconds == models.TYPICAL_SECONDS["klingai"]
    flux = models.facts("blackforestlabs/flux-3-video-t2v")
    assert flux.durations == () and flux.duration_range == (5, 20)
    assert models.facts("wan/v2.1/1.3b/text-to-video").path == "/v2/generate/video/alibaba/generation"
    alias = "kling-video/v3/turbo/pro/image-to-video"
    assert (
        models.facts(alias).model_id == models.canonical(alias) == "klingai/video-v3-turbo-pro-image-to-video"
    )


def test_only_the_runway_models_have_a_price_and_the_legacy_path():
    assert models.credits_for("google/veo-3.1-t2v-fast", 6) is None
    assert models.credits_for("runway/gen4_turbo", 10, resolution="720p") == 1_050_000
    assert models.submit_path("gen3a_turbo", "legacy") == models.LEGACY_PATH
    assert models.submit_path("gen3a_turbo", "universal") == models.UNIVERSAL_PATH
    assert models.submit_path("google/veo3", "legacy") == models.UNIVERSAL_PATH
