"""Fold a consumer's feeding into a `.tflite`: per-channel affine ops (and an optional ROUND) in
front of the graph's input and an affine behind its output, so that a program that feeds the model
its own way (Behavior Metrics' brains: albumentations `Normalize()` of the uint8 crop, float32 NHWC)
gets the model's outputs on the pixels it was trained on.

The model is edited with the flatbuffer object API that ships with TensorFlow
(`tensorflow.lite.python.schema_py_generated`, read and written through
`tensorflow.lite.tools.flatbuffer_utils`): new tensors, constant buffers and builtin MUL / ADD /
ROUND operators are added to the main subgraph, the graph's input and output (and the signature
defs) are moved to the new tensors, which keep the original names, shapes and shape signatures.
Works for fp32, fp16 (fp16 weights + DEQUANTIZE), dynamic-range and int8-with-float-I/O models
(the inserted ops run in float32 before the model's QUANTIZE and after its DEQUANTIZE), and for
full-integer models (int8 / uint8 input and output, per-tensor quantized): a QUANTIZE is added
after the input steps and a DEQUANTIZE before the output ones, so the result takes and returns
float32 as the consumer's brain expects."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pilotopt.errors import BadInputError

Values = float | Sequence[float] | np.ndarray | None

ALBUMENTATIONS_MEAN = (0.485, 0.456, 0.406)  # albumentations Normalize() defaults (ImageNet)
ALBUMENTATIONS_STD = (0.229, 0.224, 0.225)


def undo_normalize(mean=ALBUMENTATIONS_MEAN, std=ALBUMENTATIONS_STD, max_pixel_value: float = 255.0):
    """(in_scale, in_offset) that map x' = (p / max_pixel_value - mean) / std back to p:
    p = x' * (std * max_pixel_value) + mean * max_pixel_value (then ROUND recovers integer p)."""
    std = np.asarray(std, dtype=np.float64) * max_pixel_value
    mean = np.asarray(mean, dtype=np.float64) * max_pixel_value
    return std.astype(np.float32), mean.astype(np.float32)


def for_behavior_metrics(model: bytes, contract) -> bytes:
    """The `.tflite` for Behavior Metrics' TF brains with `ImageNormalized`: it takes albumentations
    `Normalize()` of the uint8 RGB crop (float32 NHWC) and returns pilotopt-normalized [v, w] (BM's
    `PredictionsNormalized` mapping v = 17.5 q + 6.5, w = 14.2 q - 7.1 then gives the model's
    physical commands). Inside: Normalize() undone and rounded back to the integer pixels, the
    contract's channels and scaling (as its encoder computes them), the model, the contract's output
    map to pilotopt-normalized. Raises BadInputError for an NCHW contract (BM feeds NHWC) and for
    what `add_affine` refuses."""
    if contract.layout != "nhwc":
        raise BadInputError(f"contract '{contract.name}' feeds NCHW but Behavior Metrics' TF brains feed NHWC; "
                            "a .tflite with NCHW input cannot be fed by them")
    in_scale, in_offset = undo_normalize()
    scaled = not (contract.pixel_scale == 1.0 and tuple(contract.mean) == (0.0, 0.0, 0.0)
                  and tuple(contract.std) == (1.0, 1.0, 1.0))
    out = contract.outputs
    a, b = out._affine()  # pilotopt-normalized = a * y[[v_index, w_index]] + b
    return add_affine(model, in_scale, in_offset, round_input=True,
                      in_permute=[2, 1, 0] if contract.channels == "bgr" else None,
                      then_scale=float(contract.pixel_scale) if scaled else None,
                      then_offset=-np.asarray(contract.mean, np.float32) if scaled else None,
                      then_divisor=np.asarray(contract.std, np.float32) if scaled else None,
                      out_permute=None if out.identity else [out.v_index, out.w_index],
                      out_scale=None if out.identity else a, out_offset=None if out.identity else b)


def add_affine(model: bytes, in_scale: Values, in_offset: Values, *, round_input: bool,
               then_scale: Values = None, then_offset: Values = None,
               out_scale: Values = None, out_offset: Values = None,
               in_permute: Sequence[int] | None = None, then_divisor: Values = None,
               out_permute: Sequence[int] | None = None) -> bytes:
    """A new `.tflite` whose single float32 input x' is mapped per channel (last axis) to
    p = x' * in_scale + in_offset, rounded to the nearest integer if `round_input`, then mapped to
    x = p * then_scale + then_offset (None: unchanged) and fed to the original graph; its single
    float32 output y becomes y * out_scale + out_offset per output column (None: unchanged).

    Scales/offsets are a scalar or one value per channel (per output column). An identity step
    (scale all 1, offset all 0) adds no op. Optional extras for contracts that need them:
    `in_permute` reorders the channels of p before `then_*` (e.g. [2, 1, 0]: RGB -> BGR; the
    `then_*` values are in the new order), `then_divisor` divides x after `then_offset` (so that
    (p * pixel_scale - mean) / std is computed as the contract's own encoder computes it, bit for
    bit), `out_permute` reorders y's columns before `out_*` (e.g. [1, 0] for a [w, v] model).

    Raises BadInputError (one line) for a model with more than one input or output, or with an
    input or output neither float32 nor per-tensor quantized int8 / uint8."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        m = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    except Exception as exc:  # noqa: BLE001 - a corrupt or non-TFLite file
        raise BadInputError(f"not a readable .tflite flatbuffer ({type(exc).__name__}); "
                            "pass the bytes of a model written by the TFLite converter") from None
    if not m.subgraphs:
        raise BadInputError("the .tflite has no subgraph; pass a model written by the TFLite converter")
    g = m.subgraphs[0]
    g_in, g_out = list(g.inputs if g.inputs is not None else []), list(g.outputs if g.outputs is not None else [])
    if len(g_in) != 1 or len(g_out) != 1:
        raise BadInputError(f"the .tflite has {len(g_in)} inputs and {len(g_out)} outputs; folding the "
                            "feeding in needs exactly one of each (one image in, one (N, 2) command out)")
    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    integer = (schema.TensorType.INT8, schema.TensorType.UINT8)
    for role, idx in (("input", g_in[0]), ("output", g_out[0])):
        t = g.tensors[idx]
        quantized = t.type in integer and t.quantization is not None and t.quantization.scale is not None \
            and len(t.quantization.scale) == 1
        if t.type != schema.TensorType.FLOAT32 and not quantized:
            raise BadInputError(f"the .tflite's {role} is {names.get(t.type, t.type)}, not FLOAT32 or per-tensor "
                                "quantized int8/uint8; the feeding can be folded only into such a model (convert "
                                "with inference_input_type / inference_output_type tf.float32)")
    int_in = g.tensors[g_in[0]].type in integer  # full-integer I/O: a QUANTIZE after the float steps
    int_out = g.tensors[g_out[0]].type in integer  # and a DEQUANTIZE before the output ones
    editor = _Editor(m, g, schema)
    old_in, old_out = g.tensors[g_in[0]], g.tensors[g_out[0]]
    channels = int(old_in.shape[-1]) if old_in.shape is not None and len(old_in.shape) else 1
    columns = int(old_out.shape[-1]) if old_out.shape is not None and len(old_out.shape) else 1

    # -- input side: x' -> p -> round(p) -> x = original input --------------------------------
    steps = _affine_steps(in_scale, in_offset, channels, "in")  # (opcode name, constant or None)
    if round_input:
        steps.append(("ROUND", None))
    steps += _permute_step(in_permute, channels, "in_permute", 0 if old_in.shape is None else len(old_in.shape))
    steps += _affine_steps(then_scale, then_offset, channels, "then")
    divisor = _vector(then_divisor, channels, "then_divisor")
    if divisor is not None and np.any(divisor == 0):
        raise BadInputError("then_divisor must not contain 0")
    if divisor is not None and not np.all(divisor == 1.0):
        steps.append(("DIV", divisor))
    if steps and int_in:
        steps.append(("QUANTIZE", None))  # round(x / scale) + zero point, saturated, as the runtime quantizes
    if steps:
        new_in = editor.activation_like(old_in, old_in.name)
        old_in.name = _suffixed(old_in.name, "pilotopt_fed")
        editor.chain(new_in, steps, g_in[0], prepend=True, stem=old_in.name)
        g.inputs = [new_in]
        editor.retarget_signatures(g_in[0], new_in, "inputs")

    # -- output side: y -> y * out_scale + out_offset -----------------------------------------
    out_steps = _permute_step(out_permute, columns, "out_permute", 0 if old_out.shape is None else len(old_out.shape))
    out_steps += _affine_steps(out_scale, out_offset, columns, "out")
    if int_out:  # the float32 output every consumer of a float-fed model reads
        out_steps = [("DEQUANTIZE", None)] + out_steps
    if out_steps:
        new_out = editor.activation_like(old_out, old_out.name)
        old_out.name = _suffixed(old_out.name, "pilotopt_raw")
        editor.chain(g_out[0], out_steps, new_out, prepend=False, stem=old_out.name)
        g.outputs = [new_out]
        editor.retarget_signatures(g_out[0], new_out, "outputs")
    return flatbuffer_utils.convert_object_to_bytearray(m)


def _suffixed(name, suffix: str) -> bytes:
    base = name.decode() if isinstance(name, bytes) else str(name or "tensor")
    return f"{base}/{suffix}".encode()


def _vector(values: Values, n: int, what: str) -> np.ndarray | None:
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 1:
        v = np.full(n, v[0])
    if v.size != n:
        raise BadInputError(f"{what} has {v.size} values but the tensor's last axis has {n}; give one value "
                            "or one per channel")
    if not np.all(np.isfinite(v)):
        raise BadInputError(f"{what} must be finite numbers, got {v.tolist()}")
    return v.astype(np.float32)


def _permute_step(order, n: int, what: str, rank: int) -> list:
    if order is None:
        return []
    idx = [int(i) for i in order]
    if sorted(idx) != list(range(n)):
        raise BadInputError(f"{what} must be a permutation of 0..{n - 1}, got {list(order)}")
    if idx == list(range(n)):
        return []
    return [("GATHER", (np.asarray(idx, dtype=np.int32), rank - 1))]


def _affine_steps(scale: Values, offset: Values, n: int, what: str) -> list:
    s, o = _vector(scale, n, f"{what}_scale"), _vector(offset, n, f"{what}_offset")
    steps = []
    if s is not None and not np.all(s == 1.0):
        steps.append(("MUL", s))
    if o is not None and not np.all(o == 0.0):
        steps.append(("ADD", o))
    return steps


class _Editor:
    """Adds tensors, buffers, operator codes and operators to subgraph `g` of model `m`."""

    def __init__(self, m, g, schema):
        self.m, self.g, self.s = m, g, schema
        if m.buffers is None:
            m.buffers = [schema.BufferT()]
        if g.operators is None:
            g.operators = []

    def _buffer(self, data: np.ndarray | None) -> int:
        b = self.s.BufferT()
        if data is not None:
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        self.m.buffers.append(b)
        return len(self.m.buffers) - 1

    def _tensor(self, t) -> int:
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def activation_like(self, like, name) -> int:
        """A new float32 non-constant tensor with `like`'s shape and shape signature."""
        t = self.s.TensorT()
        t.shape = None if like.shape is None else np.array(like.shape, dtype=np.int32)
        t.shapeSignature = None if like.shapeSignature is None else np.array(like.shapeSignature, dtype=np.int32)
        t.hasRank = like.hasRank
        t.type = self.s.TensorType.FLOAT32
        t.name = name
        t.buffer = self._buffer(None)
        return self._tensor(t)

    def constant(self, values: np.ndarray, name: bytes) -> int:
        t = self.s.TensorT()
        t.shape = np.array([values.size], dtype=np.int32)
        if values.dtype == np.int32:
            t.type, data = self.s.TensorType.INT32, values.astype("<i4")
        else:
            t.type, data = self.s.TensorType.FLOAT32, values.astype("<f4")
        t.name = name
        t.buffer = self._buffer(data)
        return self._tensor(t)

    def opcode(self, name: str) -> int:
        from tensorflow.lite.python import schema_util

        code = getattr(self.s.BuiltinOperator, name)
        for i, c in enumerate(self.m.operatorCodes or []):
            if schema_util.get_builtin_code_from_operator_code(c) == code and not c.customCode:
                return i
        c = self.s.OperatorCodeT()
        c.builtinCode = code
        c.deprecatedBuiltinCode = min(code, self.s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
        c.version = 1
        if self.m.operatorCodes is None:
            self.m.operatorCodes = []
        self.m.operatorCodes.append(c)
        return len(self.m.operatorCodes) - 1

    def operator(self, name: str, inputs: list[int], output: int, axis: int = 0):
        op = self.s.OperatorT()
        op.opcodeIndex = self.opcode(name)
        op.inputs, op.outputs = list(inputs), [output]
        options = {"MUL": "MulOptions", "ADD": "AddOptions", "DIV": "DivOptions", "GATHER": "GatherOptions"}
        if name in options:  # fused activation NONE
            op.builtinOptionsType = getattr(self.s.BuiltinOptions, options[name])
            op.builtinOptions = getattr(self.s, options[name] + "T")()
        if name == "GATHER":
            op.builtinOptions.axis = axis
        return op

    def chain(self, first: int, steps: list, last: int, *, prepend: bool, stem: bytes) -> None:
        """Operators first -> step -> ... -> last (intermediate tensors shaped like `first`), put
        before every existing operator (`prepend`) or after them."""
        like = self.g.tensors[first]
        ops, cur = [], first
        for k, (name, const) in enumerate(steps):
            out = last if k == len(steps) - 1 else self.activation_like(like, _suffixed(stem, f"pilotopt_{k}"))
            axis = 0
            if name == "GATHER":
                const, axis = const
            inputs = [cur]
            if const is not None:
                inputs.append(self.constant(const, _suffixed(stem, f"pilotopt_{name.lower()}_{k}")))
            ops.append(self.operator(name, inputs, out, axis))
            cur = out
        self.g.operators = ops + list(self.g.operators) if prepend else list(self.g.operators) + ops

    def retarget_signatures(self, old: int, new: int, side: str) -> None:
        for sd in self.m.signatureDefs or []:
            if sd.subgraphIndex != 0:
                continue
            for tm in getattr(sd, side) or []:
                if tm.tensorIndex == old:
                    tm.tensorIndex = new
