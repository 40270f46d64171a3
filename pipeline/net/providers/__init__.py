"""API providers: how a job becomes an HTTP request, and how answers are read. Pure, no I/O.

A provider turns a job into a submit request and a generation id into a poll request, and reads
the answers into `Submitted` / `Generation` values. The HTTP layer sends what it is given; the
scheduler never sees a response body. Adding a service (Runway's own API, say) is a new module
here implementing the `Provider` protocol.
"""

from .aimlapi import AimlApi
from .base import Generation, HttpRequest, Provider, Submitted

__all__ = ["AimlApi", "Generation", "HttpRequest", "Provider", "Submitted"]
