"""What the sandbox saw, for tests and benchmarks to assert on (GET /_sandbox/stats).

Counters only; the queue and renderer keep their own and `snapshot` joins them in one dict.
The server cannot know whether a client resent a request after losing its answer, but it
knows when two accepted submits had the same body: `identical_resubmits` counts them and
`duplicate_bodies` names their hashes, so "no request body accepted twice" is one assert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    submits_accepted: int = 0
    submits_rejected: Counter[str] = field(default_factory=Counter)  # by HTTP status
    identical_resubmits: int = 0
    submits_by_body: Counter[str] = field(default_factory=Counter)  # body hash -> accepted
    submits_by_endpoint: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    polls_rejected: Counter[str] = field(default_factory=Counter)
    polls_unknown_id: int = 0
    downloads_ok: int = 0
    downloads_expired: int = 0
    downloads_bad_token: int = 0
    downloads_truncated: int = 0
    downloads_short: int = 0
    downloads_with_authorization: int = 0  # a client sent its key to the CDN
    download_bytes: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # "submit.429" -> n
    unknown_fields: Counter[str] = field(default_factory=Counter)
    client_request_ids: int = 0
    # Model -> field name -> accepted bodies that carried it, as the client named it.
    fields_by_model: dict[str, Counter[str]] = field(default_factory=dict)

    def body_fields(self, model: Any, body: Any) -> None:
        if isinstance(body, dict):
            self.fields_by_model.setdefault(str(model), Counter()).update(str(key) for key in body)

    def accept(self, body_hash: str, endpoint: str) -> None:
        if self.submits_by_body[body_hash]:
            self.identical_resubmits += 1
        self.submits_by_body[body_hash] += 1
        self.submits_by_endpoint[endpoint] += 1
        self.submits_accepted += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "submits": {
                "accepted": self.submits_accepted,
                "rejected": dict(self.submits_rejected),
                "rejected_total": sum(self.submits_rejected.values()),
                "identical_resubmits": self.identical_resubmits,
                "distinct_bodies": len(self.submits_by_body),
                "duplicate_bodies": {h: n for h, n in self.submits_by_body.items() if n > 1},
                "by_endpoint": dict(self.submits_by_endpoint),
                "fields_by_model": {model: dict(names) for model, names in self.fields_by_model.items()},
            },
            "downloads": {
                "ok": self.downloads_ok,
                "expired": self.downloads_expired,
                "bad_token": self.downloads_bad_token,
                "truncated": self.downloads_truncated,
                "short": self.downloads_short,
                "with_authorization": self.downloads_with_authorization,
                "bytes": self.download_bytes,
            },
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "unknown_fields": dict(self.unknown_fields),
            "client_request_ids": self.client_request_ids,
        }


def poll_summary(stats: Stats, polls_per_generation: list[int]) -> dict[str, Any]:
    count = len(polls_per_generation)
    return {
        "total": stats.polls,
        "rejected": dict(stats.polls_rejected),
        "unknown_id": stats.polls_unknown_id,
        "per_generation_max": max(polls_per_generation, default=0),
        "per_generation_mean": round(sum(polls_per_generation) / count, 2) if count else 0.0,
    }
