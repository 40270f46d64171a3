"""A sandbox's generations kept on disk, so a restarted sandbox still knows them.

The embedded sandbox starts and stops with each `vidpipe run`. Without a journal, a run that was
killed would come back to a sandbox that has forgotten every generation: the real service
keeps them, so polls by id must keep working across restarts, and ids must not repeat.

One JSON line per event, appended and flushed before the submit is answered: `created` (what
rebuilds the generation) and `finished` (its final status). Rendering is deterministic, so a
clip is rendered again rather than stored. A torn last line (the process was killed while
writing it) is ignored: its submit was never answered.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JOURNAL_FILE = "sandbox-generations.jsonl"


class GenerationJournal:
    """Append-only record of generations; `load()` replays it into one record per generation."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.path = Path(folder) / JOURNAL_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = self.path.exists() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")
        self._file = self.path.open("a", encoding="utf-8")
        if torn:  # end the torn line, so the next event starts a line of its own
            self._file.write("\n")

    def load(self) -> list[dict[str, Any]]:
        """Each generation's `created` record, updated by its `finished` one, in creation order."""
        records: dict[str, dict[str, Any]] = {}
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "created":
                    records[event["id"]] = event
                elif event.get("event") == "finished" and event.get("id") in records:
                    records[event["id"]].update(event)
        return list(records.values())

    def created(self, record: dict[str, Any]) -> None:
        self._append({"event": "created", **record})

    def finished(self, generation_id: str, status: str, error: str | None, credits: int) -> None:
        self._append(
            {"event": "finished", "id": generation_id, "status": status, "error": error, "credits": credits}
        )

    def _append(self, event: dict[str, Any]) -> None:
        # Written through to the OS before the answer leaves: a killed process keeps it.
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
