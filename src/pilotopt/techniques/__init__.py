"""Optimization techniques: each is one small module in this package that registers itself by name.

    from pilotopt.techniques import optimize, techniques
    variants = optimize("runs/tf_pilotnet/model.h5", ["tflite_int8", "tflite_float16"], ["data"], "artifacts")

A technique module registers `apply(ctx) -> Result` with
`@register_technique(name, framework="tf"|"torch", runtime=..., description=..., settings=SettingsDataclass,
available=..., needs_data=...)`. `ctx` (TechniqueContext) gives a fresh copy of the baseline, the
training split, the settings, seed, threads and `ctx.out`, an empty folder for the artifact.
Every module here whose name does not start with "_" is imported by `techniques()`.

`optimize` runs the techniques in child processes (a crash fails only the technique it happened
in) and writes ARTIFACTS/<technique>/ (variant.json
+ artifact) atomically; see pilotopt.techniques._runner."""

from pilotopt.techniques._core import (NoSettings, Result, Technique, TechniqueContext, get_technique,
                                       make_settings, register_technique, technique_names, techniques,
                                       unregister_technique)
from pilotopt.techniques._runner import optimize, read_config_file

# The fp32 conversions of a trained baseline (no optimization), in the order their variants are listed.
FP32_CONVERSIONS = ("torch", "torchscript", "torch_export", "onnx_fp32", "openvino_fp32", "tensorrt_fp32", "keras",
                    "tflite_fp32")


def fp32_conversions(framework: str) -> list[str]:
    """The fp32 conversions a baseline of `framework` ("torch" or "tf") gets, of those registered here."""
    known = techniques()
    return [n for n in FP32_CONVERSIONS if n in known and known[n].framework == framework]


__all__ = ["FP32_CONVERSIONS", "NoSettings", "Result", "Technique", "TechniqueContext", "fp32_conversions",
           "get_technique", "make_settings", "optimize", "read_config_file", "register_technique",
           "technique_names", "techniques", "unregister_technique"]
