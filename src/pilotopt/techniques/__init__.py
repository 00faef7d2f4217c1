"""Optimization techniques: each is one small module in this package that registers itself by name.

    from pilotopt.techniques import optimize, techniques
    variants = optimize("runs/tf_pilotnet/model.h5", ["tflite_int8", "tflite_float16"], ["data"], "artifacts")

A technique module registers `apply(ctx) -> Result` with
`@register_technique(name, framework="tf"|"torch", runtime=..., description=..., settings=SettingsDataclass,
available=..., needs_data=...)`. `ctx` (TechniqueContext) gives a fresh copy of the baseline, the
training split, the settings, seed, threads and `ctx.out`, an empty folder for the artifact.
Every module here whose name does not start with "_" is imported by `techniques()`.

`optimize` runs each technique in a child process and writes ARTIFACTS/<technique>/ (variant.json
+ artifact) atomically; see pilotopt.techniques._runner."""

from pilotopt.techniques._core import (NoSettings, Result, Technique, TechniqueContext, get_technique,
                                       make_settings, register_technique, technique_names, techniques,
                                       unregister_technique)
from pilotopt.techniques._runner import baseline_hash, optimize, read_settings_file

__all__ = ["NoSettings", "Result", "Technique", "TechniqueContext", "baseline_hash", "get_technique",
           "make_settings", "optimize", "read_settings_file", "register_technique", "technique_names",
           "techniques", "unregister_technique"]
