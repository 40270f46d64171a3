"""A ledger rebuilt from a results table keeps the model-specific fields the jobs were sent."""

from __future__ import annotations

import json

from pipeline.run.workfolder import _ledger_row


def test_a_rebuilt_row_keeps_the_model_fields_and_the_extra_ones():
    row = {
        "job_id": "abc",
        "index": 0,
        "status": "completed",
        "model": "google/veo-3.1-t2v-fast",
        "prompt": "a",
        "negative_prompt": "blur",
        "generate_audio": True,
        "resolution": None,
        "extra": '{"enhance_prompt": false}',
    }
    request = json.loads(_ledger_row(row, "results.jsonl:1")["request"])
    assert request["negative_prompt"] == "blur" and request["generate_audio"] is True
    assert request["enhance_prompt"] is False and "resolution" not in request and "extra" not in request
