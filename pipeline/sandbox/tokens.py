"""Signed, expiring video URLs: a JWT (HS256) in `?_jwt=`, like the real CDN's links.

The token names the file it opens and when it stops working; the CDN route needs nothing
else (no Authorization header), exactly as a client will meet it in production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenError(ValueError):
    """The token is not one of ours, names another file, or has expired (see `expired`)."""

    def __init__(self, reason: str, expired: bool = False):
        super().__init__(reason)
        self.expired = expired


class Signer:
    """Issues and checks tokens with a secret made fresh for each server."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or os.urandom(32)
        self._head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())

    def issue(self, file: str, lifetime: float, now: float | None = None) -> str:
        """A token for `file` valid for `lifetime` seconds (negative: already expired)."""
        now = time.time() if now is None else now
        claims = {"file": file, "exp": round(now + lifetime, 3)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{self._head}.{body}.{self._sign(f'{self._head}.{body}')}"

    def check(self, token: str, file: str, now: float | None = None) -> None:
        """Raise TokenError unless `token` is ours, for `file`, and not expired."""
        try:
            head, body, signature = token.split(".")
            claims = json.loads(_unb64(body))
        except (ValueError, TypeError):
            raise TokenError("malformed token") from None
        if not hmac.compare_digest(signature, self._sign(f"{head}.{body}")):
            raise TokenError("bad signature")
        if claims.get("file") != file:
            raise TokenError("token is for another file")
        if (time.time() if now is None else now) >= float(claims.get("exp", 0)):
            raise TokenError("token expired", expired=True)

    def _sign(self, message: str) -> str:
        return _b64(hmac.new(self._secret, message.encode(), hashlib.sha256).digest())
