"""`vidpipe models`' records and table, on the shipped catalogue and on made-up records."""

from __future__ import annotations

import pytest

from pipeline import catalogue
from pipeline.models import MODELS
from pipeline.write.models_table import _seconds as seconds
from pipeline.write.models_table import heading, matching, no_match, record, table_lines

RECORDS = [record(catalogue.load_catalogue()["models"][i], MODELS) for i in catalogue.model_ids()]
BY_ID = {item["id"]: item for item in RECORDS}
FILTERS = [[], ["veo"], ["kling"], ["kling", "v3"], ["runway"], ["wan"], ["luma"], ["gen"], ["sora"], ["a"]]


def row_of(lines: list[str], model_id: str) -> list[str]:
    """The cells of a model's row, without the mark."""
    (line,) = [line for line in lines[1:] if line[2:].split(" ", 1)[0] == model_id]
    return line[2:].split()


@pytest.mark.parametrize(
    ("durations", "shown"),
    [
        ([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], "3-15"),
        ([4, 6, 8], "4,6,8"),
        ([5, 6, 7, 8, 10], "5-8,10"),
        ([10, 5], "5,10"),
        ([5, 6], "5,6"),
        ([7], "7"),
        (None, "-"),
    ],
)
def test_seconds_are_runs_of_three_or_more_or_single_values(durations, shown):
    assert seconds(durations) == shown


def test_records_carry_the_catalogue_facts_and_which_take_the_legacy_path():
    assert [item["id"] for item in RECORDS if item["legacy_path"]] == ["gen3a_turbo", "runway/gen4_turbo"]
    veo = BY_ID["google/veo-3.1-t2v"]
    assert (veo["durations"], veo["seed"], veo["path"]) == ([4, 6, 8], True, "/v2/video/generations")
    assert BY_ID["minimax/h3"]["durations"] == list(range(4, 16))  # published as minimum/maximum
    assert BY_ID["minimax/hailuo-02"]["resolutions"] == ["768P", "1080P"]
    assert BY_ID["minimax/hailuo-02"]["last_frame"] and not BY_ID["minimax/hailuo-02"]["seed"]
    assert BY_ID["runway-gen3/turbo/image-to-video"]["durations"] is None  # a string with no values


def test_every_word_narrows_case_insensitively_and_aliases_count():
    veo = matching(RECORDS, ["VEO"])
    assert veo and all("veo" in item["id"].casefold() or item["aliases"] for item in veo)
    assert {item["id"] for item in matching(RECORDS, ["veo", "3.1", "fast"])} == {
        "google/veo-3.1-first-last-image-to-video-fast",
        "google/veo-3.1-i2v-fast",
        "google/veo-3.1-t2v-fast",
    }
    assert [item["id"] for item in matching(RECORDS, ["kling-video/v3/turbo/pro/image"])] == [
        "klingai/video-v3-turbo-pro-image-to-video"
    ]
    assert matching(RECORDS, ["veo", "kling"]) == []


@pytest.mark.parametrize("words", FILTERS)
def test_every_line_fits_80_columns_and_every_id_is_whole(words):
    shown = matching(RECORDS, words)
    lines = table_lines(shown)
    assert max(len(line) for line in lines) <= 80
    for item in shown:
        assert row_of(lines, item["id"])[0] == item["id"]


@pytest.mark.parametrize("words", FILTERS)
def test_a_cut_cell_counts_what_it_left_out(words):
    lines = table_lines(matching(RECORDS, words))
    columns = lines[0].split()
    for item in matching(RECORDS, words):
        row = row_of(lines, item["id"])
        for key in ("ratios", "resolutions"):
            if key not in columns:
                continue
            cell = row[columns.index(key)]
            values = item[key] or []
            if cell == "-":
                assert values == []
                continue
            text, _, left_out = cell.partition("+")
            kept = text.split(",") if text else []
            assert kept == [str(v) for v in values][: len(kept)]
            assert len(kept) + int(left_out or 0) == len(values)


def test_short_ids_leave_room_for_every_value_and_the_path():
    made_up = {
        "id": "v/a",
        "aliases": [],
        "path": "/v2/video/generations",
        "durations": [5, 10],
        "ratios": ["16:9", "9:16"],
        "resolutions": ["720p"],
        "seed": True,
        "last_frame": False,
        "legacy_path": False,
    }
    lines = table_lines([made_up, {**made_up, "id": "v/b", "path": "/v2/other", "legacy_path": True}])
    assert lines[0].split() == ["model", "seconds", "seed", "last", "ratios", "resolutions", "path"]
    assert row_of(lines, "v/a") == ["v/a", "5,10", "yes", "no", "16:9,9:16", "720p", "/v2/video/generations"]
    assert lines[2].startswith("* v/b ")
    assert lines[3:] == ["* legacy Runway path, its rules shown (run.endpoint: universal: its schema)."]


def test_the_runway_models_show_what_their_default_legacy_path_takes():
    by_id = {item["id"]: item for item in RECORDS}
    gen4, gen3 = by_id["runway/gen4_turbo"], by_id["gen3a_turbo"]
    assert gen4["legacy_path"] and not gen4["last_frame"]  # validate refuses it a last frame
    assert gen3["legacy_path"] and gen3["last_frame"]
    assert gen4["ratios"] == list(MODELS["runway/gen4_turbo"].ratios) and gen4["durations"] == [5, 10]
    assert gen4["resolutions"] is None


def test_the_full_list_says_what_it_cut_and_where_models_are_served():
    lines = table_lines(RECORDS)
    assert len(lines) > len(RECORDS)
    assert "+N: N more values; no room for resolutions. A filter shows more, --json all." in lines
    assert "Served on /v2/video/generations, except:" in lines
    assert "  runway-gen3/turbo/image-to-video: /v2/generate/video/kling/generation" in lines


def test_a_column_no_model_fills_is_a_note_not_dashes():
    lines = table_lines(matching(RECORDS, ["gen4"]))
    assert "resolutions" not in lines[0]
    assert "None of these lists resolutions." in lines


def test_the_heading_names_the_docs_commit():
    source = catalogue.load_catalogue()["source"]
    assert (
        heading(3, 143, source)
        == f"3 of 143 video models (catalogue of aimlapi/api-docs at {source['commit'][:12]})"
    )
    assert heading(143, 143, source).startswith("143 video models (")


def test_no_match_names_what_is_closest_to_the_filter_or_else_to_one_of_its_words():
    near = {"veo kling": [], "veo": ["google/veo3"], "kling": ["klingai/avatar-pro"]}
    assert no_match(["veo", "kling"], 143, lambda word: near.get(word, [])) == (
        "no video model matches 'veo kling'; closest: google/veo3"
    )
    assert (
        no_match(["zzz"], 143, lambda word: [])
        == "no video model matches 'zzz'; `vidpipe models` lists all 143"
    )
