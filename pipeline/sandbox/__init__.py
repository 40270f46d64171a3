"""The sandbox: a local stand-in for the AI/ML API's Runway video endpoints.

    SandboxConfig        every setting (queue, response variants, CDN, rendering, faults)
    FaultConfig          faults on demand: probabilities per target and a script
    ScriptedFault        one scripted step: "the next N submits answer 429"
    SandboxServer        the aiohttp server: start(host, port) -> base URL, stats(), stop()
    running_sandbox      context manager: a server in a background thread with its own loop
    body_hash            the identity of a submit body, as counted in stats

Modules: config, faults, bodies (validation), ids, tokens (signed URLs), answers (response
shapes), queue (generations and the concurrency limit), render (MP4s), store (render cache),
stats, server, thread, cli. docs/sandbox.md describes the behaviour.
"""

from .bodies import body_hash
from .config import SandboxConfig
from .faults import FaultConfig, ScriptedFault
from .server import SandboxServer
from .thread import SandboxThread, running_sandbox

__all__ = [
    "FaultConfig",
    "SandboxConfig",
    "SandboxServer",
    "SandboxThread",
    "ScriptedFault",
    "body_hash",
    "running_sandbox",
]
