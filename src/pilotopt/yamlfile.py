"""Reading a user's YAML file (configs, settings, input contracts) with one-line errors naming it."""

from __future__ import annotations

from pathlib import Path

import yaml

from pilotopt.errors import BadInputError, one_line


def read_yaml(path: Path | str, what: str, missing_hint: str = "", mapping_of: str | None = None):
    """The parsed document of `path` (None for an empty file); `what` names it in errors. With
    `mapping_of` (what its keys are, for the error) the document must be a mapping: {} when empty."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{what} '{path}' does not exist{missing_hint}")
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadInputError(f"cannot read {what} '{path}': {one_line(exc)}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadInputError(f"{what} '{path}' is not valid YAML: {one_line(exc)}") from None
    if mapping_of is None:
        return doc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise BadInputError(f"{what} '{path}' must be a mapping of keys ({mapping_of})")
    return doc
