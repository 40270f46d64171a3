"""The shapes of the sandbox's answers, one function per body, each variant chosen by config.

Everything here is pure: a dict in, a dict (or text) out, so the variants are easy to read
side by side with the contract and to test without a server.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from .bodies import LEGACY
from .config import SandboxConfig
from .contract import USD_PER_CREDIT, VALIDATION_ERROR
from .queue import COMPLETED, ERROR, GENERATING, QUEUED, Generation

MESSAGES = {
    400: VALIDATION_ERROR,
    401: "This request requires a valid API key. Send it as 'Authorization: Bearer <key>'.",
    403: "You've run out of credits. Please top up your balance to continue.",
    404: "Generation not found",
    429: "Too many requests: the rate or concurrency limit of your account was reached",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "The model is under maintenance, please try again later",
}

PROXY_502_HTML = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""


def nest_error(config: SandboxConfig, status: int, path: str, message: Any = None) -> dict:
    """A NestJS-style error body: {message, path, requestId, statusCode, timestamp}."""
    text = MESSAGES.get(status, "Error") if message is None else message
    if config.message_as_list and not isinstance(text, list):
        text = [text]
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "message": text,
        "path": path,
        "requestId": str(uuid.uuid4()),
        "statusCode": str(status) if config.status_code_as_string else status,
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def status_name(config: SandboxConfig, generation: Generation) -> str:
    return {
        QUEUED: config.queued_status,
        GENERATING: config.running_status,
        COMPLETED: "completed",
        ERROR: config.error_status,
    }[generation.status]


def usage(config: SandboxConfig, credits: int) -> dict[str, Any]:
    return {"usage": {config.usage_key: credits, "usd_spent": round(credits * USD_PER_CREDIT, 6)}}


def submit_body(config: SandboxConfig, generation: Generation) -> dict[str, Any]:
    body: dict[str, Any] = {config.id_key: generation.id, "status": config.queued_status}
    if config.usage_on_submit:
        body["meta"] = usage(config, 0)
    return body


def poll_body(
    config: SandboxConfig, generation: Generation, url: str | None, size: int | None
) -> dict[str, Any]:
    """The answer to a poll; `url` is the signed video URL once completed."""
    body: dict[str, Any] = {config.id_key: generation.id, "status": status_name(config, generation)}
    if generation.status == COMPLETED and url is not None:
        body["video"] = video_field(config, generation, url, size)
    elif config.pending_video == "null":
        body["video"] = None
    elif config.pending_video == "empty_list":
        body["video"] = []
    body["error"] = error_field(config, generation) if generation.status == ERROR else None
    body["meta"] = usage(config, generation.credits) if generation.status == COMPLETED else None
    return body


def unknown_body(config: SandboxConfig, generation_id: str) -> dict[str, Any]:
    """The 200 form of an unknown id (instead of a 404)."""
    return {config.id_key: generation_id, "status": "unknown", "video": None, "error": None}


def video_field(config: SandboxConfig, generation: Generation, url: str, size: int | None) -> Any:
    shape = config.video_shape
    if shape == "auto":
        shape = "list" if generation.endpoint == LEGACY else "object"
    if shape == "list":
        return [url]
    if shape == "list_objects":
        return [{"url": url}]
    if shape == "string":
        return url
    if shape == "object_legacy":
        return {
            "url": url,
            "content_type": "video/mp4",
            "file_name": f"{generation.file}.mp4",
            "file_size": size,
        }
    return {"url": url, "duration": generation.spec.duration}


def error_field(config: SandboxConfig, generation: Generation) -> Any:
    message = generation.error or "Generation failed"
    shape = config.error_shape
    if shape == "auto":
        shape = "string" if generation.endpoint == LEGACY else "object"
    if shape == "string":
        return message
    if shape == "detail":
        return {"detail": [{"loc": ["body"], "msg": message, "type": "generation_error"}]}
    return {"name": "GenerationError", "message": message}
