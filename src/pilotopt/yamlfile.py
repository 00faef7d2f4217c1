"""Reading a user's YAML file (configs, settings, input contracts) with one-line errors naming it."""

from __future__ import annotations

from pathlib import Path

from pilotopt.errors import BadInputError, one_line


def read_yaml(path: Path | str, what: str, missing_hint: str = ""):
    """The parsed document of `path` (None for an empty file); `what` names it in errors."""
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BadInputError(f"{what} '{path}' does not exist{missing_hint}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"cannot read {what} '{path}': {one_line(exc)}") from None
