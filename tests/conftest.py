"""Shared test helpers: files written under tmp_path, and the real CLI run in-process."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def model_feeds_offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test asks the real service for prices or deprecations, nor touches the user's cache:
    each test has a cache folder of its own, and the feeds are only read from it (a test of the
    feeds themselves unsets VIDPIPE_OFFLINE)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VIDPIPE_CACHE_DIR", str(cache))
    monkeypatch.setenv("VIDPIPE_OFFLINE", "1")
    return cache


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, so paths in messages are short and predictable."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write(workdir: Path) -> Callable[..., Path]:
    """write("name.yaml", text) -> path; text is dedented."""

    def _write(name: str, text: str | bytes) -> Path:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `vidpipe ARGS...` in-process; returns exit code and captured output."""

    def _run(*args: str) -> Result:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse exits on usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 2
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def sandbox():
    """A sandbox on a free loopback port, for the length of one test."""
    from pipeline.sandbox import SandboxConfig, running_sandbox

    with running_sandbox(SandboxConfig(gen_time=0.1, concurrency=8)) as handle:
        yield handle


@pytest.fixture
def run_api(cli, monkeypatch):
    """run_api(server, manifest, *flags): `vidpipe run` as a real-API client pointed at a server
    (a sandbox handle, or a base URL). Quiet unless --json is among the flags."""
    monkeypatch.setenv("AIMLAPI_KEY", KEY)

    def _run(server, manifest, *flags):
        base_url = server if isinstance(server, str) else server.base_url
        quiet = () if "--json" in flags else ("--quiet",)
        return cli("run", manifest, "--provider", "aimlapi", "--base-url", base_url, *quiet, *flags)

    return _run
