"""The sandbox: a local stand-in for the AI/ML API's Runway video endpoints.

    SandboxConfig        every setting (queue, response variants, CDN, rendering, faults)
    FaultConfig          faults on demand: probabilities per target and a script
    ScriptedFault        one scripted step: "the next N submits answer 429"
    SandboxServer        the aiohttp server: start(host, port) -> base URL, stats(), stop()
    running_sandbox      context manager: a server in a background thread with its own loop
    body_hash            the identity of a submit body, as counted in stats

Modules: config, faults, contract (what the service accepts: the sandbox's own copy, never
the client's rules), bodies (field names and validation), ids, tokens (signed URLs), answers
(response shapes), queue (generations and the concurrency limit), render (MP4s), store (render
cache), stats, server, thread, cli. docs/sandbox.md describes the behaviour.
"""

from importlib import import_module
from typing import Any

# Imported when first used (PEP 562): `vidpipe --help` reads the sandbox's arguments without
# paying for aiohttp and the renderer.
_HOMES = {
    "FaultConfig": "faults",
    "SandboxConfig": "config",
    "SandboxServer": "server",
    "SandboxThread": "thread",
    "ScriptedFault": "faults",
    "body_hash": "bodies",
    "running_sandbox": "thread",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)


__all__ = [
    "FaultConfig",
    "SandboxConfig",
    "SandboxServer",
    "SandboxThread",
    "ScriptedFault",
    "body_hash",
    "running_sandbox",
]
