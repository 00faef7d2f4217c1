"""The one error the edge package raises: a line that names the bad thing and the fix."""


class EdgeError(Exception):
    """Bad input or a missing piece on the device; the CLI prints it as one line and exits 2."""
