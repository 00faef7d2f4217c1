"""What the LiteRT techniques share: conversion of the input model (with a fixed-batch fallback for
recurrent models), the representative dataset from the training split, and a description of the
converted model's tensors by type. Conversion still lives in TensorFlow; inference uses
ai_edge_litert (runtimes/litert.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from pilotopt.frameworks import import_tf
from pilotopt.techniques._core import Result, TechniqueContext
from pilotopt.techniques._settings import Settings, calibration

ARTIFACT = "model.tflite"
_TYPE_NAMES = None


@dataclass(frozen=True)
class CalibrationSettings(Settings):
    calibration_frames: int = calibration(note="the converter's representative dataset")


def representative_dataset(ctx: TechniqueContext, n: int) -> tuple[Callable, int]:
    """A generator function over `n` preprocessed TRAINING frames, float32 pixels 0..255, one per call."""
    frames = ctx.train_frames(n)

    def gen():
        for i in range(len(frames)):
            yield [frames[i: i + 1]]

    return gen, len(frames)


def convert_keras(model, configure=None) -> bytes:
    """TFLite flatbuffer bytes of a Keras model; `configure(converter)` may set quantization."""
    tf = import_tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if configure is not None:
        configure(converter)
    return converter.convert()


def convert_keras_batch1(model, configure=None) -> bytes:
    """The same, traced at a fixed batch of 1: recurrent models (ConvLSTM2D) only convert to
    builtin ops this way; with a dynamic batch their TensorList ops would need the Flex
    (SELECT_TF_OPS) delegate, which ai_edge_litert does not ship. The predictor loops over the batch."""
    tf = import_tf()
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False), input_signature=[spec]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if configure is not None:
        configure(converter)
    return converter.convert()


def needs_fixed_batch(exc: Exception) -> bool:
    return "tensor list" in str(exc).lower() or "TensorList" in str(exc)


def convert(ctx: TechniqueContext, configure: Callable | None = None, model=None) -> tuple[bytes, dict]:
    """LiteRT flatbuffer of `model` (default: a fresh copy of the Keras input model);
    `configure(converter)` sets the converter's options."""
    tf = ctx.tf
    model = ctx.keras_model() if model is None else model
    details = {"tensorflow": tf.__version__, "converter": "TFLiteConverter.from_keras_model"}
    try:
        data = convert_keras(model, configure)
    except Exception as exc:  # ConverterError
        if not needs_fixed_batch(exc):
            raise
        data = convert_keras_batch1(model, configure)
        details.update(converter="TFLiteConverter.from_concrete_functions", fixed_batch=1,
                       note="recurrent model: TensorList ops lower to builtins only at a fixed batch of 1")
    return data, details


def integer_quantize(ctx: TechniqueContext, full_integer: bool) -> Result:
    """Post-training integer quantization calibrated on TRAINING frames. `full_integer`: int8 builtin
    ops only and int8 input/output; otherwise float fallback with float input/output."""
    tf = ctx.tf
    gen, n = representative_dataset(ctx, ctx.settings.calibration_frames)

    def configure(conv):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        if full_integer:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8

    data, details = convert(ctx, configure)
    return write(ctx, data, {**details, "quantization": "full_integer" if full_integer else "integer_float_fallback",
                             "calibration_frames": n, "calibration_from": "train"})


def write(ctx: TechniqueContext, data: bytes, details: dict) -> Result:
    (ctx.out / ARTIFACT).write_bytes(data)
    return Result(ARTIFACT, {**details, **describe_tensors(data)})


def _type_name(code: int) -> str:
    global _TYPE_NAMES
    if _TYPE_NAMES is None:
        from tensorflow.lite.python import schema_py_generated as fb

        _TYPE_NAMES = {v: k.lower() for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
    return _TYPE_NAMES.get(code, f"type{code}")


def describe_tensors(data: bytes) -> dict:
    """Tensor types of a LiteRT model: constants (weights, biases) vs computed tensors (activations),
    the input/output types, the names of the int8 tensors and the operators used."""
    from tensorflow.lite.python import schema_py_generated as fb

    model = fb.Model.GetRootAsModel(bytearray(data), 0)
    graph = model.Subgraphs(0)
    weights, activations, int8 = Counter(), Counter(), []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        kind = _type_name(t.Type())
        buf = model.Buffers(t.Buffer())
        constant = buf is not None and (buf.DataLength() > 0 or buf.Offset() > 1)
        (weights if constant else activations)[kind] += 1
        if kind == "int8":
            int8.append({"name": t.Name().decode(errors="replace"), "constant": bool(constant)})
    ops = Counter()
    for i in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops[_op_name(builtin) if not code.CustomCode() else code.CustomCode().decode()] += 1
    io = {
        "input_dtype": _type_name(graph.Tensors(graph.Inputs(0)).Type()),
        "output_dtype": _type_name(graph.Tensors(graph.Outputs(0)).Type()),
    }
    return {**io, "weight_tensor_dtypes": dict(weights), "activation_tensor_dtypes": dict(activations),
            "int8_tensors": int8, "operators": dict(ops)}


_OP_NAMES = None


def _op_name(code: int) -> str:
    global _OP_NAMES
    if _OP_NAMES is None:
        from tensorflow.lite.python import schema_py_generated as fb

        _OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    return _OP_NAMES.get(code, f"op{code}")


def int8_share(record: dict) -> float:
    """Share of weight tensors stored as int8 (for quick summaries)."""
    w = record.get("weight_tensor_dtypes", {})
    total = sum(w.values())
    return float(w.get("int8", 0)) / total if total else 0.0

