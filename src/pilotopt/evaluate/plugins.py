"""Extra runtime modules named in $PILOTOPT_RUNTIME_PLUGINS (comma-separated module names),
imported by the evaluation parent and by every worker so their `register_runtime` calls take
effect: a way to measure a predictor that does not live in pilotopt.runtimes (and to test the
harness with misbehaving ones)."""

from __future__ import annotations

import importlib
import os

from pilotopt.errors import BadInputError, one_line

PLUGIN_ENV = "PILOTOPT_RUNTIME_PLUGINS"


def load_runtime_plugins() -> list[str]:
    names = [n.strip() for n in os.environ.get(PLUGIN_ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's setting
            raise BadInputError(f"runtime plugin module '{name}' (from ${PLUGIN_ENV}) cannot be imported: "
                                f"{one_line(exc)}; fix it or unset {PLUGIN_ENV}") from None
    return names
