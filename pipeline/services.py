"""The services vidpipe runs jobs on, by name, and what the code asks of each. Pure.

Two words, one meaning each:
- a **service** is where jobs run: the local sandbox or the AI/ML API. The manifest's
  `provider` key (and `--provider`) names one; that user-facing word stays, but in the code
  the thing it names is a service.
- a **provider** is a request format: a class in `providers/` that turns a job into an HTTP
  request and reads the answers. A service speaks one; the sandbox speaks the AI/ML API's,
  which is what makes it a stand-in.

Every question about a service ("is it free?", "does it need a key?", "may a submit whose
answer was lost be resent without asking?") is answered here, so a new service is an entry in
`SERVICES`, not a search for `== "sandbox"`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import InputError
from .net.providers import AimlApi, Provider


@dataclass(frozen=True)
class Service:
    name: str
    provider: Callable[[str], Provider]  # endpoint ("legacy" or "universal") -> request format
    key_env: str | None  # the variable that holds its API key; None: it needs no key
    base_url: str | None  # None: vidpipe starts it for the run (the embedded sandbox)
    base_url_env: str | None = None  # a variable that overrides base_url
    free: bool = False
    # A submit whose answer was lost may have created a billed generation; only where nothing
    # is billed may vidpipe send it again without --retry-uncertain.
    resend_uncertain: bool = False

    @property
    def needs_key(self) -> bool:
        return self.key_env is not None

    @property
    def embedded(self) -> bool:
        """Started by vidpipe for each run, from the manifest's `sandbox` settings."""
        return self.base_url is None


# Where a manifest's jobs run when it names no `provider`: free, and no key needed.
DEFAULT_SERVICE = "sandbox"
# What run.accounts falls back to: the key of the paid service.
DEFAULT_KEY_ENV = "AIMLAPI_KEY"

SERVICES: Mapping[str, Service] = MappingProxyType(
    {
        "sandbox": Service("sandbox", AimlApi, key_env=None, base_url=None, free=True, resend_uncertain=True),
        "aimlapi": Service(
            "aimlapi",
            AimlApi,
            key_env=DEFAULT_KEY_ENV,
            base_url="https://api.aimlapi.com",
            base_url_env="AIMLAPI_BASE_URL",
        ),
    }
)


def service(name: str) -> Service:
    """The service called `name` (the manifest's `provider`); InputError naming the known ones."""
    try:
        return SERVICES[name]
    except KeyError:
        known = " or ".join(repr(n) for n in SERVICES)
        raise InputError(f"provider {name!r} is not a service vidpipe knows; expected {known}") from None
