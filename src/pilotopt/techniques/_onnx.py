"""What the ONNX-based techniques share (ONNX Runtime, OpenVINO and TensorRT variants all start
from the same fp32 ONNX of the PyTorch baseline): the export, calibration over TRAINING frames,
ONNX Runtime's static (Q/DQ) quantization, and a description of a graph by op and weight type
for the variant record."""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pilotopt.errors import BadInputError
from pilotopt.frameworks import require_package
from pilotopt.techniques._core import Result, TechniqueContext
from pilotopt.techniques._pt2e import batch_dim
from pilotopt.techniques._settings import Settings, calibration, setting

ARTIFACT = "model.onnx"
OPSET = 18
INPUT_NAME, OUTPUT_NAME = "frames", "vw"
CALIBRATION_BATCH = 16  # frames per calibration inference (the exported batch dimension is dynamic)
ACTIVATION_TYPES = ("uint8", "int8")
CALIBRATE_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@dataclass(frozen=True)
class CalibrationSettings(Settings):
    calibration_frames: int = calibration()


@dataclass(frozen=True)
class StaticQuantSettings(CalibrationSettings):
    per_channel: bool = setting(True, "one weight scale per output channel of Conv / Gemm")
    activation_type: str = setting("uint8", "uint8 (asymmetric) suits ORT on x86 CPUs; int8 is symmetric",
                                   choices=ACTIVATION_TYPES)
    calibrate_method: str = setting("minmax", "how activation ranges are taken from the frames",
                                    choices=tuple(CALIBRATE_METHODS))
    # `pilotopt search` ranks layers by how much driving score keeping each one in float recovers
    keep_float: str = setting("", "comma-separated ONNX node names left in float (mixed precision)")
    # 7-bit weights: ORT's u8s8 kernels on x86 CPUs without VNNI (AVX2) add pairs of u8 x s8 products
    # in int16 with saturation (vpmaddubsw), which 8-bit weights can overflow; on this AVX2 EPYC the
    # nano student's output layer saturated (speed capped at 0.70 of 1.03, test MSE 3.3x)
    reduce_range: bool = setting(True, "7-bit weights, safe on x86 CPUs without VNNI; false: full 8-bit "
                                       "weights, for VNNI or ARM targets only")

    @property
    def float_nodes(self) -> list[str]:
        return [n.strip() for n in self.keep_float.split(",") if n.strip()]


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A folder for intermediate files that must not end up in the variant folder."""
    with tempfile.TemporaryDirectory(prefix="pilotopt-onnx-") as tmp:
        yield Path(tmp)


def export_torch_onnx(net, example: np.ndarray, dest: Path, opset: int = OPSET) -> Path:
    """Export a torch module taking (N, ...) float32 frames to a self-contained ONNX file with a
    dynamic batch dimension (dynamo exporter, weights inside the file); raises if the result fails
    onnx.checker."""
    import onnx
    import torch

    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(net, (torch.from_numpy(example),), dynamo=True, external_data=False,
                                    opset_version=opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=({0: batch_dim()},), verbose=False, optimize=True)
    program.save(str(dest), external_data=False)
    onnx.checker.check_model(str(dest), full_check=True)
    return dest


def export_baseline(ctx: TechniqueContext, dest: Path) -> dict:
    """The input model as a self-contained fp32 ONNX with a dynamic batch (weights inside the file:
    ORT's quant_pre_process cannot read external data), in the model's own input layout. A PyTorch
    model is exported with the dynamo exporter on seeded frames of its contract (batch 2: torch.export
    specializes batch sizes 0 and 1); a TorchScript trace with the TorchScript exporter; an ONNX
    input is taken as it is."""
    import shutil

    import onnx

    kind = ctx.baseline.kind.name
    if kind == "onnx":
        shutil.copy2(ctx.baseline.path, dest)
        return {"model": "onnx", "exporter": "none (ONNX input)", "onnx": onnx.__version__}
    if kind in KERAS_SOURCES:
        return export_keras_onnx(ctx, Path(dest))
    torch = ctx.torch
    example = ctx.random_frames(2, seed=ctx.seed)
    if kind == "torchscript":
        export_torchscript_onnx(torch.jit.load(str(ctx.baseline.path), map_location="cpu").eval(), example, Path(dest))
        return {"model": "torchscript", "opset": OPSET, "torch": torch.__version__, "onnx": onnx.__version__,
                "exporter": "torch.onnx TorchScript"}
    name = ctx.torch_model_name
    export_torch_onnx(ctx.torch_model(), example, Path(dest), opset=OPSET)
    return {"model": name, "opset": OPSET, "torch": torch.__version__, "onnx": onnx.__version__,
            "exporter": "torch.onnx dynamo"}


KERAS_SOURCES = ("keras_h5",)  # tf2onnx converts tf_keras models (a Keras 3 .keras file fails in it)


def export_keras_onnx(ctx: TechniqueContext, dest: Path) -> dict:
    """A tf_keras model (the TF baseline, or a fine-tuned TF-MOT pass) to ONNX with tf2onnx, the
    maintained converter, with a dynamic batch in the model's own (NHWC) layout."""
    tf = ctx.tf

    tf2onnx = require_package("tf2onnx")
    model = ctx.keras_model()
    spec = (tf.TensorSpec((None, *ctx.sample_shape), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(dest))
    import onnx

    return {"model": "keras", "opset": OPSET, "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
            "exporter": "tf2onnx.convert.from_keras"}


def export_torchscript_onnx(module, example: np.ndarray, dest: Path) -> Path:
    """A TorchScript module (a user's trace) to ONNX with the TorchScript-based exporter (dynamo
    cannot take ScriptModules); dynamic batch, weights inside the file."""
    import onnx
    import torch

    with torch.no_grad():
        torch.onnx.export(module, (torch.from_numpy(example),), str(dest), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    onnx.checker.check_model(str(dest), full_check=True)
    return dest


def preprocess(src: Path, dest: Path) -> Path:
    """ORT's recommended step before quantization: shape inference and graph optimization."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dest), save_as_external_data=False)
    return dest


def calibration_reader(frames: np.ndarray, input_name: str):
    """An ORT CalibrationDataReader over `frames` (float32 pixels 0..255), CALIBRATION_BATCH at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class FrameReader(CalibrationDataReader):
        def __init__(self):
            self._batches = [frames[i: i + CALIBRATION_BATCH] for i in range(0, len(frames), CALIBRATION_BATCH)]
            self._next = 0

        def get_next(self):
            if self._next >= len(self._batches):
                return None
            self._next += 1
            return {input_name: self._batches[self._next - 1]}

        def __len__(self):
            return len(self._batches)

        def rewind(self):
            self._next = 0

    return FrameReader()


def graph_input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


WEIGHTED_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")


def extreme_frames(ctx: TechniqueContext) -> np.ndarray:
    """An all-black and an all-white image through the input contract: the bounds of every input."""
    raw = np.zeros(ctx.raw_shape(2), np.uint8)
    raw[1] = 255
    return np.asarray(ctx.contract.encode(raw), np.float32)


def input_range_overrides(path: Path, extremes: np.ndarray) -> dict:
    """ORT TensorQuantOverrides {tensor: [{rmin, rmax}]} for the graph input and the tensors of the
    in-model preprocessing (the element-wise and layout ops before the first weighted op), set from
    an all-black and an all-white image instead of the calibration frames.

    Why: their range is known without data, and calibration frames do not cover it. In the demo's
    recordings no training pixel exceeds 200, while the test circuit's do, so a calibrated input
    clipped them: the nano student's speed output stopped at 0.70 of 1.03 (test MSE 3.3x its fp32
    model's). The normalization is affine per channel, so the two constant images bound it."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    source = graph.input[0].name
    pre: list[str] = []
    reached = {source}
    for node in graph.node:  # topological order
        if node.op_type in WEIGHTED_OPS:
            continue
        inputs = [i for i in node.input if i and i not in weights]
        if inputs and all(i in reached for i in inputs):
            for out in node.output:
                reached.add(out)
                pre.append(out)
    for name in pre:
        graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, {source: extremes})))
    values[source] = extremes
    out = {}
    for name in [source, *pre]:
        v = np.asarray(values[name])
        if v.dtype.kind == "f" and v.size:
            out[name] = [{"rmin": np.float32(v.min()), "rmax": np.float32(v.max())}]  # ORT takes numpy scalars
    return out


def quantize_static_qdq(ctx: TechniqueContext, src: Path, dest: Path, *, n_frames: int, per_channel: bool,
                        activation_type: str, calibrate_method: str = "minmax", symmetric: bool = False,
                        keep_float: list[str] | None = None, reduce_range: bool = False) -> dict:
    """Post-training static quantization of the fp32 ONNX `src` into Q/DQ format: int8 weights
    (symmetric), `activation_type` activations with ranges calibrated on TRAINING frames.
    `symmetric` activations (zero point 0) are what TensorRT requires; `reduce_range`: 7-bit weights
    (see StaticQuantSettings)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    frames = ctx.train_frames(n_frames)
    with scratch() as tmp:
        pre = preprocess(src, tmp / "pre.onnx")
        fixed = input_range_overrides(pre, extreme_frames(ctx))
        keep_float = list(keep_float or [])
        if keep_float:
            missing = sorted(set(keep_float) - set(compute_nodes(pre)))
            if missing:
                raise BadInputError(f"keep_float names node(s) {', '.join(missing)} the graph does not have; "
                                    f"its Conv / Gemm / MatMul nodes are {', '.join(compute_nodes(pre))}")
        quantize_static(str(pre), str(dest), calibration_data_reader=calibration_reader(frames, graph_input_name(pre)),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8 if activation_type == "uint8" else QuantType.QInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, CALIBRATE_METHODS[calibrate_method]),
                        nodes_to_exclude=keep_float or None, reduce_range=reduce_range,
                        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                                       "TensorQuantOverrides": fixed})
    return {"quantization": "static", "format": "QDQ", "per_channel": per_channel, "float_nodes": keep_float,
            "weight_bits": 7 if reduce_range else 8,
            "weight_type": "int8", "activation_type": activation_type, "activation_symmetric": symmetric,
            "calibrate_method": calibrate_method, "calibration_frames": int(len(frames)),
            "calibration_from": "train",
            "input_ranges": {k: [round(float(v[0]["rmin"]), 6), round(float(v[0]["rmax"]), 6)] for k, v in fixed.items()},
            "input_ranges_from": "an all-black and an all-white image through the input contract"}


def compute_nodes(path: Path) -> list[str]:
    """The names of the nodes that carry weights (WEIGHTED_OPS), in graph order: the layers
    static quantization turns to int8 and `keep_float` may leave in float."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type in WEIGHTED_OPS and n.name]


_ELEM = None


def elem_name(code: int) -> str:
    global _ELEM
    if _ELEM is None:
        import onnx

        _ELEM = {v: k.lower() for k, v in onnx.TensorProto.DataType.items()}
    return _ELEM.get(code, f"type{code}")


def describe(path: Path) -> dict:
    """Op types, weight (initializer) types, the input/output types and which compute ops read
    quantized data (a DequantizeLinear input, or the integer ops of dynamic quantization)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = Counter(n.op_type for n in graph.node)
    weights = Counter(elem_name(t.data_type) for t in graph.initializer)
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    skip = {"QuantizeLinear", "DequantizeLinear"}
    quantized = Counter(n.op_type for n in graph.node
                        if n.op_type not in skip and (n.op_type.endswith("Integer")
                                                      or any(i in dq_outputs for i in n.input)))
    return {"op_types": dict(ops), "weight_dtypes": dict(weights), "quantized_ops": dict(quantized),
            "quantized_node_count": int(sum(quantized.values())),
            "input_dtype": elem_name(graph.input[0].type.tensor_type.elem_type),
            "output_dtype": elem_name(graph.output[0].type.tensor_type.elem_type)}


# -- OpenVINO --------------------------------------------------------------------------------------
IR_ARTIFACT = "model.xml"  # model.bin lies next to it


def openvino_model(ctx: TechniqueContext):
    """(ov.Model converted from the baseline's fp32 ONNX, details for the record)."""
    ov = require_package("openvino")
    with scratch() as tmp:
        details = export_baseline(ctx, tmp / "fp32.onnx")
        model = ov.convert_model(str(tmp / "fp32.onnx"))
    return model, {**details, "openvino": ov.__version__, "from": "onnx"}


def save_ir(ctx: TechniqueContext, model, details: dict) -> Result:
    """Save as IR with float weights kept fp32 (the default would store them fp16); the predictor
    compiles it with INFERENCE_PRECISION_HINT=f32 (recorded), so its float parts also RUN in fp32."""
    import openvino as ov

    ov.save_model(model, str(ctx.out / IR_ARTIFACT), compress_to_fp16=False)
    return Result(IR_ARTIFACT, {**details, "compress_to_fp16": False, "inference_precision": "f32",
                                **describe_ir(model)})


def describe_ir(model) -> dict:
    """Op types of an OpenVINO model and the element types of its constants (int8 = quantized weights)."""
    ops = Counter(op.get_type_name() for op in model.get_ops())
    consts = Counter(op.get_output_element_type(0).get_type_name() for op in model.get_ops()
                     if op.get_type_name() == "Constant")
    return {"op_types": dict(ops), "constant_dtypes": dict(consts)}
