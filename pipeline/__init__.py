"""vidpipe: batch pipeline for generative-video APIs.

Public surface (pinned by tests/test_public_api.py, which derives it from this module's names):
everything else is internal. Helpers imported here are bound to private names, so none leaks.
"""

import typing as _typing
from importlib import import_module as _import_module

from .errors import InputError, ManifestError, Problem, VidpipeError

if _typing.TYPE_CHECKING:
    from .read.jobs import Batch, load_batch
    from .run.plan import Plan, make_plan

__version__ = "0.1.0"

# Imported when first used (PEP 562): they need jsonschema, YAML or pandas, which `vidpipe --help`
# should not pay for.
_LAZY = {"Batch": "read.jobs", "load_batch": "read.jobs", "Plan": "run.plan", "make_plan": "run.plan"}


def __getattr__(name: str) -> _typing.Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_import_module(f".{_LAZY[name]}", __name__), name)


__all__ = [
    "Batch",
    "InputError",
    "ManifestError",
    "Plan",
    "Problem",
    "VidpipeError",
    "__version__",
    "load_batch",
    "make_plan",
]
