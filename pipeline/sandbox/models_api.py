"""The sandbox's model feeds: `GET /v1/models` and `GET /v1/models/deprecations`, as the service.

    GET /v1/models                 the catalogued video models (pipeline/catalogue/models.json)
        ?output_modalities=video   ?capabilities=text_to_video,image_to_video   ?id=ID_OR_ALIAS
        ?include=pricing,capabilities,modalities|all   (?details=true: every section)
    GET /v1/models/deprecations    the entries of `SandboxConfig.models`

Filters as the docs say: several values of one parameter (comma-separated or repeated) are OR,
several parameters AND, case-insensitive; `id` matches ids and aliases. Both answers carry a
weak ETag, and `If-None-Match` with it answers 304 with no body.

Prices are made up but plausible and deterministic (the same model always gets the same block):
a mix of `fixed` per-second rates, `variants` by duration (per generation) or by resolution
(per second, quoted per 10 s, so a client that ignores `per` is wrong by ten), and `variable`
for edits of an existing video. The Runway models cost what the sandbox charges
(`credits_per_second`). A model with a shutdown date (deprecated) leaves the catalogue but keeps
serving; a withdrawn one leaves it and answers 404; a superseded name lives on as an alias of
its replacement. `ModelsConfig.routes = False` makes both routes answer 404 (an older service).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

CREDITS_PER_USD = 2_000_000
MODELS_PATH = "/v1/models"
DEPRECATIONS_PATH = "/v1/models/deprecations"
SECTIONS = ("pricing", "capabilities", "modalities")
RUNWAY = ("gen3a_turbo", "runway/gen4_turbo")
if TYPE_CHECKING:  # config.py reads ModelsConfig, and `vidpipe sandbox --help` imports no aiohttp
    from aiohttp import web

RATES = (0.03, 0.05, 0.07, 0.1, 0.14, 0.2)  # USD per second


@dataclass(frozen=True)
class ModelsConfig:
    """Which models the deprecation feed lists, and whether the feeds exist at all."""

    routes: bool = True  # False: /v1/models and /v1/models/deprecations answer 404
    deprecated: Mapping[str, str] = field(
        default_factory=lambda: {"kling-video/v1/standard/text-to-video": "2027-03-31"}
    )  # model -> shutdown date
    superseded: Mapping[str, str] = field(
        default_factory=lambda: {"alibaba/wan2.1-t2v-turbo": "alibaba/wan-2-6-t2v"}
    )  # old name -> canonical id
    withdrawn: Mapping[str, str | None] = field(
        default_factory=lambda: {"wan/v2.1/1.3b/text-to-video": "alibaba/wan-2-6-t2v"}
    )  # model -> its replacement (None: none)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ModelsConfig:
        known = ("routes", "deprecated", "superseded", "withdrawn")
        values = dict(data or {})
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"sandbox: models: unknown setting '{key}'; expected {', '.join(known)}")
            if key == "routes" and not isinstance(value, bool):
                raise ValueError("sandbox: models: routes must be true or false")
            if key != "routes" and not isinstance(value, Mapping):
                raise ValueError(f"sandbox: models: {key} must map model names to values")
        return cls(
            **{k: (v if k == "routes" else {str(m): w for m, w in v.items()}) for k, v in values.items()}
        )

    def is_withdrawn(self, model: object) -> bool:
        return isinstance(model, str) and model.casefold() in {m.casefold() for m in self.withdrawn}


def models_answer(config: ModelsConfig, credits_per_second: int, query: Mapping[str, list[str]]) -> dict:
    """The `/v1/models` answer for a query (each parameter's values, as given)."""
    # The docs' data, read only here: serving a submit loads nothing of the client.
    from ..catalogue import load_catalogue

    wanted = {name: _values(query.get(name, [])) for name in ("output_modalities", "capabilities", "id")}
    include = set(_values(query.get("include", [])))
    if "all" in include or _values(query.get("details", [])) & {"true", "1"}:
        include = set(SECTIONS)
    # A superseded name lives on only as an alias of its replacement.
    gone = {m.casefold() for m in (*config.deprecated, *config.withdrawn, *config.superseded)}
    data = []
    for model_id, entry in sorted(load_catalogue()["models"].items()):
        if model_id.casefold() in gone:
            continue
        aliases = [*entry["aliases"], *(old for old, new in config.superseded.items() if new == model_id)]
        capabilities = [c.replace("-", "_") for c in entry.get("capabilities", [])]
        if not _matches(wanted, model_id, aliases, capabilities):
            continue
        item: dict[str, Any] = {
            "id": model_id,
            "aliases": aliases,
            "type": "internal/video-generations/submit",
            "info": {"name": model_id.rsplit("/", 1)[-1], "developer": entry.get("vendor_folder", "")},
            "tags": ["playground:video"],
        }
        if "pricing" in include:
            item["pricing"] = pricing_block(model_id, entry, credits_per_second)
        if "capabilities" in include:
            item["capabilities"] = capabilities
        if "modalities" in include:
            inputs = ["text", "image"] if "image_to_video" in capabilities else ["text"]
            item["modalities"] = {"input": inputs, "output": ["video"]}
        data.append(item)
    return {"object": "list", "data": data}


def deprecations_answer(config: ModelsConfig) -> dict:
    entries = []
    for model, shutdown in config.deprecated.items():
        entries.append(_entry(model, "deprecated", shutdown, None, "the vendor retires this version"))
    for model, replacement in config.superseded.items():
        entries.append(_entry(model, "superseded", None, replacement, "renamed"))
    for model, replacement in config.withdrawn.items():
        entries.append(_entry(model, "withdrawn", "2026-06-30", replacement, "no longer served"))
    return {"object": "list", "data": entries}


def pricing_block(model_id: str, entry: Mapping[str, Any], credits_per_second: int) -> dict[str, Any]:
    """A plausible, deterministic price for one catalogued model."""
    if model_id in RUNWAY:
        return _fixed(credits_per_second / CREDITS_PER_USD)
    digest = hashlib.sha256(model_id.encode()).digest()
    rate = RATES[digest[0] % len(RATES)]
    if "video-to-video" in model_id or "extend" in model_id or model_id.endswith("v2v"):
        return {"kind": "variable", "currency": "USD"}
    allowed = entry.get("allowed", {})
    durations = (allowed.get("duration") or {}).get("enum") or []
    resolutions = (allowed.get("resolution") or {}).get("enum") or []
    kind = digest[1] % 3
    if kind == 1 and len(durations) > 1:
        variants = [
            {
                "when": {"duration": d},
                "price": round(rate * float(d) * (1 - 0.05 * i), 4),
                "unit": "generation",
                "per": 1,
            }
            for i, d in enumerate(durations)
        ]
        return {"kind": "variants", "currency": "USD", "dimensions": ["duration"], "variants": variants}
    if kind == 2 and len(resolutions) > 1:
        variants = [
            {
                "when": {"resolution": r},
                "price": round(rate * 10 * (1 + 0.5 * i), 4),
                "unit": "second",
                "per": 10,
            }
            for i, r in enumerate(resolutions)
        ]
        return {"kind": "variants", "currency": "USD", "dimensions": ["resolution"], "variants": variants}
    return _fixed(rate)


class ModelFeeds:
    """The two routes, for one sandbox's settings."""

    def __init__(self, config: ModelsConfig, credits_per_second: int, not_found):
        self.config = config
        self.credits_per_second = credits_per_second
        self._not_found = not_found
        self.requests = 0  # asked, 304s included
        self.not_modified = 0  # answered 304

    def stats(self) -> dict[str, int]:
        return {"requests": self.requests, "not_modified": self.not_modified}

    def routes(self) -> list[web.RouteDef]:
        from aiohttp import web

        return [web.get(MODELS_PATH, self._models), web.get(DEPRECATIONS_PATH, self._deprecations)]

    async def _models(self, request: web.Request) -> web.StreamResponse:
        query = {key: request.query.getall(key) for key in request.query}
        return await self._answer(request, lambda: models_answer(self.config, self.credits_per_second, query))

    async def _deprecations(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, lambda: deprecations_answer(self.config))

    async def _answer(self, request: web.Request, make) -> web.StreamResponse:
        from aiohttp import web

        self.requests += 1
        if not self.config.routes:
            return await self._not_found(request)
        body = json.dumps(make(), separators=(",", ":")).encode()
        etag = weak_etag(body)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            self.not_modified += 1
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)


def weak_etag(body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def _fixed(usd_per_second: float) -> dict[str, Any]:
    unit = {"name": "second", "measure": "output", "price": round(usd_per_second, 6), "per": 1}
    return {"kind": "fixed", "currency": "USD", "units": [unit]}


def _entry(model: str, status: str, shutdown: str | None, replaced_by: str | None, reason: str) -> dict:
    return {
        "id": model,
        "aliases": [],
        "status": status,
        "deprecated_at": "2026-01-15",
        "shutdown_at": shutdown,
        "replaced_by": replaced_by,
        "reason": reason,
    }


def _values(given: list[str]) -> set[str]:
    return {v.strip().casefold() for value in given for v in value.split(",") if v.strip()}


def _matches(
    wanted: Mapping[str, set[str]], model_id: str, aliases: list[str], capabilities: list[str]
) -> bool:
    if wanted["output_modalities"] and "video" not in wanted["output_modalities"]:
        return False
    if wanted["capabilities"] and not wanted["capabilities"] & {c.casefold() for c in capabilities}:
        return False
    names = {model_id.casefold(), *(a.casefold() for a in aliases)}
    return not wanted["id"] or bool(wanted["id"] & names)
