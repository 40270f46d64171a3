"""vidpipe: batch pipeline for generative-video APIs.

Public surface (pinned by tests/test_public_api.py); everything else is internal.
"""

from .errors import InputError, ManifestError, Problem, VidpipeError
from .jobs import Batch, load_batch
from .plan import Plan, make_plan

__version__ = "0.1.0"

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
