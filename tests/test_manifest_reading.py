"""Reading YAML and CSV manifests: positions, YAML 1.2 scalars, and malformed files."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import pytest

from pipeline.errors import InputError, ManifestError
from pipeline.read import manifest
from pipeline.read.manifest import parse_csv, parse_yaml, read_manifest


def alias_bomb(levels: int = 9, fanout: int = 9) -> str:
    """`levels` levels of `fanout` aliases of the level below: fanout ** (levels + 1) values."""
    lines = ["version: 1", "a: &a [" + ", ".join(['"lol"'] * fanout) + "]"]
    names = "abcdefghijklmnop"[: levels + 1]
    for below, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{below}"] * fanout) + "]")
    lines.append(f"jobs: *{names[levels]}")
    return "\n".join(lines) + "\n"


def test_yaml_keeps_ratios_as_text_and_words_as_words():
    """`ratio: 16:9` unquoted must not become YAML 1.1's base-60 number 969, nor `no` false,
    nor a date a datetime (YAML 1.2 has no timestamps)."""
    doc = parse_yaml("ratio: 16:9\nprompt: no\nseed: 010\nw: true\nd: 5\nt: 2024-05-01\n", Path("m.yaml"))
    assert doc.data == {"ratio": "16:9", "prompt": "no", "seed": 10, "w": True, "d": 5, "t": "2024-05-01"}


def test_yaml_records_the_line_of_every_key_and_item():
    doc = parse_yaml("version: 1\njobs:\n  - prompt: a\n    seed: [1,\n      2]\n", Path("m.yaml"))
    assert doc.where(("jobs", 0, "seed", 1)) == "m.yaml:5"
    assert doc.where(("jobs", 0, "prompt")) == "m.yaml:3"
    assert doc.where(("jobs", 0, "nothing", "here")) == "m.yaml:3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "m.yaml: the manifest is empty; expected a mapping with 'jobs'"),
        ("# only a comment\n", "m.yaml: the manifest is empty; expected a mapping with 'jobs'"),
        ("- a\n- b\n", "m.yaml:1: the manifest is a list; expected a mapping with 'jobs'"),
        ("just text\n", "m.yaml:1: the manifest is a str; expected a mapping with 'jobs'"),
        ("jobs: [\n  - a\n", "m.yaml:2: YAML syntax error: expected the node content, but found '-'"),
        ("a: b: c\n", "m.yaml:1: YAML syntax error: mapping values are not allowed here"),
        (
            "a: !!python/object:os.system x\n",
            "m.yaml:1: a: YAML tag !!python/object:os.system is not allowed; expected plain text, numbers, true/false, lists and mappings",
        ),
        ("a: *missing\n", "m.yaml:1: YAML syntax error: found undefined alias 'missing'"),
    ],
)
def test_malformed_yaml_is_one_clear_line(text, message):
    with pytest.raises(InputError) as caught:
        parse_yaml(text, Path("m.yaml"))
    assert str(caught.value) == message


def test_duplicate_yaml_keys_are_reported_not_silently_overwritten():
    with pytest.raises(ManifestError) as caught:
        parse_yaml("version: 1\njobs:\n  - prompt: a\n    prompt: b\n", Path("m.yaml"))
    assert [str(p) for p in caught.value.problems] == ["m.yaml:4: jobs[0].prompt: duplicate key"]


def test_csv_rows_know_their_line_even_after_multiline_cells():
    table, problems = parse_csv('prompt,seed\n"two\nlines",1|2\n\n  ,\nc,3\n', Path("p.csv"))
    assert problems == []
    assert table.columns == ["prompt", "seed"]
    assert table.rows == [("two\nlines", "1|2"), ("c", "3")]
    assert table.lines == [2, 6]


def test_csv_ragged_rows_and_bad_headers_are_all_reported_and_the_other_rows_kept():
    table, problems = parse_csv("prompt,,prompt\na,b,c,d\nc,d,e\nf,g,h,i,j\n", Path("p.csv"))
    assert (table.columns, table.rows, table.lines) == (["prompt"], [("c",)], [3])
    assert [str(p) for p in problems] == [
        "p.csv:1: column 2 has no name in the header",
        "p.csv:1: prompt: column appears twice in the header",
        "p.csv:2: row has 4 cells but the header names 3; quote a cell that contains a comma",
        "p.csv:4: row has 5 cells but the header names 3; quote a cell that contains a comma",
    ]


def test_csv_short_rows_leave_their_last_cells_empty():
    table, _ = parse_csv("prompt,seed,ratio\na\nb,2\n", Path("p.csv"))
    assert table.rows == [("a", None, None), ("b", "2", None)]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.txt", "version: 1", "m.txt: not a manifest; expected a .yaml, .yml or .csv file"),
        ("m.yaml", b"\x00\x01binary", "m.yaml: is a binary file; expected YAML or CSV text"),
        ("m.yaml", b"prompt: caf\xe9\n", "m.yaml: not UTF-8 text (byte 11)"),
        ("p.csv", "", "p.csv:1: the CSV has no header row; expected field names"),
        ("p.csv", 'prompt\na\n"open quote\nb\nc\n', "p.csv:3: CSV syntax error: unexpected end of data"),
        (
            "p.csv",
            "prompt;seed;ratio\na lighthouse, at dusk;5;16:9\n",
            "p.csv:1: the columns are separated by semicolons; expected commas (save the file as comma-separated CSV)",
        ),
        (
            "p.csv",
            "prompt\tseed\na lighthouse\t5\n",
            "p.csv:1: the columns are separated by tabs; expected commas (save the file as comma-separated CSV)",
        ),
    ],
)
def test_unreadable_files_are_one_clear_line(write, name, content, message):
    path = write(name, content)
    with pytest.raises(InputError) as caught:
        read_manifest(path)
    assert str(caught.value) == message


def test_missing_file_and_folder(workdir):
    (workdir / "folder.yaml").mkdir()
    with pytest.raises(InputError, match=r"^nothing\.yaml: no such file$"):
        read_manifest(Path("nothing.yaml"))
    with pytest.raises(InputError, match=r"^folder\.yaml: is a folder; expected a manifest file$"):
        read_manifest(Path("folder.yaml"))


def test_utf8_bom_from_spreadsheets_is_accepted(write):
    path = write("p.csv", "\ufeffprompt,seed\na,1\n".encode())
    assert read_manifest(path).csv_jobs.columns == ["prompt", "seed"]


@pytest.mark.timeout(20)
def test_a_yaml_alias_bomb_is_refused_in_one_line_before_it_is_built(write):
    """Nine levels of nine aliases (477 bytes, 3.5 billion values once expanded) once took
    gigabytes; now the aliases are counted on the composed node graph and the file is refused
    at the level where the expansion passes the limit, in a few megabytes."""
    path = write("bomb.yaml", alias_bomb())
    assert path.stat().st_size < 600
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as caught:
            read_manifest(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "bomb.yaml:7: YAML aliases expand this value past 100,000 values; "
        "expected fewer aliases (write the values out)"
    )
    assert peak < 5_000_000, f"{peak:,} bytes allocated"


def test_the_alias_limit_counts_what_aliases_add_not_the_document_size(monkeypatch):
    """A long list written out is fine; the same number of values made by aliases is not."""
    monkeypatch.setattr(manifest, "MAX_ALIAS_EXPANSION", 50)
    written_out = "version: 1\nseeds: [" + ", ".join(str(n) for n in range(200)) + "]\n"
    assert len(parse_yaml(written_out, Path("m.yaml")).data["seeds"]) == 200

    def jobs(count: int) -> str:
        return "version: 1\nt: &t {prompt: a, ratio: '16:9'}\njobs: [" + ", ".join(["*t"] * count) + "]\n"

    assert len(parse_yaml(jobs(10), Path("m.yaml")).data["jobs"]) == 10  # 40 values added
    with pytest.raises(InputError, match=r"^m\.yaml:3: YAML aliases expand this value past 50 values"):
        parse_yaml(jobs(20), Path("m.yaml"))  # 80 added


def test_a_yaml_alias_inside_its_own_anchor_is_one_line():
    with pytest.raises(InputError) as caught:
        parse_yaml("version: 1\njobs: &j [{prompt: a}, *j]\n", Path("m.yaml"))
    assert str(caught.value) == (
        "m.yaml:2: a YAML alias refers to a value that contains it; expected aliases of values that end before them"
    )
