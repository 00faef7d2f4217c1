"""User-facing errors: one line that names the bad thing and the fix, never a traceback."""


class PilotoptError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class BadInputError(PilotoptError):
    """Malformed or unusable input (file, name, value)."""


class RuntimeUnavailable(PilotoptError):
    """A runtime or technique that cannot run on this machine (no GPU, missing optional package):
    reported as `skipped` with this message, never as a failure."""
