"""`vidpipe sandbox` / `python -m pipeline.sandbox`: the sandbox as a standalone server.

Only argument parsing and turning settings errors into one line; the behaviour lives in the
other modules. `add_arguments` and `run` are what `vidpipe sandbox` wires in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from . import config as cfg
from .config import SandboxConfig
from .faults import FaultConfig
from .models_api import ModelsConfig

EXAMPLE = """\
Example:
  vidpipe sandbox --port 8000 --gen-time 5      # or: python -m pipeline.sandbox ...
  curl -s -X POST http://127.0.0.1:8000/v2/generate/video/runway/generation \\
       -H 'Authorization: Bearer any-key' -H 'Content-Type: application/json' \\
       -d '{"model": "gen3a_turbo", "prompt": "a red kite", "duration": 5}'
  curl -s 'http://127.0.0.1:8000/v2/generate/video/runway/generation?generation_id=ID' \\
       -H 'Authorization: Bearer any-key'
  curl -s http://127.0.0.1:8000/_sandbox/stats

  # realistic timing, 4 at once, one key only, a few faults (same seed, same faults):
  vidpipe sandbox --gen-time 25 --concurrency 4 --require-key sk-test \\
       --rate-limit 0.05 --server-errors 0.02 --drops 0.01 --fault-seed 7
  # a fault file (see docs/sandbox.md):
  vidpipe sandbox --faults faults.yaml
"""

# Fault flags for the common cases: flag -> how its probability is split over (target, kind).
FAULT_SHORTCUTS: dict[str, tuple[str, list[tuple[str, str, float]]]] = {
    "rate_limit": (
        "429 on submits and polls (half of them with Retry-After)",
        [
            ("submit", "429", 0.5),
            ("submit", "429_retry_after", 0.5),
            ("poll", "429", 0.5),
            ("poll", "429_retry_after", 0.5),
        ],
    ),
    "server_errors": (
        "500, 502 and 503 on submits and polls, equally",
        [(t, k, 1 / 3) for t in ("submit", "poll") for k in ("500", "502", "503")],
    ),
    "drops": (
        "dropped connections: submits (half before, half after the generation exists) and polls",
        [("submit", "drop_before", 0.5), ("submit", "drop_after", 0.5), ("poll", "drop", 1.0)],
    ),
    "gen_errors": ("generations that end in error", [("generation", "error", 1.0)]),
    "slow": (
        "slow answers on submits, polls and downloads (see --slow-seconds)",
        [("submit", "slow", 1.0), ("poll", "slow", 1.0), ("download", "slow", 1.0)],
    ),
    "bad_downloads": (
        "truncated, short and expired downloads, equally",
        [("download", k, 1 / 3) for k in ("truncated", "short", "expired")],
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the sandbox's flags on `parser` (also sets its epilog to the example)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLE
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port, 0 for any free one (default %(default)s)"
    )
    queue = parser.add_argument_group("queue")
    queue.add_argument(
        "--gen-time",
        type=float,
        default=SandboxConfig.gen_time,
        metavar="SECONDS",
        help="mean generation time (default %(default)s; 25 is realistic)",
    )
    queue.add_argument(
        "--gen-time-dist",
        choices=cfg.GEN_TIME_DISTRIBUTIONS,
        default=SandboxConfig.gen_time_dist,
        help="distribution of generation times",
    )
    queue.add_argument(
        "--concurrency",
        type=int,
        default=SandboxConfig.concurrency,
        metavar="K",
        help="generations running at once; the rest queue (default %(default)s)",
    )
    queue.add_argument("--seed", type=int, default=0, help="seed for ids, absent request seeds, times")
    queue.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep generations in a journal in DIR, so a restarted sandbox still knows them",
    )
    api = parser.add_argument_group("API behaviour")
    api.add_argument("--require-key", metavar="KEY", help="accept only this Bearer key")
    api.add_argument("--strict", action="store_true", help="answer 400 to unknown body fields")
    api.add_argument("--prompt-limit", type=int, choices=cfg.PROMPT_LIMITS, default=512)
    api.add_argument("--submit-status", type=int, choices=(200, 201), default=SandboxConfig.submit_status)
    api.add_argument("--id-key", choices=cfg.ID_KEYS, default="id")
    api.add_argument("--id-form", choices=cfg.ID_FORMS, default="uuid")
    api.add_argument("--video-shape", choices=cfg.VIDEO_SHAPES, default="auto")
    api.add_argument("--error-shape", choices=cfg.ERROR_SHAPES, default="auto")
    api.add_argument("--pending-video", choices=cfg.PENDING_VIDEO, default="null")
    api.add_argument("--queued-status", choices=cfg.QUEUED_STATUSES, default="queued")
    api.add_argument("--running-status", choices=cfg.RUNNING_STATUSES, default="generating")
    api.add_argument("--error-status", choices=cfg.ERROR_STATUSES, default="error")
    api.add_argument("--usage-key", choices=cfg.USAGE_KEYS, default="credits_used")
    api.add_argument("--unknown-id", choices=cfg.UNKNOWN_ID_ANSWERS, default="404")
    api.add_argument(
        "--url-lifetime",
        type=float,
        default=SandboxConfig.url_lifetime,
        metavar="SECONDS",
        help="how long a signed video URL works (default %(default)s)",
    )
    api.add_argument(
        "--render",
        choices=cfg.RENDER_MODES,
        default="full",
        help="shared: one clip per ratio and duration, for load tests",
    )
    api.add_argument(
        "--models",
        metavar="FILE.yaml",
        help="the /v1/models/deprecations feed: deprecated, superseded, withdrawn, routes (docs/sandbox.md)",
    )
    faults = parser.add_argument_group("faults (probabilities from 0 to 1)")
    faults.add_argument("--faults", metavar="FILE.yaml", help="fault settings file (docs/sandbox.md)")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="TARGET.KIND=P",
        help="one fault, e.g. submit.429_retry_after=0.1 (repeatable)",
    )
    faults.add_argument("--fault-seed", type=int, help="seed of the fault draws")
    faults.add_argument("--slow-seconds", type=float, help="delay of a slow answer")
    faults.add_argument("--retry-after", type=float, help="seconds sent in Retry-After")
    for name, (text, _) in FAULT_SHORTCUTS.items():
        faults.add_argument("--" + name.replace("_", "-"), type=float, metavar="P", help=text)


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The SandboxConfig the flags describe. Raises ValueError with a one-line message."""
    return SandboxConfig(
        gen_time=args.gen_time,
        gen_time_dist=args.gen_time_dist,
        concurrency=args.concurrency,
        seed=args.seed,
        require_key=args.require_key,
        strict=args.strict,
        prompt_limit=args.prompt_limit,
        submit_status=args.submit_status,
        id_key=args.id_key,
        id_form=args.id_form,
        video_shape=args.video_shape,
        error_shape=args.error_shape,
        pending_video=args.pending_video,
        queued_status=args.queued_status,
        running_status=args.running_status,
        error_status=args.error_status,
        usage_key=args.usage_key,
        unknown_id=args.unknown_id,
        url_lifetime=args.url_lifetime,
        render=args.render,
        state_dir=args.state_dir,
        faults=faults_from_args(args),
        models=models_from_args(args),
    )


def models_from_args(args: argparse.Namespace) -> ModelsConfig:
    if not args.models:
        return ModelsConfig()
    import yaml

    path = Path(args.models)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as problem:
        raise ValueError(f"{path}: cannot read the models file: {problem}") from None
    return ModelsConfig.from_mapping(loaded if isinstance(loaded, dict) else {})


def faults_from_args(args: argparse.Namespace) -> FaultConfig:
    data: dict[str, Any] = {}
    if args.faults:
        import yaml

        path = Path(args.faults)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as problem:
            raise ValueError(f"{path}: cannot read the fault file: {problem}") from None
        data = dict(loaded or {})
    for name, (_, parts) in FAULT_SHORTCUTS.items():
        chance = getattr(args, name)
        if chance is not None:
            for target, kind, share in parts:
                data.setdefault(target, {})[kind] = chance * share
    for item in args.fault:
        where, _, chance = item.partition("=")
        target, _, kind = where.partition(".")
        try:
            value = float(chance)
        except ValueError:
            raise ValueError(f"--fault {item}: expected TARGET.KIND=PROBABILITY") from None
        data.setdefault(target, {})[kind] = value
    for key in ("fault_seed", "slow_seconds", "retry_after"):
        value = getattr(args, key)
        if value is not None:
            data["seed" if key == "fault_seed" else key] = value
    return FaultConfig.from_mapping(data)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Returns the exit code (2 for bad settings)."""
    try:
        config = config_from_args(args)
    except ValueError as problem:
        print(f"vidpipe sandbox: {problem}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config, args.host, args.port))
    except OSError as problem:
        print(f"vidpipe sandbox: cannot listen on {args.host}:{args.port}: {problem}", file=sys.stderr)
        return 2
    return 0


async def _serve(config: SandboxConfig, host: str, port: int) -> None:
    from .server import LEGACY_PATH, UNIVERSAL_PATH, SandboxServer  # aiohttp: only when serving

    server = SandboxServer(config)
    url = await server.start(host, port)
    print(f"vidpipe sandbox listening on {url}", flush=True)
    print(f"  submit/poll: {url}{LEGACY_PATH}  and  {url}{UNIVERSAL_PATH}", flush=True)
    print(f"  stats:       {url}/_sandbox/stats   (Ctrl-C stops)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.sandbox",
        description="Run the vidpipe sandbox: a local stand-in for the AI/ML API video endpoints.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
