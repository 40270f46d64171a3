"""Every rule a manifest breaks is reported at once, each as `file:line: field: problem`."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from pipeline.errors import InputError, ManifestError
from pipeline.read.jobs import load_batch


def problems_of(path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_batch(path)
    return [str(p) for p in caught.value.problems]


def png(width: int = 32, height: int = 18, color=(200, 40, 40), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """
            version: 2
            provider: runway
            model: gen5
            """,
            [
                "m.yaml:1: a job needs a prompt, an image_url, or both",
                "m.yaml:1: version: 2 is not allowed; expected 1",
                "m.yaml:2: provider: 'runway' is not allowed; expected 'sandbox' or 'aimlapi'",
                "m.yaml:3: model: 'gen5' is not a catalogued model (143 video models: `vidpipe models` lists them)",
            ],
            id="top-level-enums",
        ),
        pytest.param(
            """
            version: 1
            jobs:
              - promt: a jellyfish
                sed: 3
            """,
            [
                "m.yaml:3: jobs[0].promt: unknown field; did you mean 'prompt'?",
                "m.yaml:4: jobs[0].sed: unknown field; did you mean 'seed'?",
            ],
            id="typos-with-suggestions",
        ),
        pytest.param(
            """
            version: 1
            jobs:
              - prompt: a
                seed: [1, "x", -1, 4294967296]
                ratio: [16:9, 2:1]
                duration: 7
                watermark: "yes"
                repeat: 0
                id: "has space"
            """,
            [
                "m.yaml:4: jobs[0].seed[1]: 'x' is not allowed; expected a whole number from 0 to 4294967295",
                "m.yaml:4: jobs[0].seed[2]: -1 is not allowed; expected a whole number from 0 to 4294967295",
                "m.yaml:4: jobs[0].seed[3]: 4294967296 is not allowed; expected a whole number from 0 to 4294967295",
                "m.yaml:5: jobs[0].ratio[1]: '2:1' is not allowed; expected '16:9', '9:16', '4:3', '3:4', '1:1' or '21:9'",
                "m.yaml:6: jobs[0].duration: 7 is not allowed; expected 5 or 10",
                "m.yaml:7: jobs[0].watermark: 'yes' is not allowed; expected true, false, or a list of them",
                "m.yaml:8: jobs[0].repeat: 0 is not allowed; expected a whole number from 1 to 1000",
                "m.yaml:9: jobs[0].id: 'has space' is not allowed; expected letters, digits, '.', '_' or '-' (80 at most)",
            ],
            id="every-field-at-once",
        ),
        pytest.param(
            """
            version: 1
            matrix:
              seed: {from: 1}
              ratio: []
            jobs:
              - prompt: a
                image_url: http://example.com/a.png
            """,
            [
                "m.yaml:3: matrix.seed: missing required field 'count'",
                "m.yaml:4: matrix.ratio: an empty list is not allowed; expected at least one value",
                "m.yaml:7: jobs[0].image_url: 'http://example.com/a.png' is not allowed; expected an https:// URL "
                "(2048 characters at most), a data:image/(png|jpeg|webp);base64 URI (5 MB at most), "
                "or an image file inside the manifest's folder",
            ],
            id="sweeps-and-urls",
        ),
        pytest.param(
            """
            version: 1
            run: {concurrency: 0, poll_interval: 0, prompt_limit: 2000}
            output: {filename: "../{job_id}.mp4", formats: [csv, xlsx]}
            jobs: [{prompt: a}]
            """,
            [
                "m.yaml:2: run.concurrency: 0 is not allowed; expected a whole number from 1 to 1000",
                "m.yaml:2: run.poll_interval: 0 is not allowed; expected seconds, more than 0 and at most 600",
                "m.yaml:2: run.prompt_limit: 2000 is not allowed; expected 512 or 1000",
                "m.yaml:3: output.filename: '../{job_id}.mp4' is not allowed; expected a file name ending in .mp4 "
                "that contains {job_id} and no '/' or '\\'",
                "m.yaml:3: output.formats[1]: 'xlsx' is not allowed; expected 'csv', 'jsonl' or 'parquet'",
            ],
            id="settings",
        ),
        pytest.param(
            """
            version: 1
            jobs:
              - prompt: a
                seed: 1
                matrix: {seed: [2, 3]}
            """,
            ["m.yaml:5: jobs[0].matrix.seed: 'seed' is set both in the job and in its matrix; keep one"],
            id="job-and-its-matrix",
        ),
    ],
)
def test_document_problems(write, text, expected):
    assert problems_of(write("m.yaml", text)) == expected


def test_model_rules_need_the_whole_row(write):
    """Ratios and last frames depend on the model, which may come from another level."""
    path = write(
        "m.yaml",
        """
        version: 1
        model: gen3a_turbo
        jobs:
          - prompt: a
            ratio: "1:1"
          - prompt: b
            model: runway/gen4_turbo
            ratio: "1:1"
            last_image_url: https://example.com/last.png
          - seed: 3
        """,
    )
    assert problems_of(path) == [
        "m.yaml:5: jobs[0].ratio: '1:1' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        "m.yaml:9: jobs[1].last_image_url: 'https://example.com/last.png' is not allowed; "
        "expected no last frame: runway/gen4_turbo takes only image_url",
        "m.yaml:10: jobs[2]: a job needs a prompt, an image_url, or both",
    ]


def test_prompt_limit_is_512_unless_raised(write):
    long_prompt = "x" * 600
    strict = write("m.yaml", f"version: 1\njobs:\n  - prompt: {long_prompt}\n")
    assert problems_of(strict) == [
        "m.yaml:3: jobs[0].prompt: prompt has 600 characters; expected at most 512 "
        "(run.prompt_limit: 1000 allows up to 1000)"
    ]
    relaxed = write("r.yaml", f"version: 1\nrun: {{prompt_limit: 1000}}\njobs:\n  - prompt: {long_prompt}\n")
    assert len(load_batch(relaxed).table) == 1


def test_csv_cells_are_held_to_the_same_rules(write):
    path = write(
        "p.csv",
        """
        prompt,seed,ratio,duration,watermark,repeat,colour
        a,1|x,16:9,5,true,1,red
        b,2,4:3,7,maybe,0,blue
        """,
    )
    assert problems_of(path) == [
        "p.csv:1: colour: unknown column; expected some of model, prompt, ratio, duration, seed, "
        "watermark, image_url, last_image_url, id, tags, repeat",
        "p.csv:2: seed: 'x' is not allowed; expected a whole number from 0 to 4294967295",
        "p.csv:3: duration: 7 is not allowed; expected 5 or 10",
        "p.csv:3: ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        "p.csv:3: repeat: 0 is not allowed; expected a whole number from 1 to 1000",
        "p.csv:3: watermark: 'maybe' is not allowed; expected true or false",
    ]


def test_csv_cell_rules_that_need_the_model(write):
    path = write("p.csv", "prompt,ratio\na,16:9\nb,4:3\n")
    assert problems_of(path) == [
        "p.csv:3: ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo"
    ]


def test_jobs_csv_problems_point_into_the_csv(write):
    write("prompts.csv", "prompt,seed\na,1\nb,-5\n")
    path = write("m.yaml", "version: 1\njobs_csv: prompts.csv\n")
    assert problems_of(path) == [
        "prompts.csv:3: seed: -5 is not allowed; expected a whole number from 0 to 4294967295"
    ]


def test_missing_jobs_csv(write):
    path = write("m.yaml", "version: 1\njobs_csv: nothere.csv\n")
    with pytest.raises(InputError, match=r"^m\.yaml:2: jobs_csv: no such file 'nothere\.csv'$"):
        load_batch(path)


def test_seed_range_past_the_largest_seed(write):
    path = write("m.yaml", "version: 1\njobs:\n  - prompt: a\n    seed: {from: 4294967290, count: 10}\n")
    assert problems_of(path) == [
        "m.yaml:4: jobs[0].seed: the seed range ends at 4294967299; expected at most 4294967295"
    ]


def test_sweeps_too_large_to_expand_are_refused_before_expanding(write):
    path = write(
        "m.yaml",
        "version: 1\nmatrix:\n  seed: {from: 0, count: 1000000}\njobs:\n  - prompt: a\n  - prompt: b\n  - prompt: c\n",
    )
    with pytest.raises(InputError, match="the sweeps expand to 3,000,000 jobs; at most 2,000,000"):
        load_batch(path)


class TestImages:
    def test_local_images_must_exist_be_inside_and_be_pictures(self, write, workdir):
        write("inside/ok.png", png())
        write("inside/notes.png", b"this is text, not a picture")
        write("inside/wide.png", png(100, 10))
        write("secret.png", png())
        path = write(
            "inside/m.yaml",
            """
            version: 1
            jobs:
              - {prompt: a, image_url: ok.png}
              - {prompt: b, image_url: missing.png}
              - {prompt: c, image_url: ../secret.png}
              - {prompt: d, image_url: notes.png}
              - {prompt: e, image_url: wide.png}
              - {prompt: f, image_url: /etc/passwd}
            """,
        )
        assert problems_of(path) == [
            "inside/m.yaml:4: jobs[1].image_url: 'missing.png': no such file in inside",
            "inside/m.yaml:5: jobs[2].image_url: '../secret.png' is outside the manifest's folder (inside)",
            "inside/m.yaml:6: jobs[3].image_url: not a picture; expected a JPEG, PNG or WebP image",
            "inside/m.yaml:7: jobs[4].image_url: a 100x10 image; expected a width/height ratio between 0.5 and 2.0",
            "inside/m.yaml:8: jobs[5].image_url: '/etc/passwd' is outside the manifest's folder (inside)",
        ]

    def test_symlinks_cannot_smuggle_files_from_outside(self, write, workdir):
        write("secret.png", png())
        (workdir / "inside").mkdir()
        (workdir / "inside" / "link.png").symlink_to(workdir / "secret.png")
        path = write("inside/m.yaml", "version: 1\njobs:\n  - {prompt: a, image_url: link.png}\n")
        assert problems_of(path) == [
            "inside/m.yaml:3: jobs[0].image_url: 'link.png' is outside the manifest's folder (inside)"
        ]

    def test_data_uris_are_decoded_and_checked(self, write):
        good = "data:image/png;base64," + base64.b64encode(png()).decode()
        lying = "data:image/webp;base64," + base64.b64encode(png()).decode()
        path = write(
            "m.yaml",
            f"version: 1\njobs:\n  - {{prompt: a, image_url: '{good}'}}\n  - {{prompt: b, image_url: '{lying}'}}\n",
        )
        assert problems_of(path) == [
            "m.yaml:4: jobs[1].image_url: the data URI says image/webp but holds image/png"
        ]

    def test_gif_is_not_accepted(self, write):
        write("a.gif", png(fmt="GIF"))
        path = write("m.yaml", "version: 1\njobs:\n  - {prompt: a, image_url: a.gif}\n")
        assert problems_of(path) == ["m.yaml:3: jobs[0].image_url: a GIF image; expected JPEG, PNG or WebP"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{job_id}{nope}.mp4",
            "{nope} is not a field; expected some of {job_id}, {id}, {seed}, {ratio}, {duration}, {model}, {index}",
        ),
        (
            "{job_id}{0}.mp4",
            "{0} is not a field; expected some of {job_id}, {id}, {seed}, {ratio}, {duration}, {model}, {index}",
        ),
        (
            "{job_id}{.mp4",
            "'{job_id}{.mp4' is not a valid template (expected '}' before end of string); use {field} placeholders",
        ),
        ("{seed:>300}{job_id}.mp4", "{seed} has a format (>300); expected a plain {seed}"),
        ("{id!r}-{job_id}.mp4", "{id} has a format (!r); expected a plain {id}"),
    ],
)
def test_file_name_templates_use_known_fields_only(write, template, message):
    path = write("m.yaml", f'version: 1\noutput: {{filename: "{template}"}}\njobs: [{{prompt: a}}]\n')
    assert problems_of(path) == [f"m.yaml:2: output.filename: {message}"]


def test_sandbox_faults_are_checked_by_validate_not_only_at_run(write):
    path = write("m.yaml", 'version: 1\nsandbox:\n  faults: {submit: {"430": 0.1}}\njobs: [{prompt: a}]\n')
    assert problems_of(path) == [
        "m.yaml:3: sandbox: faults.submit: unknown submit fault '430' (did you mean '403'?); expected one of "
        "401, 403, 429, 429_retry_after, 500, 502, 502_html, 503, drop_before, drop_after, slow, "
        "accept_504, accept_late, accept_no_id"
    ]


def test_jobs_csv_must_name_a_csv_file(write):
    path = write("m.yaml", "version: 1\njobs_csv: m.yaml\n")
    with pytest.raises(InputError, match=r"^m\.yaml:2: jobs_csv: 'm\.yaml' is not a \.csv file$"):
        load_batch(path)


class TestEveryProblemInOnePass:
    def test_schema_problems_do_not_hide_the_row_rules(self, write):
        """A bad seed and typos once hid a ratio gen3a_turbo does not take and a 600-character
        prompt, which came out only after the first fixes; now all come out at once, each at
        the line of its field (the ratio on line 7, not the job's first line 5)."""
        path = write(
            "bad.yaml",
            f"""
            version: 1
            model: gen3a_turbo
            run: {{concurency: 4}}
            jobs:
              - id: first
                prompt: a lighthouse
                ratio: "4:3"
                seed: -1
              - prompt: {"x" * 600}
                sed: 3
            """,
        )
        assert problems_of(path) == [
            "bad.yaml:3: run.concurency: unknown field; did you mean 'concurrency'?",
            "bad.yaml:7: jobs[0].ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
            "bad.yaml:8: jobs[0].seed: -1 is not allowed; expected a whole number from 0 to 4294967295",
            "bad.yaml:9: jobs[1].prompt: prompt has 600 characters; expected at most 512 "
            "(run.prompt_limit: 1000 allows up to 1000)",
            "bad.yaml:10: jobs[1].sed: unknown field; did you mean 'seed'?",
        ]

    def test_row_rules_point_where_the_value_is_written_once_per_place(self, write):
        """A value a job takes from the matrix or defaults is reported there, once, however many
        jobs use it; each job's own value at its own line."""
        path = write(
            "m.yaml",
            f"""
            version: 1
            defaults:
              prompt: {"d" * 513}
            matrix:
              ratio:
                - "16:9"
                - "1:1"
            jobs:
              - seed: 1
              - seed: 2
              - model: runway/gen4_turbo
                prompt: fine
              - prompt: own
                ratio:
                  - "9:16"
                  - "21:9"
            """,
        )
        assert problems_of(path) == [
            "m.yaml:3: defaults.prompt: prompt has 513 characters; expected at most 512 "
            "(run.prompt_limit: 1000 allows up to 1000)",
            "m.yaml:7: matrix.ratio[1]: '1:1' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
            "m.yaml:16: jobs[3].ratio[1]: '21:9' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        ]

    def test_a_csv_row_with_too_many_cells_hides_nothing_else(self, write):
        path = write(
            "p.csv",
            """
            prompt,ratio,seed,duration
            a lighthouse, at dusk,16:9,1,5
            b,4:3,1,5
            c,16:9,-1,5
            ,16:9,2,5
            d,16:9,3,7
            e,4:3,4,5
            """,
        )
        assert problems_of(path) == [
            "p.csv:2: row has 5 cells but the header names 4; quote a cell that contains a comma",
            "p.csv:3: ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
            "p.csv:4: seed: -1 is not allowed; expected a whole number from 0 to 4294967295",
            "p.csv:5: a job needs a prompt, an image_url, or both",
            "p.csv:6: duration: 7 is not allowed; expected 5 or 10",
            "p.csv:7: ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        ]

    def test_a_jobs_csv_whose_rows_cannot_be_read_says_why(self, write):
        write("prompts.csv", "prompt,seed\na, b,1\n")
        path = write("m.yaml", "version: 1\njobs_csv: prompts.csv\n")
        assert problems_of(path) == [
            "prompts.csv:2: row has 3 cells but the header names 2; quote a cell that contains a comma"
        ]

    def test_the_same_bad_cell_is_reported_at_every_row(self, write):
        path = write("p.csv", "prompt,duration\na,7\nb,5\nc,7\n")
        assert problems_of(path) == [
            "p.csv:2: duration: 7 is not allowed; expected 5 or 10",
            "p.csv:4: duration: 7 is not allowed; expected 5 or 10",
        ]

    def test_csv_rows_taking_a_value_from_the_yaml_point_into_the_yaml(self, write):
        write("prompts.csv", "prompt,ratio\na,\nb,4:3\n")
        path = write("m.yaml", 'version: 1\njobs_csv: prompts.csv\ndefaults:\n  ratio: "1:1"\n')
        assert problems_of(path) == [
            "m.yaml:4: defaults.ratio: '1:1' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
            "prompts.csv:3: ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        ]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param(
                "version: 1\njobs:\n  - promt: a\n",
                ["m.yaml:3: jobs[0].promt: unknown field; did you mean 'prompt'?"],
                id="a-misspelt-prompt-is-not-also-a-missing-one",
            ),
            pytest.param(
                "version: 1\nmodel: gen5\njobs:\n  - {prompt: a, ratio: '4:3'}\n",
                [
                    "m.yaml:2: model: 'gen5' is not a catalogued model (143 video models: `vidpipe models` lists them)"
                ],
                id="an-unknown-model-is-not-taken-for-the-default",
            ),
            pytest.param(
                f"version: 1\nrun: {{prompt_limit: 2000}}\njobs:\n  - prompt: {'x' * 600}\n",
                ["m.yaml:2: run.prompt_limit: 2000 is not allowed; expected 512 or 1000"],
                id="a-refused-prompt-limit-is-not-taken-for-512",
            ),
            pytest.param(
                "version: 1\ndefaults: 3\njobs:\n  - seed: 1\n",
                ["m.yaml:2: defaults: 3 is not allowed; expected a mapping of field: value"],
                id="a-refused-defaults-may-have-held-the-prompt",
            ),
            pytest.param(
                "version: 1\njobs: {prompt: a}\n",
                ['m.yaml:2: jobs: {"prompt": "a"} is not allowed; expected a list'],
                id="refused-jobs-are-not-an-implicit-job",
            ),
            pytest.param(
                "prompt,colour\n,red\n",
                [
                    "p.csv:1: colour: unknown column; expected some of model, prompt, ratio, duration, seed, "
                    "watermark, image_url, last_image_url, id, tags, repeat"
                ],
                id="csv-blank-prompt-with-unknown-column",
            ),
        ],
    )
    def test_a_refused_value_is_not_reported_again_in_other_words(self, write, text, expected):
        name = "p.csv" if text.startswith("prompt,") else "m.yaml"
        if name == "p.csv":
            expected = [*expected, "p.csv:2: a job needs a prompt, an image_url, or both"]
        assert problems_of(write(name, text)) == expected


class TestTheSchemaForEditors:
    """The schema file as an editor reads it (its own $refs, no vidpipe code) flags what
    validate flags on a YAML manifest: tests/test_fuzz.py proves it on generated ones."""

    @staticmethod
    def flagged(document: dict) -> list[str]:
        import json

        from jsonschema import Draft202012Validator

        from tests.conftest import REPO

        schema = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
        return sorted(
            "/".join(map(str, e.absolute_path)) for e in Draft202012Validator(schema).iter_errors(document)
        )

    def test_ratio_per_model_and_the_last_frame(self):
        assert self.flagged({"version": 1, "jobs": [{"prompt": "a", "ratio": "4:3"}]}) == ["jobs/0/ratio"]
        gen4 = {"prompt": "a", "model": "runway/gen4_turbo", "ratio": "4:3"}
        assert self.flagged({"version": 1, "jobs": [gen4]}) == []
        assert (
            self.flagged(
                {"version": 1, "model": "runway/gen4_turbo", "jobs": [{"prompt": "a", "ratio": "1:1"}]}
            )
            == []
        )
        framed = {**gen4, "last_image_url": "https://x.io/l.png"}
        assert self.flagged({"version": 1, "jobs": [framed]}) == ["jobs/0/last_image_url"]
        swept = {"version": 1, "matrix": {"ratio": ["16:9", "21:9"]}, "jobs": [{"prompt": "a"}]}
        assert self.flagged(swept) == ["matrix/ratio/1"]

    def test_prompts_of_512_characters_unless_the_limit_is_raised(self):
        long = {"version": 1, "jobs": [{"prompt": "x" * 600}]}
        assert self.flagged(long) == ["jobs/0/prompt"]
        assert self.flagged({**long, "run": {"prompt_limit": 1000}}) == []
        assert self.flagged({**long, "run": {"prompt_limit": 512}}) == ["jobs/0/prompt"]
        assert self.flagged(
            {"version": 1, "jobs": [{"prompt": "x" * 1001}], "run": {"prompt_limit": 1000}}
        ) == ["jobs/0/prompt"]
