"""Strings that came from the network, made safe to keep and to show, in one place.

Everything a server sends passes through one `Untrusted` before it is parsed further, stored,
shortened or printed: JSON answers (every string in them, keys too, so error names, messages,
statuses, ids and URLs alike), error pages, Location headers, and aiohttp's reasons (which
quote what the server sent). It does two things, in this order:

- makes the text printable on one line: line breaks and tabs become spaces; terminal escapes,
  other control characters and bidi overrides are shown as `\\x1b`-style escapes, so a server
  cannot move the cursor, retitle the terminal or reorder what is shown;
- cuts out the API key, whole or any run of `PARTIAL_KEY` (12) or more of its consecutive
  characters (a server that shortened its echo still leaks what it kept), and whatever follows
  `Bearer `. Scrubbing comes last, so nothing done after it can rebuild a key.

Only a key long enough to be a secret is looked for (a 1-character test key would "appear"
everywhere). Values the client must use exactly (generation ids, video URLs) are refused, not
used, when cleaning changed them to hide the key: see `carries_key`.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
PARTIAL_KEY = 12
MIN_SECRET_LENGTH = 8
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def printable(text: str) -> str:
    """`text` as one printable line: whitespace becomes a space, other unprintables escapes."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else " " if ch.isspace() else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


class Untrusted:
    """Cleans what servers send for one API key (see the module doc)."""

    def __init__(self, api_key: str | None):
        key = api_key if api_key and len(api_key) >= MIN_SECRET_LENGTH else ""
        self._key = key
        self._pattern: re.Pattern[str] | None = None
        self._pieces: tuple[str, ...] = ()
        if key:
            run = min(PARTIAL_KEY, len(key))
            pieces = sorted({key[i : i + run] for i in range(len(key) - run + 1)})
            self._pieces = tuple(pieces)
            # A lookahead finds every start of a piece, overlapping ones included.
            self._pattern = re.compile("(?=(" + "|".join(map(re.escape, pieces)) + "))")

    def text(self, value: Any) -> str:
        """`value` as a printable line without the key."""
        return self._scrub(printable(str(value)))

    def tree(self, value: Any) -> Any:
        """A parsed JSON answer with every string in it cleaned, keys included."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        return value

    def carries_key(self, value: str) -> bool:
        """True when `value` holds the key, or held it before cleaning (and so cannot be used)."""
        return REDACTED in value or self._scrub(value) != value

    def _scrub(self, text: str) -> str:
        text = _BEARER.sub(r"\1" + REDACTED, text)
        # Plain substring tests first: fast, and almost always enough.
        if self._pattern is None or not any(piece in text for piece in self._pieces):
            return text
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        parts, last = [], 0
        for start, end in spans:
            parts += [text[last:start], REDACTED]
            last = end
        parts.append(text[last:])
        return "".join(parts)
