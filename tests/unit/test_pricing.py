"""Prices read from a /v1/models answer: the docs' examples, `per` read with `price`, and odd
shapes that must give "unknown", never a crash."""

from __future__ import annotations

import pytest

from pipeline.catalogue import pricing
from pipeline.catalogue.pricing import Prices, describe_pricing, price_book

# The docs' example (complete-model-list.md, "Reading prices"): a 5 s 1080p clip costs $3.25.
DOCS_VARIANTS = {
    "kind": "variants",
    "dimensions": ["resolution"],
    "variants": [
        {"when": {"resolution": "720p"}, "price": 0.39, "unit": "second", "per": 1},
        {"when": {"resolution": "1080p"}, "price": 0.65, "unit": "second", "per": 1},
    ],
}


def book(pricing_block, model="v/m", aliases=()):
    return price_book({"data": [{"id": model, "aliases": list(aliases), "pricing": pricing_block}]}, "live")


def test_the_docs_example_costs_what_the_docs_say():
    quote = book(DOCS_VARIANTS).quote("v/m", 5, "1080p")
    assert quote.credits == round(3.25 * pricing.CREDITS_PER_USD)
    assert quote.source == "live"
    assert book(DOCS_VARIANTS).quote("v/m", 5, "720P").credits == round(0.39 * 5 * pricing.CREDITS_PER_USD)


def test_per_is_read_with_price():
    """$390 per 1000 seconds is the same rate as $0.39 per second."""
    per_thousand = {"kind": "fixed", "units": [{"name": "second", "price": 390, "per": 1000}]}
    per_one = {"kind": "fixed", "units": [{"name": "second", "price": 0.39, "per": 1}]}
    assert book(per_thousand).credits_for("v/m", 10) == book(per_one).credits_for("v/m", 10) == 7_800_000


def test_a_variant_by_duration_priced_per_generation():
    block = {
        "kind": "variants",
        "dimensions": ["duration"],
        "variants": [
            {"when": {"duration": 5}, "price": 0.5, "unit": "generation", "per": 1},
            {"when": {"duration": "10"}, "price": 0.9, "unit": "generation", "per": 1},
        ],
    }
    assert book(block).credits_for("v/m", 5) == 1_000_000
    assert book(block).credits_for("v/m", 10) == 1_800_000
    assert book(block).quote("v/m", 8).reason == "no price for duration 8"


def test_unknown_prices_say_why():
    assert book({"kind": "variable"}).quote("v/m", 5).reason.startswith("variable pricing")
    assert (
        book(DOCS_VARIANTS).quote("v/m", 5).reason
        == "its price depends on resolution, and the job names none"
    )
    assert book(DOCS_VARIANTS).quote("v/m", 5, "4k").reason == "no price for resolution 4k"
    assert book(DOCS_VARIANTS).quote("other", 5).reason == "other is not in the price list"
    assert book(None).quote("v/m", 5).reason == "no pricing published"
    tokens = {"kind": "fixed", "units": [{"name": "token", "price": 3.25, "per": 1_000_000}]}
    assert not book(tokens).quote("v/m", 5).known


def test_ids_and_aliases_match_case_insensitively():
    prices = book(DOCS_VARIANTS, "Vendor/Model", aliases=["old-name"])
    assert (
        prices.credits_for("vendor/model", 1, "720p") == prices.credits_for("OLD-NAME", 1, "720p") == 780_000
    )


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        "text",
        {"data": "x"},
        {"data": [None, 1, "x", {"id": 5}, {"id": ""}, {"id": "x" * 500}]},
        {"data": [{"id": "v/m", "aliases": "nope", "pricing": {"kind": "fixed", "units": "x"}}]},
        {
            "data": [
                {"id": "v/m", "pricing": {"kind": "fixed", "units": [{"name": "second", "price": "1e400"}]}}
            ]
        },
        {"data": [{"id": "v/m", "pricing": {"kind": "fixed", "units": [{"name": "second", "price": -1}]}}]},
        {
            "data": [
                {
                    "id": "v/m",
                    "pricing": {"kind": "fixed", "units": [{"name": "second", "price": 1, "per": 0}]},
                }
            ]
        },
        {"data": [{"id": "v/m", "pricing": {"kind": "variants", "dimensions": "duration", "variants": []}}]},
        {"data": [{"id": "v/m", "pricing": {"kind": "variants", "dimensions": [["x"]], "variants": [1]}}]},
        {"data": [{"id": "v/m", "pricing": {"kind": "variants", "dimensions": ["fps"], "variants": []}}]},
        {"data": [{"id": "v/m", "pricing": {"kind": "fixed", "units": [{"name": "second", "price": True}]}}]},
        {
            "data": [
                {"id": "v/m", "pricing": {"kind": "fixed", "units": [{"name": "second", "price": 1e300}]}}
            ]
        },
        {"data": [{"id": "v/m", "pricing": {"kind": ["fixed"]}}]},
    ],
)
def test_odd_answers_give_unknown_not_a_crash(answer):
    quote = price_book(answer, "live").quote("v/m", 5, "720p")
    assert quote.credits is None and quote.reason


def test_the_snapshot_backs_a_book_that_cannot_price_a_model():
    live = book({"kind": "variable"}, "gen3a_turbo")
    prices = Prices(live, pricing.snapshot_book())
    quote = prices.quote("gen3a_turbo", 5)
    assert quote.credits == 525_000
    assert quote.source == "shipped snapshot of 2026-08-21"
    assert "variable pricing" in quote.reason
    assert Prices(live, pricing.snapshot_book()).quote("v/x", 5).reason == "v/x is not in the price list"


def test_the_snapshot_holds_the_contract_figure_per_second():
    snapshot = pricing.snapshot_book()
    assert snapshot.credits_for("gen3a_turbo", 5) == 525_000
    assert snapshot.credits_for("gen3a_turbo", 10) == 1_050_000
    assert snapshot.credits_for("runway/gen4_turbo", 10) == 1_050_000


def test_a_short_text_for_the_models_table():
    assert describe_pricing(DOCS_VARIANTS) == "$0.39-0.65/s"
    assert (
        describe_pricing({"kind": "fixed", "units": [{"name": "second", "price": 50, "per": 1000}]})
        == "$0.05/s"
    )
    assert describe_pricing({"kind": "variable"}) == "variable"
    assert describe_pricing(None) == describe_pricing({"kind": "odd"}) == "-"
