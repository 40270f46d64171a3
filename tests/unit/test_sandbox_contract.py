"""The sandbox's own copy of the contract refuses what the service refuses, field by field."""

from __future__ import annotations

import pytest

from pipeline.sandbox import contract

GOOD = {"model": "gen3a_turbo", "prompt": "a red kite", "ratio": "9:16", "duration": 10, "seed": 7}
PNG = "data:image/png;base64,iVBORw0KGgo="


def refused(**changes) -> list[tuple[str, str]]:
    return contract.problems({**GOOD, **changes}, prompt_limit=512)


def test_a_body_the_contract_allows_has_no_problem():
    assert refused() == []
    assert refused(image_url="https://example.com/a.png", last_image_url=PNG, watermark=True) == []
    assert refused(duration=5.0) == []  # JSON has one number type


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"duration": True}, ("duration", "true is not allowed; expected 5 or 10")),
        ({"duration": "5"}, ("duration", "'5' is not allowed; expected 5 or 10")),
        (
            {"seed": 2**32},
            ("seed", "4294967296 is not allowed; expected a whole number from 0 to 4294967295"),
        ),
        ({"seed": 1.5}, ("seed", "1.5 is not allowed; expected a whole number from 0 to 4294967295")),
        ({"watermark": "yes"}, ("watermark", "'yes' is not allowed; expected true or false")),
        ({"prompt": ""}, ("prompt", "'' has 0 characters; expected at least 1")),
        ({"prompt": 3}, ("prompt", "3 is not allowed; expected a text")),
        ({"ratio": "4:3"}, ("ratio", "'4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo")),
        (
            {"model": "gen5"},
            ("model", "'gen5' is not allowed; expected 'gen3a_turbo' or 'runway/gen4_turbo'"),
        ),
    ],
)
def test_each_refused_value_names_its_field_and_what_is_accepted(changes, expected):
    assert refused(**changes) == [expected]


def test_images_are_https_urls_or_image_data_uris_within_their_sizes():
    assert refused(image_url="https://x/" + "a" * 2038) == []
    too_long = refused(image_url="https://x/" + "a" * 2039)
    assert [field for field, _ in too_long] == ["image_url"]
    assert refused(image_url="data:text/plain;base64,aGk=")[0][0] == "image_url"
    assert refused(image_url="http://x/a.png")[0][0] == "image_url"
    assert "(24 characters)" in refused(last_image_url="data:image/gif;base64,R0")[0][1]


def test_gen4_takes_more_ratios_but_no_last_frame():
    gen4 = {"model": "runway/gen4_turbo", "ratio": "21:9", "last_image_url": PNG}
    assert contract.problems(gen4, 512) == [
        (
            "last_image_url",
            "'data:image/png;base64,... (34 characters)' is not allowed; expected no last frame: "
            "runway/gen4_turbo takes none",
        )
    ]


def test_the_prompt_limit_is_the_setting_and_the_model_is_required():
    assert refused(prompt="p" * 513)[0][1].endswith("has 513 characters; expected at most 512")
    assert contract.problems({**GOOD, "prompt": "p" * 1000}, prompt_limit=1000) == []
    assert contract.problems({"prompt": "x"}, 512) == [("", "missing required field 'model'")]
