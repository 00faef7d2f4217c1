"""User-facing errors: one line that names the bad thing and the fix, never a traceback."""

from __future__ import annotations

import re


class PilotoptError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class BadInputError(PilotoptError):
    """Malformed or unusable input (file, name, value)."""


class RuntimeUnavailable(PilotoptError):
    """A runtime or technique that cannot run on this machine (no GPU, missing optional package):
    reported as `skipped` with this message, never as a failure."""


# lines of C++ layers (OpenVINO, ONNX Runtime) that only say where in the sources it was raised
_LOCATION_LINES = ("Exception from src", "Check '")
_OWN_NAMES = ("PilotoptError", "BadInputError", "RuntimeUnavailable")  # also when re-raised by name only
_NAMED_CAUSE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(Error|Exception): \S")


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The exception as one line of at most `limit` characters (cut with "..."), for a reason field
    or an error message:

    - pilotopt's own errors (PilotoptError and subclasses): the first line of their message, which
      already names the bad thing and the fix;
    - a multi-line message that ends in an `XxxError: ...` line (TorchScript, TensorFlow, a C++
      layer re-raising): that line, which names the real cause;
    - a C++ message with source-location lines ("Exception from src/...", "Check '...' failed at"):
      `Type: ` and the last line that is not a location;
    - otherwise `Type: first line` (just `Type` for an empty message)."""
    name = type(exc).__name__
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_LOCATION_LINES)] or lines
    if not useful:
        msg = name
    elif isinstance(exc, PilotoptError) or name in _OWN_NAMES:
        msg = useful[0]
    elif len(lines) > 1 and _NAMED_CAUSE.match(useful[-1]):
        msg = useful[-1]
    elif len(useful) < len(lines):
        msg = f"{name}: {useful[-1]}"
    else:
        msg = f"{name}: {useful[0]}"
    limit = max(int(limit), 4)
    return msg if len(msg) <= limit else msg[: limit - 3].rstrip() + "..."
