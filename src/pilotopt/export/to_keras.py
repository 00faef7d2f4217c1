"""`keras`: the trained Keras model itself (.h5 file, or a SavedModel folder / .keras file kept in
its own form), run by tf_keras."""

from __future__ import annotations

import shutil
from pathlib import Path

from pilotopt.export import register_exporter
from pilotopt.export.base import TF, ExportContext


@register_exporter("keras", framework=TF, runtime="keras", artifact="model.h5", order=60)
def export_keras(ctx: ExportContext, dest: Path) -> dict:
    import tensorflow as tf

    src = ctx.baseline.path
    details = {"tensorflow": tf.__version__}
    if src.is_dir():  # SavedModel folder
        dest = dest.with_name("saved_model")
        shutil.copytree(src, dest)
        details["artifact"] = dest.name
    elif src.suffix != ".h5":
        dest = dest.with_name("model" + src.suffix)
        shutil.copy2(src, dest)
        details["artifact"] = dest.name
    else:
        shutil.copy2(src, dest)
    return details
