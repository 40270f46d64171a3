"""Client request ids fit the service's alphabet, are unique per job, attempt and folder, and
are the same every time they are made (pipeline/run/request_ids.py)."""

from __future__ import annotations

import pytest

from pipeline.run.request_ids import ALLOWED, MAX_LENGTH, client_request_id, ids_of_job


def test_vidpipe_job_ids_pass_unchanged():
    assert client_request_id("a1b2c3", "0123456789abcdef", 2) == "vp.a1b2c3.0123456789abcdef.2"


@pytest.mark.parametrize(
    "job_id", ["with space", "ünïcode", "slash/and:colon", "a" * 500, "tab\tnew\nline", "x" * 80 + "?"]
)
def test_any_job_id_is_mapped_into_the_alphabet(job_id):
    value = client_request_id("tok", job_id, 12345)
    assert ALLOWED.match(value) and len(value) <= MAX_LENGTH
    assert value == client_request_id("tok", job_id, 12345)  # deterministic


def test_ids_differ_by_job_attempt_and_folder_even_when_mapping_makes_names_alike():
    ids = {
        client_request_id("tok", "a b", 1),
        client_request_id("tok", "a_b", 1),
        client_request_id("tok", "a/b", 1),
        client_request_id("tok", "a b", 2),
        client_request_id("other", "a b", 1),
    }
    assert len(ids) == 5


def test_every_attempt_of_a_job_is_known_from_its_submit_count():
    assert ids_of_job("t", "j", 3) == ["vp.t.j.1", "vp.t.j.2", "vp.t.j.3"]
    with pytest.raises(ValueError):
        client_request_id("t", "j", 0)
