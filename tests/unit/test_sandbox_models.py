"""The sandbox's /v1/models answer: the docs' filters and sections, deterministic prices."""

from __future__ import annotations

from pipeline.catalogue import model_ids
from pipeline.catalogue.pricing import price_book
from pipeline.sandbox.models_api import ModelsConfig, deprecations_answer, models_answer

CONFIG = ModelsConfig()


def ids(**query):
    return [m["id"] for m in models_answer(CONFIG, 105_000, {k: [v] for k, v in query.items()})["data"]]


def test_every_catalogued_model_but_the_gone_ones_is_listed():
    gone = {*CONFIG.deprecated, *CONFIG.withdrawn, *CONFIG.superseded}
    assert ids(output_modalities="video") == [m for m in model_ids() if m not in gone]
    assert ids(output_modalities="text") == []


def test_id_matches_ids_and_aliases_in_any_case_or_together():
    assert ids(id="GEN3A_TURBO") == ["gen3a_turbo"]
    assert ids(id="alibaba/wan2.1-t2v-turbo") == ["alibaba/wan-2-6-t2v"]  # superseded: now an alias
    assert ids(id="gen3a_turbo,runway/gen4_turbo") == ["gen3a_turbo", "runway/gen4_turbo"]


def test_capabilities_filter_and_sections_only_when_included():
    image = ids(capabilities="image_to_video")
    assert "gen3a_turbo" in image and "google/veo-3.1-t2v" not in image
    plain = models_answer(CONFIG, 105_000, {"id": ["gen3a_turbo"]})["data"][0]
    assert "pricing" not in plain and "capabilities" not in plain
    full = models_answer(CONFIG, 105_000, {"id": ["gen3a_turbo"], "details": ["true"]})["data"][0]
    assert {"pricing", "capabilities", "modalities"} <= set(full)


def test_prices_are_deterministic_mixed_and_readable_by_the_client():
    first = models_answer(CONFIG, 105_000, {"include": ["pricing"]})
    assert first == models_answer(CONFIG, 105_000, {"include": ["pricing"]})
    kinds = {m["pricing"]["kind"] for m in first["data"]}
    assert kinds == {"fixed", "variants", "variable"}
    dimensions = {
        tuple(m["pricing"]["dimensions"]) for m in first["data"] if m["pricing"]["kind"] == "variants"
    }
    assert dimensions == {("duration",), ("resolution",)}
    assert price_book(first, "sandbox").credits_for("gen3a_turbo", 5) == 525_000


def test_the_feed_lists_one_of_each_status():
    assert sorted(e["status"] for e in deprecations_answer(CONFIG)["data"]) == [
        "deprecated",
        "superseded",
        "withdrawn",
    ]
