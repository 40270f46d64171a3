"""The model catalogue: every entry a valid schema, documented examples accepted, the facts hold.

The main tests read only the committed pipeline/catalogue/models.json (CI has no copy of the
docs). The generator's own tests run on a small docs tree written here; the determinism test
runs the generator on the real docs when a clone of aimlapi/api-docs is on this machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline import catalogue
from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "build_catalogue.py"
DOCS_GIT = Path(os.environ.get("VIDPIPE_API_DOCS_GIT", "/work/.mirror/aimlapi+api-docs/repo"))
MODELS = catalogue.load_catalogue()["models"]
UNIVERSAL = "/v2/video/generations"


def _generator():
    spec = importlib.util.spec_from_file_location("build_catalogue", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schemas():
    for model_id, entry in MODELS.items():
        yield model_id, entry["schema"]
        for path, route in entry.get("other_routes", {}).items():
            yield f"{model_id} on {path}", route["schema"]


# ---------------------------------------------------------------------------------------------
# The committed data


def test_catalogue_records_the_docs_commit_and_every_video_model():
    source = catalogue.load_catalogue()["source"]
    assert source["repository"] == "aimlapi/api-docs"
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert len(MODELS) >= 140
    assert {"gen3a_turbo", "runway/gen4_turbo", "google/veo-3.1-t2v-fast", "alibaba/wan-2-6-t2v"} <= set(
        MODELS
    )


@pytest.mark.parametrize(("name", "schema"), list(_schemas()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_request_schema_is_valid_draft_2020_12(name, schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert name.split(" on ")[0] in schema["properties"]["model"]["enum"]


def test_poll_shape_is_recorded_and_valid():
    poll = catalogue.load_catalogue()["poll"]
    assert (poll["method"], poll["path"], poll["query"]) == ("GET", UNIVERSAL, {"generation_id": True})
    assert poll["statuses"] == ["queued", "generating", "completed", "error"]
    Draft202012Validator.check_schema(poll["response_schema"])
    answer = {"id": "g1", "status": "completed", "video": {"url": "https://cdn/x.mp4"}, "error": None}
    assert not list(Draft202012Validator(poll["response_schema"]).iter_errors(answer))


# The docs' own example requests that contradict their schema (reported, not hidden).
EXAMPLE_DISAGREEMENTS = {
    # The page's Python example sends image_url; the schema requires video_url.
    "blackforestlabs/flux-3-video-draft-v2v": ["'video_url' is a required property"],
    "blackforestlabs/flux-3-video-v2v": ["'video_url' is a required property"],
    # The examples ask for 5 seconds; the schema allows 6 or 10.
    "minimax/hailuo-2.3": ["'5' is not of type 'integer'", "'5' is not one of [6, 10]"],
    "minimax/hailuo-2.3-fast": ["'5' is not of type 'integer'", "'5' is not one of [6, 10]"],
    # The page's Python example omits image_url, which the schema requires.
    "video-01-live2d": ["'image_url' is a required property"],
}


def _example_errors(entry: dict, example: dict) -> list[str]:
    """Schema errors of a documented example, sent under the model's canonical id.

    Many examples write the duration as a numeric string ("5") where the schema says integer;
    that one quirk is accepted when the number itself is allowed (the test below counts them).
    """
    body = {**example, "model": catalogue.model(example["model"])["id"]}
    errors = []
    for error in Draft202012Validator(entry["schema"]).iter_errors(body):
        duration = body.get("duration")
        if list(error.path) == ["duration"] and isinstance(duration, str) and duration.isdigit():
            fixed = {**body, "duration": int(duration)}
            if not list(Draft202012Validator(entry["schema"]).iter_errors(fixed)):
                continue
        errors.append(error.message)
    return errors


def test_documented_example_requests_validate_against_their_schema():
    with_examples = [m for m, e in MODELS.items() if e.get("examples")]
    assert len(with_examples) >= 135, "the docs give an example request for nearly every model"
    problems = {}
    for model_id in with_examples:
        for example in MODELS[model_id]["examples"]:
            errors = _example_errors(MODELS[model_id], example)
            if errors:
                problems.setdefault(model_id, set()).update(errors)
    assert {m: sorted(p) for m, p in problems.items()} == EXAMPLE_DISAGREEMENTS


def test_many_documented_examples_write_duration_as_a_string():
    """A fact for the request builder: the docs send "5"; the schemas (and vidpipe) say 5."""
    as_string = [
        m for m, e in MODELS.items() for x in e.get("examples", []) if isinstance(x.get("duration"), str)
    ]
    assert len(as_string) >= 40


def test_a_value_the_model_does_not_take_is_refused():
    schema = catalogue.request_schema("google/veo-3.1-t2v")
    ok = {"model": "google/veo-3.1-t2v", "prompt": "a fox", "duration": 8}
    assert not list(Draft202012Validator(schema).iter_errors(ok))
    errors = list(Draft202012Validator(schema).iter_errors({**ok, "duration": 5}))
    assert [e.message for e in errors] == ["5 is not one of [4, 6, 8]"]


@pytest.mark.parametrize(
    ("models", "durations"),
    [
        (
            [
                "google/veo-3.1-t2v",
                "google/veo-3.1-t2v-fast",
                "google/veo-3.1-i2v",
                "google/veo-3.1-i2v-fast",
            ],
            [4, 6, 8],
        ),
        (
            ["google/veo-3.1-first-last-image-to-video", "google/veo-3.1-first-last-image-to-video-fast"],
            [4, 6, 8],
        ),
        (["minimax/hailuo-02", "minimax/hailuo-2.3", "minimax/hailuo-2.3-fast"], [6, 10]),
        (["alibaba/wan-2-6-t2v", "alibaba/wan-2-6-i2v", "alibaba/wan-2-6-r2v"], [5, 10, 15]),
        (["luma/ray-2", "luma/ray-flash-2"], [5, 9]),
        (["gen3a_turbo", "runway/gen4_turbo"], [5, 10]),
    ],
)
def test_durations_the_issue_lists(models, durations):
    for model_id in models:
        assert catalogue.allowed(model_id, "duration")["enum"] == durations, model_id


def test_runway_on_the_universal_path_requires_a_first_frame_and_gen3a_has_no_watermark():
    for model_id in ("gen3a_turbo", "runway/gen4_turbo"):
        entry = catalogue.model(model_id)
        assert entry["path"] == UNIVERSAL
        assert "image_url" in entry["required"]
        assert entry["capabilities"] == ["image-to-video"]
    assert catalogue.field_name("gen3a_turbo", "watermark") is None
    assert catalogue.field_name("gen3a_turbo", "ratio") == "aspect_ratio"


def _family(prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in MODELS if m.startswith(prefixes)]


def test_seed_support_by_family():
    """Seeds: Runway, Seedance, PixVerse (not lip-sync), most Wan, some Veo; never Kling, Hailuo, Luma, Sora."""
    for model_id in _family(("kling", "minimax/hailuo", "luma/", "openai/sora")):
        assert not catalogue.model(model_id)["seed"], model_id
    for model_id in [
        *_family(("runway/", "bytedance/seedance", "bytedance/dreamina-seedance")),
        "gen3a_turbo",
    ]:
        assert catalogue.model(model_id)["seed"], model_id
    assert [m for m in _family(("pixverse/",)) if not MODELS[m]["seed"]] == ["pixverse/lip-sync"]
    # Veo 3.x: the docs disagree with "seed on Veo 3.x"; only these declare one.
    veo3 = _family(("google/veo3", "google/veo-3", "veo-3"))
    assert sorted(m for m in veo3 if MODELS[m]["seed"]) == [
        "google/veo-3.0-fast",
        "google/veo-3.0-i2v",
        "google/veo-3.0-i2v-fast",
        "google/veo-3.1-t2v",
        "google/veo-3.1-t2v-fast",
        "google/veo3",
    ]
    # Wan: the motion-transfer and VACE editing models take none.
    wan = _family(("alibaba/wan",))
    assert sorted(m for m in wan if not MODELS[m]["seed"]) == [
        "alibaba/wan2.2-14b-animate-move",
        "alibaba/wan2.2-14b-animate-replace",
        *(
            f"alibaba/wan2.2-vace-fun-a14b-{kind}"
            for kind in ("depth", "inpainting", "outpainting", "pose", "reframe")
        ),
    ]


@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        ("gen3a_turbo", "tail_image_url"),
        ("runway/gen4_turbo", "tail_image_url"),
        ("kling-video/v1.6/pro/image-to-video", "tail_image_url"),
        ("klingai/video-v3-pro-image-to-video", "tail_image_url"),
        ("pixverse/v5/transition", "tail_image_url"),
        ("google/veo-3.1-first-last-image-to-video", "last_image_url"),
        ("bytedance/seedance-1-0-pro-i2v", "last_image_url"),
        ("luma/ray-3.2", "last_image_url"),
        ("minimax/hailuo-02", "last_image_url"),
        # Kling's O1 breaks the Kling rule: the docs say last_image_url.
        ("klingai/video-o1-image-to-video", "last_image_url"),
    ],
)
def test_last_frame_field_names_come_from_the_schema(model_id, name):
    assert catalogue.field_name(model_id, "last_image_url") == name
    assert name in catalogue.request_schema(model_id)["properties"]


def test_the_universal_path_says_aspect_ratio_except_minimax_h3():
    says_ratio = [
        m for m, e in MODELS.items() if e["path"] == UNIVERSAL and e["fields"].get("ratio") == "ratio"
    ]
    assert says_ratio == ["minimax/h3"]


def test_fields_and_allowed_values_are_read_from_each_schema():
    for model_id, entry in MODELS.items():
        properties = entry["schema"]["properties"]
        for common, name in entry["fields"].items():
            assert name in properties, (model_id, common)
            for key, value in entry["allowed"][common].items():
                assert properties[name][key] == value, (model_id, common, key)
        assert entry["required"] == sorted(entry["schema"].get("required", []))
        assert entry["seed"] == ("seed" in properties)


def test_string_defaults_were_turned_into_numbers_and_said_so():
    entry = catalogue.model("alibaba/wan-2-6-t2v")
    assert catalogue.allowed("alibaba/wan-2-6-t2v", "duration") == {
        "default": 10,
        "enum": [5, 10, 15],
        "type": "integer",
    }
    assert "duration: default '10' (a string) -> 10" in entry["normalisations"]


def test_capability_says_how_it_was_inferred():
    assert catalogue.model("google/veo-3.1-t2v")["capabilities"] == ["text-to-video"]
    assert catalogue.model("alibaba/wan-2-6-i2v")["capabilities"] == ["image-to-video"]
    assert catalogue.model("blackforestlabs/flux-3-video-v2v")["capabilities"] == ["video-to-video"]
    both = catalogue.model("minimax/hailuo-02")
    assert both["capabilities"] == ["text-to-video", "image-to-video"]
    assert both["capability_basis"] == "requires no image or video input; optional image_url"
    for entry in MODELS.values():
        assert entry["capability_basis"]


def test_models_the_model_list_calls_gone_are_marked():
    gone = sorted(m for m, e in MODELS.items() if e.get("withdrawn_in_docs"))
    assert gone == [
        "bytedance/seedance-1-0-lite-i2v",
        "bytedance/seedance-1-0-lite-t2v",
        "wan/v2.1/1.3b/text-to-video",
    ]
    assert catalogue.model("google/veo-3.1-t2v").get("withdrawn_in_docs") is None


def test_json_stays_small_and_descriptions_one_line():
    size = (REPO / "pipeline" / "catalogue" / "models.json").stat().st_size
    assert size < 700_000
    text = json.dumps(MODELS)
    assert not re.search(r'"description": "[^"]*\\n', text)


# ---------------------------------------------------------------------------------------------
# The loader


def test_loader_and_generator_agree_on_the_common_fields():
    """The generator runs without vidpipe, so it keeps its own list: the two must not drift."""
    assert set(catalogue.COMMON_FIELDS) == set(catalogue.load_catalogue()["common_fields"])
    assert list(_generator().COMMON_FIELDS) == list(catalogue.COMMON_FIELDS)


def test_load_catalogue_reads_the_file_once():
    assert catalogue.load_catalogue() is catalogue.load_catalogue()


def test_a_model_is_found_by_alias_and_regardless_of_case():
    assert (
        catalogue.model("kling-video/v3/turbo/pro/image-to-video")["id"]
        == "klingai/video-v3-turbo-pro-image-to-video"
    )
    assert catalogue.model("Runway/Gen4_Turbo")["id"] == "runway/gen4_turbo"


def test_an_unknown_model_is_one_line_naming_the_closest_ids():
    with pytest.raises(InputError) as caught:
        catalogue.model("google/veo-3.1-t2v-fats")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("model 'google/veo-3.1-t2v-fats' is not in the catalogue (")
    assert message.endswith("closest: google/veo-3.1-t2v-fast, google/veo-3.1-i2v-fast, google/veo-3.1-t2v")
    with pytest.raises(
        InputError, match=r"closest: openai/sora-2-i2v, openai/sora-2-t2v, openai/sora-2-pro-i2v$"
    ):
        catalogue.model("sora")


def test_field_name_and_allowed():
    assert catalogue.field_name("runway/gen4_turbo", "ratio") == "aspect_ratio"
    assert catalogue.allowed("runway/gen4_turbo", "ratio")["enum"] == [
        "16:9",
        "9:16",
        "4:3",
        "3:4",
        "1:1",
        "21:9",
    ]
    assert catalogue.field_name("klingai/video-v3-pro-text-to-video", "seed") is None
    assert catalogue.allowed("klingai/video-v3-pro-text-to-video", "seed") is None
    with pytest.raises(
        InputError, match=r"^'fps' is not a common request field; expected one of prompt, ratio, "
    ):
        catalogue.field_name("gen3a_turbo", "fps")


# ---------------------------------------------------------------------------------------------
# The generator, on a docs tree written here


def _spec(body: dict, samples: list[dict]) -> str:
    post = {"requestBody": {"content": {"application/json": {"schema": body}}}, "x-codeSamples": samples}
    return json.dumps({"openapi": "3.0.0", "paths": {UNIVERSAL: {"post": post}}})


def _write_docs(root: Path) -> None:
    video = root / "docs" / "api-references" / "video-models"
    (video / "Acme").mkdir(parents=True)
    # One file, two models sharing a schema; both need an image.
    pair = {
        "type": "object",
        "properties": {"model": {"enum": ["acme/move-i2v", "acme/still"]}, "image_url": {}},
    }
    (video / "Acme" / "pair.json").write_text(_spec({**pair, "required": ["model", "image_url"]}, []))
    body = {
        "type": "object",
        "properties": {
            "model": {"type": "string", "enum": ["acme/clip-t2v"]},
            "prompt": {"type": "string", "description": "What to film.\nSecond line. More."},
            "duration": {"type": "integer", "enum": [5, 10], "default": "5"},
            "fps": {"type": "integer", "enum": [24, 30], "default": "25"},
            "seed": {"type": "integer", "nullable": True, "example": 7},
            "tail_image_url": {"type": "string", "format": "uri", "required": True},
        },
        "required": ["model", "prompt"],
    }
    curl = 'curl --data \'{"model": "acme/clip-t2v", "prompt": "it\\\'s a fox"}\''
    (video / "Acme" / "clip.json").write_text(_spec(body, [{"lang": "cURL", "source": curl}]))
    page = (
        "# Clip\n{% hint %}\nThis documentation is valid for the following list of our models:\n\n"
        "* `acme/clip-t2v`\n* `acme/clip`\n{% endhint %}\n"
        "[OpenAPI](https://raw.githubusercontent.com/aimlapi/api-docs/refs/heads/main/docs/api-references/video-models/Acme/clip.json)\n"
        "```python\ndata = {\n    'model': 'acme/clip',\n    'prompt': '''\nA fox.\n''',\n    'duration': 10,\n}\n```\n"
    )
    (video / "Acme" / "clip.md").write_text(page)


def test_generator_builds_a_catalogue_from_a_docs_tree(tmp_path):
    _write_docs(tmp_path / "docs-checkout")
    out = tmp_path / "models.json"
    command = [
        sys.executable,
        str(SCRIPT),
        str(tmp_path / "docs-checkout"),
        "--commit",
        "a" * 40,
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.startswith(f"wrote {out}: 3 models from aaaaaaaaaaaa, ")
    data = json.loads(out.read_text())
    assert data["source"]["commit"] == "a" * 40
    assert data["models"]["acme/move-i2v"]["capabilities"] == ["image-to-video"]
    assert data["models"]["acme/still"]["capability_basis"] == "requires image_url"
    clip = data["models"]["acme/clip-t2v"]
    assert clip["aliases"] == ["acme/clip"]
    assert clip["vendor_folder"] == "Acme"
    assert clip["schema"]["properties"]["prompt"]["description"] == "What to film."
    assert clip["schema"]["properties"]["seed"] == {"type": ["integer", "null"], "examples": [7]}
    assert clip["allowed"]["duration"] == {"default": 5, "enum": [5, 10], "type": "integer"}
    assert clip["normalisations"] == [
        "duration: default '5' (a string) -> 5",
        "fps: default '25' is not an allowed integer: dropped",
        "seed: OpenAPI example -> examples",
        "seed: nullable -> null allowed",
        "(body): property-level required: true on tail_image_url dropped (added to required: tail_image_url)",
    ]
    assert "default" not in clip["schema"]["properties"]["fps"]
    assert clip["required"] == ["model", "prompt", "tail_image_url"]
    assert clip["fields"]["last_image_url"] == "tail_image_url"
    assert clip["capabilities"] == ["text-to-video"]
    assert "docs/api-references/model-database.md: absent; availability not checked" in data["doc_issues"]
    assert clip["examples"] == [
        {"duration": 10, "model": "acme/clip", "prompt": "\nA fox.\n"},
        {"model": "acme/clip-t2v", "prompt": "it's a fox"},
    ]
    Draft202012Validator.check_schema(clip["schema"])


def test_generator_refuses_a_folder_that_is_not_the_docs(tmp_path):
    command = [
        sys.executable,
        str(SCRIPT),
        str(tmp_path),
        "--commit",
        "b" * 40,
        "--out",
        str(tmp_path / "m.json"),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == (
        f"build_catalogue: {tmp_path}: no docs/api-references/video-models folder "
        "(is this a checkout of aimlapi/api-docs?)\n"
    )


def test_normalise_turns_openapi_exclusive_bounds_into_numbers():
    notes: list[str] = []
    schema = _generator().normalise({"type": "number", "minimum": 0, "exclusiveMinimum": True}, "cfg", notes)
    assert schema == {"type": "number", "exclusiveMinimum": 0}
    assert notes == ["cfg: OpenAPI boolean exclusiveMinimum -> numeric exclusiveMinimum"]


@pytest.mark.skipif(
    not DOCS_GIT.is_dir(), reason=f"no clone of aimlapi/api-docs at {DOCS_GIT} (VIDPIPE_API_DOCS_GIT)"
)
def test_generator_is_deterministic_on_the_real_docs(tmp_path):
    outputs = []
    for name in ("first.json", "second.json"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, str(SCRIPT), "--git-dir", str(DOCS_GIT), "--out", str(out)],
            capture_output=True,
            check=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    committed = REPO / "pipeline" / "catalogue" / "models.json"
    if json.loads(outputs[0])["source"]["commit"] == catalogue.load_catalogue()["source"]["commit"]:
        assert outputs[0] == committed.read_bytes(), "models.json differs from what the generator writes"
