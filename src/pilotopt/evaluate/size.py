"""Size of an artifact: bytes on disk, gzip size, content digest, parameter counts.

Bytes and gzip are computed on the files exactly as deployed: a file as is, a folder (or a file
with companions: OpenVINO's model.xml + model.bin, ONNX external data) as the sum of its files,
gzip of a deterministic tar of them (sorted names, zero times and owners, so the same files always
give the same number). The digest (names + contents) keys the result cache.

Parameter counts are read from the artifact with the library that wrote it, where it allows:
PyTorch state dicts (checkpoint, TorchScript, torch.export), Keras .h5 weights and SavedModel
variables, ONNX initializers, TFLite constant tensors (buffers with data, read through the
interpreter) and OpenVINO constants. "Parameters" are the weight tensors: floating point tensors
and quantized integer weights; index/shape tensors (int64, or integer tensors without
quantization) and scalars (scales, zero points) are left out. A quantized weight counts as zero
when it equals its zero point. When the artifact cannot be read this way, the producer's
`record` ("params", "nonzero_params") is used, else the counts are null."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

_CHUNK = 1 << 20


# Files that belong to a single-file artifact: OpenVINO IR weights next to the .xml, ONNX external data.
COMPANIONS = {".xml": ("{stem}.bin",), ".onnx": ("{name}.data", "{name}_data", "{stem}.data")}


def artifact_files(path: Path) -> list[Path]:
    """The regular files of an artifact: the file and its companions (model.xml + model.bin), or
    every file under a folder, sorted."""
    path = Path(path)
    if path.is_file():
        extra = [path.with_name(pattern.format(stem=path.stem, name=path.name))
                 for pattern in COMPANIONS.get(path.suffix, ())]
        return [path, *sorted({p for p in extra if p.is_file() and p != path})]
    return sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())


def _arcname(p: Path, path: Path) -> str:
    return p.relative_to(path).as_posix() if path.is_dir() else p.name


def artifact_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in artifact_files(path))


class _Counter(io.RawIOBase):
    """A write-only sink that only counts bytes (so gzip sizes of big artifacts need no memory)."""

    def __init__(self) -> None:
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = memoryview(b).nbytes
        self.n += n
        return n


def gzip_bytes(path: Path, level: int = 9) -> int:
    """gzip size (level 9, no name, mtime 0) of the file, or of a deterministic tar of the folder."""
    path = Path(path)
    files = artifact_files(path)
    sink = _Counter()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=sink, mtime=0) as gz:
        if files == [path]:
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    gz.write(chunk)
        else:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for p in files:
                    info = tarfile.TarInfo(_arcname(p, path))
                    info.size = p.stat().st_size
                    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
                    with open(p, "rb") as f:
                        tar.addfile(info, f)
    return sink.n


def artifact_digest(path: Path) -> str:
    """sha256 of the artifact's relative file names and contents."""
    path = Path(path)
    h = hashlib.sha256()
    for p in artifact_files(path):
        h.update(f"{_arcname(p, path)}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def size_info(path: Path | None) -> dict:
    """bytes and gzip_bytes of an existing artifact (None values otherwise)."""
    if path is None or not Path(path).exists():
        return {"bytes": None, "gzip_bytes": None}
    return {"bytes": artifact_bytes(path), "gzip_bytes": gzip_bytes(path)}


# -- parameter counts ----------------------------------------------------------------------------

class _Tally:
    def __init__(self) -> None:
        self.params = 0
        self.nonzero = 0
        self.tensors = 0

    def add(self, arr, zero_point=None, axis: int | None = None) -> None:
        a = np.asarray(arr)
        if a.size <= 1:
            return  # scalars: scales, zero points, counters
        if zero_point is None and a.dtype.kind in "iub" and a.dtype not in (np.int8, np.uint8):
            return  # shapes, indices, masks (integer weights come with a zero point)
        self.params += int(a.size)
        if zero_point is None:
            self.nonzero += int(np.count_nonzero(a))
        else:
            zp = np.asarray(zero_point)
            if zp.size > 1 and axis is not None and zp.size == a.shape[axis]:
                shape = [1] * a.ndim
                shape[axis] = zp.size
                zp = zp.reshape(shape)
            elif zp.size > 1:
                zp = zp.reshape(-1)[0]
            self.nonzero += int(np.count_nonzero(a != zp))
        self.tensors += 1

    def result(self, source: str) -> dict | None:
        if not self.tensors:
            return None
        return {"params": self.params, "nonzero_params": self.nonzero, "params_source": source}


def _torch_tensor_to_numpy(t):
    import torch

    if getattr(t, "is_quantized", False):
        return t.dequantize().numpy()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.detach().cpu().numpy()


def _tally_torch_state(state, tally: _Tally) -> None:
    import torch

    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            if name.endswith("num_batches_tracked"):
                continue
            tally.add(_torch_tensor_to_numpy(value))
        elif isinstance(value, (tuple, list)):
            _tally_torch_state({f"{name}.{k}": v for k, v in enumerate(value)}, tally)
        elif isinstance(value, dict):
            _tally_torch_state(value, tally)


def _count_torch_checkpoint(path: Path) -> dict | None:
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        return None
    tally = _Tally()
    _tally_torch_state(state, tally)
    return tally.result("torch state dict")


def _count_torchscript(path: Path) -> dict | None:
    import torch

    tally = _Tally()
    _tally_torch_state(torch.jit.load(str(path), map_location="cpu").state_dict(), tally)
    return tally.result("TorchScript state dict")


def _count_torch_export(path: Path) -> dict | None:
    import torch

    ep = torch.export.load(str(path))
    tally = _Tally()
    _tally_torch_state(dict(ep.state_dict), tally)
    _tally_torch_state({k: v for k, v in getattr(ep, "constants", {}).items() if hasattr(v, "dtype")}, tally)
    return tally.result("torch.export state dict")


def _count_h5(path: Path) -> dict | None:
    import h5py

    tally = _Tally()
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f

        def visit(_name, obj):
            if isinstance(obj, h5py.Dataset):
                tally.add(obj[()])

        root.visititems(visit)
    return tally.result("Keras h5 weights")


def _count_saved_model(path: Path) -> dict | None:
    from pilotopt.frameworks import import_tf

    tf = import_tf()
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    tally = _Tally()
    for name in sorted(reader.get_variable_to_shape_map()):
        if (not name.endswith(".ATTRIBUTES/VARIABLE_VALUE") or "OPTIMIZER_SLOT" in name
                or name.startswith(("optimizer", "save_counter", "keras_api/metrics"))):
            continue
        tally.add(reader.get_tensor(name))
    return tally.result("SavedModel variables")


def _count_onnx(path: Path) -> dict | None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=True)
    tally = _Tally()
    dequantized = {}  # DequantizeLinear(x, scale[, zero_point]): x is a weight, zero at its zero point
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            dequantized[node.input[0]] = (node.input[2] if len(node.input) >= 3 else "", axis)
    inits = {init.name: init for init in model.graph.initializer}
    for name, init in inits.items():
        arr = numpy_helper.to_array(init)
        zp, axis = None, None
        if name in dequantized:
            zp_name, axis = dequantized[name]
            zp = numpy_helper.to_array(inits[zp_name]) if zp_name in inits else np.zeros(1, arr.dtype)
        tally.add(arr, zero_point=zp, axis=axis)
    return tally.result("ONNX initializers")


def _count_tflite(path: Path) -> dict | None:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    buf = path.read_bytes()
    model = schema.Model.GetRootAs(buf, 0)
    constant = set()
    if model.SubgraphsLength():
        sub = model.Subgraphs(0)
        for i in range(sub.TensorsLength()):
            b = sub.Tensors(i).Buffer()
            if 0 < b < model.BuffersLength():
                buffer = model.Buffers(b)
                if buffer.DataLength() > 0 or buffer.Size() > 0:
                    constant.add(i)
    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    tally = _Tally()
    for d in interp.get_tensor_details():
        if d["index"] not in constant:
            continue
        try:
            arr = interp.get_tensor(d["index"])
        except ValueError:
            continue
        q = d.get("quantization_parameters") or {}
        scales = np.asarray(q.get("scales", []))
        zps = np.asarray(q.get("zero_points", []))
        if arr.dtype.kind in "iu" and scales.size == 0:
            continue  # shapes and indices
        tally.add(arr, zero_point=zps if scales.size else None, axis=q.get("quantized_dimension"))
    return tally.result("TFLite constant tensors")


def _count_openvino(path: Path) -> dict | None:
    import openvino as ov

    xml = path if path.suffix == ".xml" else next(iter(sorted(path.glob("*.xml"))), None)
    if xml is None:
        return None
    model = ov.Core().read_model(str(xml))
    tally = _Tally()
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        et = op.get_output_element_type(0).get_type_name()
        if et in ("i64", "i32", "boolean", "u64", "u32"):
            continue
        try:
            arr = op.get_data()
        except Exception:  # noqa: BLE001 - packed low-bit types have no NumPy view
            continue
        tally.add(np.asarray(arr, dtype=np.float32) if arr.dtype.kind in "iu" else arr)
    return tally.result("OpenVINO constants")


def count_params(path: Path, runtime: str) -> dict | None:
    """{"params", "nonzero_params", "params_source"} read from the artifact, or None when the
    format is not one this function reads. Raises what the reading library raises."""
    path = Path(path)
    name = path.name
    if path.is_file():
        if name.endswith(".torchscript.pt") or runtime == "torchscript":
            return _count_torchscript(path)
        if path.suffix == ".pt2" or runtime == "torch_export":
            return _count_torch_export(path)
        if path.suffix in (".pt", ".pth"):
            return _count_torch_checkpoint(path)
        if path.suffix == ".h5":
            return _count_h5(path)
        if path.suffix == ".onnx":
            return _count_onnx(path)
        if path.suffix == ".tflite":
            return _count_tflite(path)
        if path.suffix == ".xml":
            return _count_openvino(path)
        return None
    if (path / "saved_model.pb").is_file() and (path / "variables").is_dir():
        return _count_saved_model(path)
    if runtime == "openvino" or any(path.glob("*.xml")):
        return _count_openvino(path)
    onnx_files = sorted(path.glob("*.onnx"))
    if onnx_files:
        return _count_onnx(onnx_files[0])
    return None


def params_from_record(record: dict | None) -> dict | None:
    """Counts the producer wrote into variant.json's record, if any."""
    record = record or {}
    params = next((record[k] for k in ("params", "num_params", "parameters") if isinstance(record.get(k), int)), None)
    if params is None:
        return None
    nonzero = next((record[k] for k in ("nonzero_params", "non_zero_params") if isinstance(record.get(k), int)), None)
    return {"params": params, "nonzero_params": nonzero, "params_source": "variant record"}
