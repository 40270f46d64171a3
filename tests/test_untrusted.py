"""What servers send, cleaned before anything keeps or shows it (pipeline/net/untrusted.py). Pure."""

from __future__ import annotations

import pytest

from pipeline.net.untrusted import Untrusted, printable

KEY = "sk-live-9f8e7d6c5b4a3f2e1d0c"
clean = Untrusted(KEY)


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        KEY[:12],  # the first 12 characters
        KEY[-12:],
        KEY[5:20],
        f"{KEY[:14]}...",  # a server that shortened its echo
        f"x{KEY}y{KEY[3:16]}z",
    ],
)
def test_the_key_and_any_12_of_its_characters_are_cut_out(echo):
    text = clean.text(f"invalid key {echo} given")
    assert all(KEY[i : i + 12] not in text for i in range(len(KEY) - 11))
    assert text.startswith("invalid key ") and text.endswith(" given") and "***" in text


def test_fewer_than_12_characters_of_the_key_are_left_alone():
    assert clean.text(f"id {KEY[:11]}") == f"id {KEY[:11]}"


def test_a_key_split_by_control_characters_cannot_be_rebuilt():
    text = clean.text(KEY[:10] + "\x00" + KEY[10:])
    assert KEY[:10] + KEY[10:22] not in text and KEY[10:22] not in text


def test_bearer_tokens_go_whatever_they_are():
    assert clean.text("got Authorization: Bearer abc.def") == "got Authorization: Bearer ***"


def test_every_string_of_an_answer_is_cleaned_keys_too():
    body = {"error": {"name": KEY, KEY: ["\x1b[2J", 3]}, "n": None}
    assert clean.tree(body) == {"error": {"name": "***", "***": ["\\x1b[2J", 3]}, "n": None}


def test_text_becomes_one_printable_line():
    assert printable("a\nb\tc\x1b]0;t\x07\u202e") == "a b c\\x1b]0;t\\x07\\u202e"
    assert printable("plain é 漢字") == "plain é 漢字"


def test_values_that_held_the_key_cannot_be_used():
    assert clean.carries_key(clean.text(f"gen-{KEY}"))
    assert clean.carries_key(f"https://cdn.example/v.mp4?k={KEY[2:16]}")
    assert not clean.carries_key("d0cddca1-e382-4625-84c9-0817a6441876:runway-gen3/turbo/image-to-video")


def test_a_short_test_key_is_not_looked_for():
    assert Untrusted("k").text("kkk") == "kkk"
