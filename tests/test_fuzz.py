"""Fuzzed manifests: whatever the input, validate/plan accept it or exit 2 with one-line errors.

Valid manifests are generated from the format's own structure, and their expansion must give
exactly the product of their sweeps; broken ones are random YAML/CSV built from near-miss keys
and values of every type.
"""

from __future__ import annotations

import io
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import models
from pipeline.cli import main

RUNS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = [
    "version", "name", "provider", "model", "defaults", "matrix", "jobs", "jobs_csv", "run", "output",
    "sandbox", "prompt", "ratio", "duration", "seed", "watermark", "image_url", "last_image_url", "id",
    "tags", "repeat", "from", "count", "concurrency", "budget", "promt", "", "0", "ratio ", "Seed",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "16:9",
            "9:16",
            "gen3a_turbo",
            "sandbox",
            "https://x.io/a.png",
            "data:image/png;base64,AAAA",
            "../x.png",
            "/etc/passwd",
            "1|2|3",
        ]
    ),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=25,
)


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.err


def assert_clean_exit(code: int, err: str) -> None:
    assert code in (0, 2, 3), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    for line in err.splitlines():
        assert line.startswith(("error: ", "warning: ")), err


@RUNS
@given(document=st.one_of(documents, st.dictionaries(st.sampled_from(KEYS), documents, max_size=6)))
def test_any_yaml_document_is_accepted_or_refused_in_one_line_each(tmp_path, capsys, document):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    for command in ("validate", "plan"):
        assert_clean_exit(*run_cli(capsys, command, str(path)))


@RUNS
@given(text=st.text(max_size=300))
def test_any_text_as_yaml_or_csv_is_accepted_or_refused_in_one_line_each(tmp_path, capsys, text):
    for name in ("m.yaml", "m.csv"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert_clean_exit(*run_cli(capsys, "validate", str(path)))


csv_cells = st.one_of(
    st.just(""),
    st.text(alphabet='abc 019|:-.,"\n', max_size=12),
    st.sampled_from(["16:9", "9:16|16:9", "5", "10", "5|10", "7", "1|2|3", "true", "no", "maybe", "-1"]),
)


@RUNS
@given(
    header=st.lists(
        st.sampled_from(["prompt", "seed", "ratio", "duration", "watermark", "tags", "repeat", "promt"]),
        min_size=1,
        max_size=5,
    ),
    rows=st.lists(st.lists(csv_cells, min_size=0, max_size=6), max_size=6),
)
def test_any_csv_table_is_accepted_or_refused_in_one_line_each(tmp_path, capsys, header, rows):
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / "m.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    assert_clean_exit(*run_cli(capsys, "validate", str(path)))


sweep_values = {
    "ratio": st.lists(st.sampled_from(["16:9", "9:16"]), min_size=1, max_size=2, unique=True),
    "duration": st.lists(st.sampled_from([5, 10]), min_size=1, max_size=2, unique=True),
    "seed": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4, unique=True),
    "watermark": st.lists(st.booleans(), min_size=1, max_size=2, unique=True),
}
jobs = st.lists(
    st.fixed_dictionaries(
        {"prompt": st.text(alphabet="abcdefgh ", min_size=1, max_size=20).filter(str.strip)},
        optional={field: values for field, values in sweep_values.items()} | {"repeat": st.integers(1, 3)},
    ),
    min_size=1,
    max_size=4,
)


@RUNS
@given(
    jobs=jobs,
    matrix=st.fixed_dictionaries({}, optional={"seed": sweep_values["seed"], "ratio": sweep_values["ratio"]}),
)
def test_valid_manifests_expand_to_the_product_of_their_sweeps(tmp_path, capsys, jobs, matrix):
    from pipeline.read.jobs import load_batch

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "matrix": matrix, "jobs": jobs}), encoding="utf-8")
    expected = 0
    for job in jobs:
        sizes = [len(job[f]) if f in job else len(matrix.get(f, [None])) for f in sweep_values]
        expected += math.prod(sizes) * job.get("repeat", 1)
    batch = load_batch(path)
    duplicates = len(batch.notes)
    assert len(batch.table) + duplicates == expected
    assert batch.table["job_id"].is_unique


# --- the schema's row rules and validate agree; every injected problem is found ------------

MODELS = list(models.MODELS)
RATIOS = list(models.all_ratios())
PROMPTS = ["a short prompt", "another prompt", "x" * 600, "y" * 520]
LAST = ["https://x.io/last.png", "https://x.io/end.png"]
FIELD_VALUES = {"model": MODELS, "ratio": RATIOS, "prompt": PROMPTS, "last_image_url": LAST}
ROW_RULES = ("for gen3a_turbo", "no last frame", "characters; expected at most")
AGREE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_or_many(values: list) -> st.SearchStrategy:
    return st.one_of(
        st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)
    )


def sweep(values: list) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


@st.composite
def row_rule_job(draw) -> dict:
    """A job that sets each field itself, in its matrix, or not at all."""
    job: dict = {}
    for field, values in FIELD_VALUES.items():
        where = draw(st.sampled_from(["inherit", "own", "matrix"]))
        if where == "own":
            job[field] = draw(one_or_many(values))
        elif where == "matrix":
            job.setdefault("matrix", {})[field] = draw(sweep(values))
    return job


row_rule_manifests = st.fixed_dictionaries(
    {"version": st.just(1)},
    optional={
        "model": st.sampled_from(MODELS),
        "defaults": st.fixed_dictionaries(
            {}, optional={f: st.sampled_from(v) for f, v in FIELD_VALUES.items()}
        ),
        "matrix": st.fixed_dictionaries({}, optional={f: sweep(v) for f, v in FIELD_VALUES.items()}),
        "jobs": st.lists(row_rule_job(), min_size=1, max_size=3),
        "run": st.fixed_dictionaries({"prompt_limit": st.sampled_from([512, 1000])}),
    },
)


def places(problems) -> set[tuple[str, str]]:
    return {(problem.where, problem.field) for problem in problems}


@AGREE
@given(document=row_rule_manifests)
def test_the_schema_flags_exactly_the_row_rule_problems_validate_reports(tmp_path, monkeypatch, document):
    """Ratio per model, no last frame for runway/gen4_turbo and the 512-character prompt limit
    (raised by run.prompt_limit: 1000), wherever model, ratio, prompt and last frame are set:
    an editor using the schema flags the same fields, at the same lines, as `vidpipe validate`."""
    from pipeline.errors import ManifestError
    from pipeline.read.jobs import load_batch
    from pipeline.read.manifest import parse_yaml
    from pipeline.read.schema import document_validator, field_path, is_conditional, iter_problems

    monkeypatch.chdir(tmp_path)
    text = yaml.safe_dump(document, sort_keys=False)
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    parsed = parse_yaml(text, path)
    flagged = {
        (parsed.where(where), field_path(where))
        for where, error in iter_problems(document_validator(), document)
        if is_conditional(error)
    }
    try:
        load_batch(path)
        reported: set[tuple[str, str]] = set()
    except ManifestError as error:
        assert all(
            p.message.endswith(("or both",)) or any(r in p.message for r in ROW_RULES) for p in error.problems
        )
        reported = places(p for p in error.problems if any(rule in p.message for rule in ROW_RULES))
    assert flagged == reported, text


JOB_FIELDS = {"prompt": '"job {i}"', "ratio": '"16:9"', "seed": "{i}", "duration": "5"}
# field -> (line as written, the field the problem names) for each problem it may be given
INJECTIONS = {
    "prompt": [(f'prompt: "{"p" * 600}"', "prompt"), ('promt: "job {i}"', "promt")],
    "ratio": [('ratio: "4:3"', "ratio"), ('ratoi: "16:9"', "ratoi"), ('ratio: "2:1"', "ratio")],
    "seed": [("seed: -1", "seed"), ("sed: {i}", "sed"), ("seed: [{i}, x]", "seed[1]")],
    "duration": [("duration: 7", "duration"), ("duration: five", "duration")],
}


@st.composite
def manifests_with_problems(draw) -> tuple[str, set[tuple[str, str]]]:
    """A YAML manifest (block style, one field a line) and the places of the problems put in."""
    lines = ["version: 1", "model: gen3a_turbo"]
    expected: set[tuple[str, str]] = set()
    if draw(st.booleans()):
        lines += ["run:", "  concurency: 2"]
        expected.add(("m.yaml:4", "run.concurency"))
    lines.append("jobs:")
    for i in range(draw(st.integers(1, 4))):
        for n, (field, value) in enumerate(JOB_FIELDS.items()):
            text = f"{field}: {value}"
            choice = draw(st.one_of(st.none(), st.sampled_from(INJECTIONS[field])))
            if choice is not None:
                text, named = choice
                expected.add((f"m.yaml:{len(lines) + 1}", f"jobs[{i}].{named}"))
            lines.append(("  - " if n == 0 else "    ") + text.format(i=i))
    return "\n".join(lines) + "\n", expected


@AGREE
@given(case=manifests_with_problems())
def test_validate_reports_every_injected_problem_at_its_line(tmp_path, monkeypatch, case):
    """Schema problems (a bad seed, a typo, a bad duration) never hide the row rules (a ratio
    gen3a_turbo does not take, a 600-character prompt), nor the other way round: k independent
    problems put in at known lines come out as exactly k lines, each at its field's line."""
    from pipeline.errors import ManifestError
    from pipeline.read.jobs import load_batch

    text, expected = case
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    if not expected:
        load_batch(tmp_path / "m.yaml")
        return
    try:
        load_batch(tmp_path / "m.yaml")
    except ManifestError as error:
        assert places(error.problems) == expected, text
        assert len(error.problems) == len(expected), [str(p) for p in error.problems]
    else:
        raise AssertionError(f"no problem found in\n{text}")


CSV_ROW = ["prompt {i}", "16:9", "{i}", "5"]
CSV_INJECTIONS = [
    (0, "", ""),  # empty prompt: the row has no prompt (a whole-row problem)
    (1, "4:3", "ratio"),
    (2, "-1", "seed"),
    (2, "1|x", "seed"),
    (3, "7", "duration"),
]


@st.composite
def csv_with_problems(draw) -> tuple[str, set[tuple[str, str]]]:
    lines = ["prompt,ratio,seed,duration"]
    expected: set[tuple[str, str]] = set()
    for i in range(draw(st.integers(1, 6))):
        where = f"m.csv:{len(lines) + 1}"
        cells = [cell.format(i=i) for cell in CSV_ROW]
        if draw(st.integers(0, 4)) == 0:  # a row with too many cells hides only itself
            expected.add((where, ""))
            lines.append(",".join([*cells, "extra"]))
            continue
        for column, value, field in draw(
            st.lists(st.sampled_from(CSV_INJECTIONS), max_size=3, unique_by=lambda x: x[0])
        ):
            cells[column] = value
            expected.add((where, field))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n", expected


@AGREE
@given(case=csv_with_problems())
def test_validate_reports_every_injected_csv_problem_at_its_row(tmp_path, monkeypatch, case):
    """In a CSV, a row with too many cells, a bad ratio, seed or duration and an empty prompt
    are each reported at their row (and column), whatever the other rows hold."""
    from pipeline.errors import ManifestError
    from pipeline.read.jobs import load_batch

    text, expected = case
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    if not expected:
        load_batch(tmp_path / "m.csv")
        return
    try:
        load_batch(tmp_path / "m.csv")
    except ManifestError as error:
        assert places(error.problems) == expected, text
        assert len(error.problems) == len(expected), [str(p) for p in error.problems]
    else:
        raise AssertionError(f"no problem found in\n{text}")
