"""User-facing errors: one line that names the bad thing and the fix, never a traceback."""


class PilotoptError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class BadInputError(PilotoptError):
    """Malformed or unusable input (file, name, value)."""
