"""The AI/ML API's video endpoints, read as forgivingly as its documented history demands.

Bodies: the two Runway models on the legacy Runway path (run.endpoint: legacy) carry vidpipe's
field names, as always. Every other submit goes to its model's own path (models.submit_path:
the universal one for all but two catalogued models) and carries only the fields that model
declares, under its names (the catalogue's `fields`): the service answers 400 `property ratio
should not exist` for an undeclared one, and a silently dropped one would skew a comparison.
Polls go to the path the job was submitted on.

Every form in ../shared/api-contract.md is accepted: ids under `id` or `generation_id`; `video`
as a list of URL strings, a list of objects, an object with `url`, or a bare string; `error` as
an object, a string, or a validation `detail` list; statuses beyond the documented four.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ... import catalogue, models
from ...errors import InputError, RejectedError
from ...models import CREDITS_PER_USD, LEGACY_PATH, UNIVERSAL_NAMES, UNIVERSAL_PATH
from ...states import PollState
from .base import Generation, HttpRequest, Submitted

FINAL_FAILED = frozenset({"error", "failed", "cancelled", "canceled"})
# The contract's other form of a 404: the id is lost, whatever happened to the generation.
LOST_STATUSES = frozenset({"unknown"})
MAX_MESSAGE = 300
MAX_NAME = 80  # error names and statuses: words, not documents
MAX_VIDEO_URL = 8192  # signed CDN links are well under 2,000 characters


class AimlApi:
    name = "aimlapi"

    def __init__(self, endpoint: str = "legacy"):
        self.endpoint = endpoint
        self.path = UNIVERSAL_PATH if endpoint == "universal" else LEGACY_PATH

    def submit_request(self, request: Mapping[str, Any]) -> HttpRequest:
        """The submit body: fields that are set, `duration` always, `watermark` only if given;
        off the legacy path, only those the model declares, under its names."""
        model = request.get("model")
        entry = _entry(model)
        if entry is None or models.on_legacy_path(str(model), self.endpoint):
            names = UNIVERSAL_NAMES if self.endpoint == "universal" and entry is None else {}
            body = {names.get(key, key): value for key, value in request.items() if value is not None}
            return HttpRequest("POST", self._path_of(model), json=body)
        return HttpRequest(
            "POST", models.submit_path(entry["id"], self.endpoint), json=declared_body(entry, request)
        )

    def read_submit(self, body: Any, headers: Mapping[str, str]) -> Submitted:
        if not isinstance(body, dict):
            if _header_id(headers):
                return Submitted(_header_id(headers), "queued")
            raise RejectedError(f"the service answered the submit with {_kind(body)}, not a JSON object")
        # For an async generation the inference id is the generation id: it stands in for a
        # body that lacks one.
        generation_id = _generation_id(body) or _header_id(headers)
        if generation_id is None:
            raise RejectedError("the service accepted the submit but sent no generation id")
        return Submitted(generation_id, str(body.get("status") or "queued"))

    def poll_request(self, generation_id: str, model: str | None = None) -> HttpRequest:
        """The poll, on the path `model`'s jobs are submitted on (without one: the endpoint's)."""
        return HttpRequest("GET", self._path_of(model), params={"generation_id": generation_id})

    def _path_of(self, model: Any) -> str:
        entry = _entry(model)
        if entry is None or models.on_legacy_path(str(model), self.endpoint):
            return self.path
        return models.submit_path(entry["id"], self.endpoint)

    def read_poll(self, body: Any, headers: Mapping[str, str]) -> Generation:
        if not isinstance(body, dict):
            raise RejectedError(f"the service answered the poll with {_kind(body)}, not a JSON object")
        status = shorten(str(body.get("status") or "").strip(), MAX_NAME)
        lowered = status.lower()
        error = body.get("error")
        credits = _credits(body, headers)
        if lowered in LOST_STATUSES and not _has_error(error):
            return Generation(
                PollState.LOST,
                status,
                error_name="lost",
                error_message=f"the service answered status '{status}': it no longer knows this generation",
                credits=credits,
            )
        if _has_error(error) or lowered in FINAL_FAILED or lowered in LOST_STATUSES:
            name, message = _error_parts(error)
            return Generation(
                PollState.FAILED,
                status,
                error_name=name or lowered or "error",
                error_message=message or f"the generation ended with status '{status}'",
                credits=credits,
            )
        if lowered == PollState.COMPLETED:
            # Without a URL the generation is still done and billed: a later poll may give one.
            url, size = _video(body.get("video"))
            return Generation(PollState.COMPLETED, status, video_url=url, credits=credits, video_bytes=size)
        return Generation(PollState.RUNNING, status, credits=credits)

    def error_message(self, body: Any, text: str) -> str:
        """The message of an error answer, from whichever of the documented shapes it has."""
        return shorten(_message_of(body) or _plain_text(text) or "no message")


def _entry(model: Any) -> dict[str, Any] | None:
    """The catalogue entry of `model`; None for a name it does not hold (a test's, or a future
    one sent through), which is sent as written, with the universal path's common names."""
    if not isinstance(model, str):
        return None
    try:
        return catalogue.model(model)
    except InputError:
        return None


def declared_body(entry: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `request` the model declares, under its names: vidpipe's common fields
    through the catalogue's `fields`, model-specific ones as written. Nothing else is sent."""
    declared = entry["schema"]["properties"]
    body: dict[str, Any] = {"model": entry["id"]}
    for key, value in request.items():
        if value is None or key == "model":
            continue
        name = entry["fields"].get(key) if key in catalogue.COMMON_FIELDS else key
        if name is not None and name in declared:
            body[name] = value
    return body


def _kind(body: Any) -> str:
    return "nothing" if body is None else f"a {type(body).__name__}"


def _generation_id(body: dict[str, Any]) -> str | None:
    for key in ("id", "generation_id"):
        value = body.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _header_id(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-inference-id") if headers is not None else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _has_error(error: Any) -> bool:
    if isinstance(error, dict):
        return bool(error)
    return bool(error) and not isinstance(error, bool)


def _error_parts(error: Any) -> tuple[str | None, str | None]:
    if isinstance(error, str):
        return None, shorten(error)
    if isinstance(error, dict):
        name = error.get("name") or error.get("code") or error.get("type")
        return (shorten(str(name), MAX_NAME) if name else None), shorten(_message_of(error) or "") or None
    if isinstance(error, list):
        return None, shorten(_message_of({"detail": error}) or "") or None
    return None, None


def _message_of(body: Any) -> str | None:
    """`message` (text or list), `error.message`, `error` (text), or a validation `detail` list."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return None
    message = body.get("message")
    if isinstance(message, list):
        return "; ".join(str(m) for m in message if m)
    if isinstance(message, str) and message:
        return message
    error = body.get("error")
    if isinstance(error, dict):
        return _message_of(error)
    if isinstance(error, str) and error:
        return error
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, str):
        return detail
    return None


def _plain_text(text: str) -> str:
    """An HTML or text error page, reduced to its words (a proxy's 502 page, say)."""
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return title.group(1).strip()
    return re.sub(r"<[^>]+>", " ", text)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _video(video: Any) -> tuple[str | None, int | None]:
    """(url, announced size) from every documented shape of `video`."""
    if isinstance(video, list):
        for item in video:
            url, size = _video(item)
            if url:
                return url, size
        return None, None
    if isinstance(video, dict):
        url = video.get("url")
        size = video.get("file_size")
        return (url if _usable_url(url) else None), (size if isinstance(size, int) else None)
    if _usable_url(video):
        return video, None
    return None, None


def _usable_url(url: Any) -> bool:
    """A URL string of a sane length (a longer one is not stored: it is treated as missing)."""
    return isinstance(url, str) and 0 < len(url) <= MAX_VIDEO_URL


def _credits(body: dict[str, Any], headers: Mapping[str, str]) -> float | None:
    usage = (body.get("meta") or {}).get("usage") if isinstance(body.get("meta"), dict) else None
    if isinstance(usage, dict):
        for key in ("credits_used", "tokens_used"):
            value = usage.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        usd = usage.get("usd_spent")
        if isinstance(usd, (int, float)) and not isinstance(usd, bool):
            return float(usd) * CREDITS_PER_USD
    header = headers.get("x-aimlapi-credits-used")
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
