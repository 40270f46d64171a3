"""A sandbox with a state folder keeps its generations across restarts, as the real service does."""

from __future__ import annotations

import requests

from pipeline.sandbox import SandboxConfig, running_sandbox
from pipeline.sandbox.journal import JOURNAL_FILE
from tests.sandbox.sandbox_helpers import Client

BODY = {"model": "gen3a_turbo", "prompt": "a kite", "duration": 5, "seed": 3}


def _client(handle, session):
    return Client(handle, session)


def test_generations_survive_a_restart_and_ids_never_repeat(tmp_path):
    config = SandboxConfig(gen_time=0.05, state_dir=str(tmp_path))
    with requests.Session() as session:
        with running_sandbox(config) as first:
            client = _client(first, session)
            done = client.generate(BODY)
            running_id = client.submit({**BODY, "seed": 4}).json()["id"]
            first_ids = {done["id"], running_id}
        with running_sandbox(config.replace(gen_time=0.05)) as second:
            client = _client(second, session)
            again = client.wait(done["id"])
            assert again["status"] == "completed"
            assert client.download(again["video"][0])[4:8] == b"ftyp"
            assert client.wait(running_id)["status"] == "completed"
            new_id = client.submit(BODY).json()["id"]
    assert new_id not in first_ids
    assert (tmp_path / JOURNAL_FILE).is_file()


def test_a_torn_last_line_is_ignored_and_does_not_swallow_the_next(tmp_path):
    config = SandboxConfig(gen_time=0.0, state_dir=str(tmp_path))
    with requests.Session() as session:
        with running_sandbox(config) as first:
            kept = _client(first, session).generate(BODY)["id"]
        with (tmp_path / JOURNAL_FILE).open("a") as journal:
            journal.write('{"event": "created", "id": "half')  # killed while writing
        with running_sandbox(config) as second:
            later = _client(second, session).generate({**BODY, "seed": 9})["id"]
        with running_sandbox(config) as third:
            client = _client(third, session)
            assert client.poll(kept).json()["status"] == "completed"
            assert client.poll(later).json()["status"] == "completed"
