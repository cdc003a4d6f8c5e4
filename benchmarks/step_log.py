"""Step times from the step lines ``idr resolve`` prints ("[12:00:01]  12.3 s  scoring ...")."""

from __future__ import annotations

import re

_STEP_LINE = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?([0-9.]+) s  (.+?)\s*(?:\S+\.py:\d+)?\s*$")
_DONE = re.compile(r"done in ([0-9.]+) s")
EMBED_STEPS = ("embedding profiles", "indexing the embeddings")


def parse_step_log(text: str) -> list[tuple[float, str]]:
    """(seconds since start, step) of each step line, in order."""
    marks = []
    for line in text.splitlines():
        m = _STEP_LINE.match(line)
        if m:
            marks.append((float(m.group(1)), m.group(2)))
    return marks


def done_seconds(text: str) -> float | None:
    """The run's own total ("done in N s"), or None when it did not finish."""
    m = _DONE.search(text)
    return float(m.group(1)) if m else None


def step_seconds(marks: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds per step from (start time, step message) marks; the last step ends at ``end``."""
    out: dict[str, float] = {}
    for (t, msg), nxt in zip(marks, [*marks[1:], (end, "")], strict=True):
        out[msg] = out.get(msg, 0.0) + nxt[0] - t
    return out


def seconds_of(steps: dict[str, float], *prefixes: str) -> float:
    """Total seconds of the steps whose message starts with one of ``prefixes``."""
    return sum(s for msg, s in steps.items() if msg.startswith(prefixes))
