"""Generation ids in every form the service has been seen to use, drawn from a seeded generator.

Clients must treat ids as opaque strings; the odd forms (a `:` and `/` suffix, a non-hex
"uuid") are here to catch clients that parse ids or forget to URL-encode them.
"""

from __future__ import annotations

import random
import uuid

NANOID_ALPHABET = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict"
MODEL_SUFFIX = ":runway-gen3/turbo/image-to-video"
FORMS = ("uuid", "uuid_model", "numeric", "nanoid", "uuid_nonhex")


class IdMaker:
    """Makes unique ids of one form (or of every form in turn, for "mixed")."""

    def __init__(self, form: str, seed: int):
        self.form = form
        self._rng = random.Random(seed ^ 0x5EED1D)
        self._count = 0

    def next(self) -> str:
        form = self.form
        if form == "mixed":
            form = FORMS[self._count % len(FORMS)]
        self._count += 1
        return getattr(self, "_" + form)()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _uuid_model(self) -> str:
        return self._uuid() + MODEL_SUFFIX

    def _numeric(self) -> str:
        return str(10**15 + self._rng.getrandbits(48))

    def _nanoid(self) -> str:
        return "".join(self._rng.choice(NANOID_ALPHABET) for _ in range(21))

    def _uuid_nonhex(self) -> str:
        # Like the docs' example 'a12b3456-7c89-0de1-23f4-g567d584f98d': uuid-shaped, not hex.
        text = self._uuid()
        return text[:24] + "g" + text[25:]
