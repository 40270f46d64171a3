"""Submit bodies: field names per endpoint, validation, and the request's identity.

The rules are the sandbox's own copy of the contract (contract.py), not vidpipe's schema, so
a client that sends what the service refuses is refused here too. The universal path names two
fields differently; a body is translated to the legacy names first, and problems are reported
under the name the client sent. A body for any other model is checked against that model's
published schema under its own names (contract.schema_problems), then read into the legacy
names the renderer takes (its ratio, duration, prompt, seed and frames).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import contract

LEGACY = "legacy"
UNIVERSAL = "universal"
UNIVERSAL_NAMES = {"aspect_ratio": "ratio", "tail_image_url": "last_image_url"}
LEGACY_TO_UNIVERSAL = {legacy: universal for universal, legacy in UNIVERSAL_NAMES.items()}
FIELDS = contract.FIELDS


@dataclass(frozen=True)
class Problem:
    field: str  # as the client named it; "" for the whole body
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class Submitted:
    """A body split into the request (legacy names) and the fields the service would drop."""

    request: dict[str, Any]
    unknown: tuple[str, ...]
    problems: tuple[Problem, ...]


def known_names(endpoint: str) -> tuple[str, ...]:
    if endpoint == LEGACY:
        return FIELDS
    return tuple(LEGACY_TO_UNIVERSAL.get(name, name) for name in FIELDS)


def read_body(body: Any, endpoint: str, prompt_limit: int) -> Submitted:
    """Translate and check one submit body (already parsed from JSON)."""
    if not isinstance(body, Mapping):
        return Submitted({}, (), (Problem("", "the body must be a JSON object"),))
    entry = contract.published(body.get("model"))
    if entry is not None:
        return _published_body(body, entry)
    names = known_names(endpoint)
    request: dict[str, Any] = {}
    unknown = []
    for key, value in body.items():
        if key in names:
            request[UNIVERSAL_NAMES.get(key, key) if endpoint == UNIVERSAL else key] = value
        else:
            unknown.append(str(key))
    problems = [
        Problem(_client_name(field, endpoint), message)
        for field, message in contract.problems(request, prompt_limit)
    ]
    return Submitted(request, tuple(unknown), tuple(problems))


def _published_body(body: Mapping[str, Any], entry: Mapping[str, Any]) -> Submitted:
    """A body for a model checked by its published schema; the request in the legacy names
    (every declared field kept: another value is another request)."""
    common = {own: name for name, own in entry["fields"].items()}
    request = {common.get(key, key): value for key, value in body.items()}
    request["model"] = entry["id"]
    problems = tuple(Problem(field, message) for field, message in contract.schema_problems(body, entry))
    return Submitted(request, (), problems)


def _client_name(path: str, endpoint: str) -> str:
    if endpoint != UNIVERSAL:
        return path
    head, dot, rest = path.partition(".")
    return LEGACY_TO_UNIVERSAL.get(head, head) + dot + rest


def body_hash(request: Mapping[str, Any]) -> str:
    """The identity of a request: same fields and values (legacy names) -> same hash.

    Two submits with the same hash are identical resubmits, whichever path they used.
    """
    canonical = json.dumps(dict(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
