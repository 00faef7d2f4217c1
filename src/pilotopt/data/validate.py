"""Input checks that either stop with one line naming the file and the fix, or, with skip_bad,
drop the bad frame/recording and count why: never train silently on garbage."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from pilotopt.errors import BadInputError

SKIP_HINT = "or pass --skip-bad to skip it"
MAX_EXAMPLES = 5


class FrameError(BadInputError):
    """A bad frame or recording; `reason` is the short category counted under skip_bad."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class DataWarning(UserWarning):
    """Data that loads but may not mean what the user thinks (e.g. labels clipped to the bounds)."""


@dataclass
class Problems:
    """Raise on the first problem, or (skip_bad) count it by reason and keep a few examples."""

    skip_bad: bool = False
    frames: int = 0
    recordings: int = 0
    reasons: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def frame(self, reason: str, message: str) -> None:
        self._note(reason, message)
        self.frames += 1

    def recording(self, reason: str, message: str) -> None:
        self._note(reason, message)
        self.recordings += 1

    def _note(self, reason: str, message: str) -> None:
        if not self.skip_bad:
            raise FrameError(reason, f"{message}; {SKIP_HINT}" if SKIP_HINT not in message else message)
        self.reasons[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    def merge(self, other: dict) -> None:
        """Add counts saved by an earlier run (the cache build's decode problems)."""
        self.frames += int(other.get("frames", 0))
        self.recordings += int(other.get("recordings", 0))
        self.reasons.update({k: int(v) for k, v in other.get("reasons", {}).items()})
        for ex in other.get("examples", []):
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(ex)

    def as_dict(self) -> dict:
        return {"frames": self.frames, "recordings": self.recordings,
                "reasons": dict(sorted(self.reasons.items())), "examples": list(self.examples)}


def parse_label(value, what: str, where: str) -> float:
    """A finite float, or FrameError naming `where` (file and row) and the bad value."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    except (TypeError, ValueError):
        raise FrameError("bad label",
                         f"{where}: {what} is {str(value)!r}, not a number; fix or delete that row") from None
    if not math.isfinite(number):
        raise FrameError("bad label", f"{where}: {what} is {str(value)!r}, not a finite number; fix or delete that row")
    return number
