"""The deprecation feed: ids and aliases matched together, what each status means for a run."""

from __future__ import annotations

import pytest

from pipeline.catalogue.deprecations import deprecations, findings, resolve

FEED = {
    "object": "list",
    "data": [
        {
            "id": "vendor/old",
            "aliases": ["old"],
            "status": "deprecated",
            "deprecated_at": "2026-01-15",
            "shutdown_at": "2027-03-31",
            "replaced_by": "vendor/new",
            "reason": "retired",
        },
        {"id": "vendor/renamed", "aliases": [], "status": "superseded", "replaced_by": "vendor/canonical"},
        {"id": "vendor/gone", "aliases": ["gone-alias"], "status": "withdrawn", "replaced_by": "vendor/new"},
    ],
}


def test_an_alias_matches_as_its_id_does():
    feed = deprecations(FEED)
    assert resolve("OLD", feed).status == resolve("vendor/old", feed).status == "deprecated"
    assert resolve("gone-alias", feed).stops


def test_each_status_says_what_happens():
    feed = deprecations(FEED)
    assert resolve("vendor/old", feed).message == (
        "model vendor/old is deprecated and shuts down on 2027-03-31; use vendor/new (retired)"
    )
    superseded = resolve("vendor/renamed", feed)
    assert (superseded.model_id, superseded.stops) == ("vendor/canonical", False)
    gone = resolve("vendor/gone", feed)
    assert (
        gone.stops
        and gone.message == "model vendor/gone is withdrawn: the service answers 404; use vendor/new"
    )
    assert resolve("vendor/fine", feed).status is None


def test_findings_name_each_model_once_and_skip_silent_ones():
    found = findings(["vendor/fine", "vendor/old", "vendor/old", "gone-alias"], deprecations(FEED))
    assert [(f.asked, f.status) for f in found] == [("vendor/old", "deprecated"), ("gone-alias", "withdrawn")]


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "x",
        {"data": None},
        [1, None, {"id": "m"}, {"id": "m", "status": "sunset"}, {"id": ["m"], "status": "withdrawn"}],
    ],
)
def test_odd_feeds_say_nothing(answer):
    assert findings(["m"], deprecations(answer)) == []


def test_a_bare_list_is_read_too_and_text_is_cut_short():
    feed = deprecations([{"id": "m", "status": "deprecated", "reason": "x\x1b[2J" + "y" * 500}])
    message = resolve("m", feed).message
    assert "\x1b" not in message and len(message) < 300
