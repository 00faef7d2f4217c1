"""TorchScript for Behavior Metrics' torch brain: a traced, frozen module that takes what the brain
feeds (torchvision `ToTensor()` of the uint8 RGB crop: NCHW float32 p / 255, batch 1) and returns
pilotopt-normalized (v, w), with the model's own input contract and output map inside.

PT2E-quantized programs (torchao `convert_pt2e`, a torch.export program's `.module()`) hold
`quantized_decomposed.*` ops, which a plain `torch.jit.load` cannot resolve without the library that
registers them; `to_core_ops` rewrites each into the core aten ops its reference implementation
(`torch/ao/quantization/fx/_decomposed.py`) runs, op for op, and folds those whose inputs are all
constants (the int8 weights and their dequantize) into float32 constants computed by the op itself,
so the values are bit-identical and the result runs with plain torch."""

from __future__ import annotations

import copy
import json
import operator
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pilotopt.errors import BadInputError

QDQ_NAMESPACES = ("quantized_decomposed", "torchao")
MAX_TRACE_DIFF = 1e-4  # the traced module vs the eager one on the example frames (a sanity bound)


# -- PT2E q/dq ops -> core aten -----------------------------------------------------------------
def _namespace(node) -> str | None:
    """The op namespace of a call_function node ("aten", "quantized_decomposed", ...) or None."""
    if node.op != "call_function":
        return None
    ns = getattr(node.target, "namespace", None)  # OpOverload / OpOverloadPacket
    if ns is None:
        name = getattr(getattr(node.target, "_schema", None), "name", "") or ""
        ns = name.split("::")[0] if "::" in name else None
    return ns


def _op_name(node) -> str:
    """'quantize_per_tensor.default' for torch.ops.quantized_decomposed.quantize_per_tensor.default."""
    target = node.target
    packet = getattr(target, "_overloadpacket", None)
    base = getattr(packet, "__name__", None) or str(target).split(".")[-2]
    overload = getattr(target, "_overloadname", "default")
    return f"{base.split('.')[-1]}.{overload}"


def _fetch(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _is_const(a) -> bool:
    import torch

    return not isinstance(a, torch.fx.Node) or a.op == "get_attr"


def _materialize(gm, a):
    import torch

    if isinstance(a, torch.fx.Node):
        return _fetch(gm, str(a.target))
    if isinstance(a, (list, tuple)):
        return type(a)(_materialize(gm, x) for x in a)
    return a


def _dtype_of(node):
    return getattr(_meta_val(node), "dtype", None)


class _Rewriter:
    """Inserts aten call_function nodes before `anchor` in `gm.graph`."""

    def __init__(self, gm, anchor):
        import torch

        self.gm, self.g, self.anchor, self.aten = gm, gm.graph, anchor, torch.ops.aten
        self.torch = torch

    def call(self, op, *args, **kwargs):
        with self.g.inserting_before(self.anchor):
            return self.g.call_function(op, tuple(args), kwargs)

    def scalar_or_tensor(self, a, as_type):
        """A get_attr / literal argument as the Python scalar the reference's `.item()` gives, or
        (a computed tensor) the node reshaped to 0-dim so it broadcasts like a scalar."""
        if _is_const(a):
            v = _materialize(self.gm, a)
            return as_type(v.item() if isinstance(v, self.torch.Tensor) else v), True
        return self.call(self.aten.reshape.default, a, []), False

    def to_float32_if_needed(self, x):
        dt = _dtype_of(x) if isinstance(x, self.torch.fx.Node) else None
        if dt == self.torch.float32:
            return x
        # the reference converts float16 / bfloat16 to float32 first (a no-op for float32)
        return self.call(self.aten.to.dtype, x, self.torch.float32)

    def rank(self, x) -> int | None:
        val = _meta_val(x)
        if val is None and isinstance(x, self.torch.fx.Node) and x.op == "get_attr":
            val = _fetch(self.gm, str(x.target))
        return getattr(val, "ndim", None)

    def per_channel(self, x, axis: int, fn):
        """fn(x_moved, view) where `view(t)` shapes a (C,) tensor to broadcast along `axis` of x:
        a (C, 1, ...) view when x's rank is known, else x is moved so that `axis` is last (the
        values are the same elementwise either way: the reference permutes `axis` to 0)."""
        ndim = self.rank(x)
        if ndim is not None:
            shape = [1] * ndim
            shape[axis % ndim] = -1
            return fn(x, lambda t: self.call(self.aten.view.default, t, shape))
        moved = self.call(self.aten.movedim.int, x, axis, -1)
        out = fn(moved, lambda t: t)
        return self.call(self.aten.movedim.int, out, -1, axis)

    # each returns the node that replaces the op's (first) output
    def quantize_per_tensor(self, x, scale, zp, qmin, qmax, dtype):
        x = self.to_float32_if_needed(x)
        s, s_const = self.scalar_or_tensor(scale, float)
        z, _ = self.scalar_or_tensor(zp, int)
        lo, lo_const = self.scalar_or_tensor(qmin, int)
        hi, hi_const = self.scalar_or_tensor(qmax, int)
        if s_const:
            inv = 1.0 / s  # Python (double) division, as the reference; the mul casts it to float32
        else:
            inv = self.call(self.aten.reciprocal.default, self.call(self.aten.to.dtype, s, self.torch.float64))
        r = self.call(self.aten.round.default, self.call(self.aten.mul.Tensor, x, inv))
        r = self.call(self.aten.add.Tensor, r, z)
        if lo_const and hi_const:
            r = self.call(self.aten.clamp.default, r, lo, hi)
        else:
            r = self.call(self.aten.clamp.Tensor, r, lo, hi)
        return self.call(self.aten.to.dtype, r, dtype)

    def dequantize_per_tensor(self, x, scale, zp, qmin, qmax, dtype, out_dtype=None):
        s, _ = self.scalar_or_tensor(scale, float)
        z, _ = self.scalar_or_tensor(zp, int)
        t = self.call(self.aten.to.dtype, x, out_dtype or self.torch.float32)
        return self.call(self.aten.mul.Tensor, self.call(self.aten.sub.Tensor, t, z), s)

    def quantize_per_channel(self, x, scales, zps, axis, qmin, qmax, dtype):
        aten = self.aten

        def body(x, view):
            x = self.to_float32_if_needed(x)
            inv = self.call(aten.mul.Tensor, self.call(aten.reciprocal.default, view(scales)), 1.0)  # 1.0 / scales
            r = self.call(aten.round.default, self.call(aten.mul.Tensor, x, inv))
            return self.call(aten.clamp.default, self.call(aten.add.Tensor, r, view(zps)), qmin, qmax)

        return self.call(aten.to.dtype, self.per_channel(x, axis, body), dtype)

    def dequantize_per_channel(self, x, scales, zps, axis, qmin, qmax, dtype, out_dtype=None):
        aten = self.aten

        def body(x, view):  # (x - zero_points) * scales: int8 - int64 in integers, then * float32
            t = x if zps is None else self.call(aten.sub.Tensor, x, view(zps))
            return self.call(aten.to.dtype, self.call(aten.mul.Tensor, t, view(scales)),
                             out_dtype or self.torch.float32)

        return self.per_channel(x, axis, body)

    def choose_qparams(self, x, qmin, qmax, eps, dtype, symmetric: bool):
        """(scale float64 (1,), zero point int64 (1,)) as determine_qparams computes them for a
        per-tensor affine / symmetric qscheme (without its guard for an empty or non-finite input,
        which returns scale 1, zero point 0)."""
        aten, torch = self.aten, self.torch
        mn = self.call(aten.amin.default, x)
        mx = self.call(aten.amax.default, x)
        zero = self.call(aten.zeros_like.default, mn)
        mn_neg = self.call(aten.minimum.default, mn, zero)
        mx_pos = self.call(aten.maximum.default, mx, self.call(aten.zeros_like.default, mx))
        eps_t = self.call(aten.scalar_tensor.default, float(np.float32(eps)), dtype=torch.float32)
        if symmetric:
            mx_pos = self.call(aten.maximum.default, self.call(aten.neg.default, mn_neg), mx_pos)
            scale = self.call(aten.div.Tensor, mx_pos, float(qmax - qmin) / 2)
            scale = self.call(aten.maximum.default, scale, eps_t)
            zp_value = 128 if dtype in (torch.uint8, torch.quint8) else 0
            zp = self.call(aten.full.default, [1], zp_value, dtype=torch.int64)
        else:
            scale = self.call(aten.div.Tensor, self.call(aten.sub.Tensor, mx_pos, mn_neg), float(qmax - qmin))
            scale = self.call(aten.maximum.default, scale, eps_t)
            q = self.call(aten.to.dtype, self.call(aten.round.default, self.call(aten.div.Tensor, mn_neg, scale)),
                          torch.int32)
            zp = self.call(aten.rsub.Scalar, q, qmin)  # quant_min - round(min_neg / scale).to(int)
            zp = self.call(aten.clamp.default, zp, qmin, qmax)
            zp = self.call(aten.to.dtype, self.call(aten.reshape.default, zp, [1]), torch.int64)
        scale = self.call(aten.to.dtype, self.call(aten.reshape.default, scale, [1]), torch.float64)
        return scale, zp


def _meta_val(node):
    return node.meta.get("val") if hasattr(node, "meta") else None


_QUANTIZE = ("quantize_per_tensor.default", "quantize_per_tensor.tensor", "quantize_per_tensor.tensor2")
_DEQUANTIZE = ("dequantize_per_tensor.default", "dequantize_per_tensor.tensor", "dequantize_per_tensor.tensor2")


def to_core_ops(gm, *, fold_constants: bool = True, inplace: bool = False):
    """The GraphModule with every `quantized_decomposed.*` op rewritten into the core aten ops its
    reference implementation computes (same values, bit for bit), export's `_guards_fn` input
    check dropped, and -- with `fold_constants` -- every q/dq op whose tensor inputs are all
    constants (int8 weight + dequantize) replaced by the constant the op itself computes.

    Raises BadInputError for a q/dq op this cannot rewrite (a `torchao.*` op on activations)."""
    import torch

    if not isinstance(gm, torch.fx.GraphModule):
        raise BadInputError(f"to_core_ops needs a torch.fx GraphModule, got {type(gm).__name__}")
    if not inplace:
        gm = copy.deepcopy(gm)
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and str(node.target) == "_guards_fn" and not node.users:
            graph.erase_node(node)
    folded = 0
    for node in list(graph.nodes):
        if _namespace(node) not in QDQ_NAMESPACES:
            continue
        flat = list(node.args) + list(node.kwargs.values())
        if fold_constants and all(_is_const(a) for a in _flatten(flat)) and _returns_tensor(node):
            with torch.no_grad():
                value = node.target(*_materialize(gm, node.args), **_materialize(gm, dict(node.kwargs)))
            name = f"_pilotopt_folded_{folded}"
            folded += 1
            gm.register_buffer(name, value.detach().clone())
            with graph.inserting_before(node):
                const = graph.get_attr(name)
            const.meta.update(node.meta)
            node.replace_all_uses_with(const)
            graph.erase_node(node)
            continue
        _rewrite(gm, node)
    graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    _drop_unused_attributes(gm)
    graph.lint()
    gm.recompile()
    left = sorted({str(n.target) for n in graph.nodes if _namespace(n) in QDQ_NAMESPACES})
    if left:
        raise BadInputError(f"the graph still holds {', '.join(left)} after the rewrite; this op has no core-aten "
                            "form here, so the TorchScript would need torchao to load")
    return gm


def _flatten(items):
    for a in items:
        if isinstance(a, (list, tuple)):
            yield from _flatten(a)
        elif isinstance(a, dict):
            yield from _flatten(list(a.values()))
        else:
            yield a


def _returns_tensor(node) -> bool:
    returns = getattr(getattr(node.target, "_schema", None), "returns", None)
    return returns is not None and len(returns) == 1


def _rewrite(gm, node) -> None:
    import torch

    name = _op_name(node)
    r = _Rewriter(gm, node)
    args, kw = list(node.args), dict(node.kwargs)
    if name in _QUANTIZE:
        new = r.quantize_per_tensor(*args[:6])
    elif name in _DEQUANTIZE:
        new = r.dequantize_per_tensor(*args[:6], out_dtype=kw.get("out_dtype", args[6] if len(args) > 6 else None))
    elif name == "quantize_per_channel.default":
        new = r.quantize_per_channel(*args[:7])
    elif name == "dequantize_per_channel.default":
        new = r.dequantize_per_channel(*args[:7], out_dtype=kw.get("out_dtype", args[7] if len(args) > 7 else None))
    elif name == "convert_element_type.no_fuse":
        new = r.call(torch.ops.prims.convert_element_type.default, args[0], args[1])
    elif name in ("choose_qparams.tensor", "choose_qparams_symmetric.tensor"):
        scale, zp = r.choose_qparams(*args[:5], symmetric=name.startswith("choose_qparams_symmetric"))
        for user in list(node.users):
            if user.op != "call_function" or user.target is not operator.getitem:
                raise BadInputError(f"{node.target} is used other than through its two outputs; cannot rewrite it")
            user.replace_all_uses_with(scale if user.args[1] == 0 else zp)
            gm.graph.erase_node(user)
        gm.graph.erase_node(node)
        return
    else:
        raise BadInputError(f"{node.target} on a non-constant input has no core-aten rewrite here (supported: "
                            "quantized_decomposed quantize/dequantize per tensor and per channel, choose_qparams)")
    new.meta.update(node.meta)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)


def _drop_unused_attributes(gm) -> None:
    """Drop the parameters, buffers and plain tensor attributes of `gm` itself that no get_attr
    node reads any more (the int8 weights and qparams once folded), so they are not traced along."""
    import torch

    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    top = dict(gm.named_parameters(recurse=False)) | dict(gm.named_buffers(recurse=False))
    plain = {k: v for k, v in vars(gm).items() if isinstance(v, torch.Tensor) and not k.startswith("__")}
    for name in list(top) + list(plain):
        if name not in used and hasattr(gm, name):
            delattr(gm, name)


# -- Behavior Metrics' torch brain ----------------------------------------------------------------
def _bm_module(model, contract):
    import torch

    class BMPilot(torch.nn.Module):
        """(N, 3, H, W) float32 p / 255 (torchvision ToTensor of the RGB crop) -> (N, 2)
        pilotopt-normalized (v, w), the model's input contract and output map inside."""

        def __init__(self):
            super().__init__()
            self.model = model
            self.bgr = contract.channels == "bgr"
            self.nhwc = contract.layout == "nhwc"
            self.scaled = not (contract.pixel_scale == 1.0 and tuple(contract.mean) == (0.0, 0.0, 0.0)
                               and tuple(contract.std) == (1.0, 1.0, 1.0))
            self.pixel_scale = float(contract.pixel_scale)
            shape = (1, 1, 1, 3) if self.nhwc else (1, 3, 1, 1)
            self.register_buffer("mean", torch.tensor(np.asarray(contract.mean, np.float32)).reshape(shape))
            self.register_buffer("std", torch.tensor(np.asarray(contract.std, np.float32)).reshape(shape))
            out = contract.outputs
            self.identity = bool(out.identity)
            a, b = out._affine()  # pilotopt-normalized = a * y[[v_index, w_index]] + b
            self.order = [int(out.v_index), int(out.w_index)]
            self.register_buffer("a", torch.tensor(np.asarray(a, np.float64)))
            self.register_buffer("b", torch.tensor(np.asarray(b, np.float64)))

        def forward(self, x):
            p = torch.round(x * 255.0)  # ToTensor's p / 255 back to the integer pixels
            if self.bgr:
                p = torch.flip(p, [1])
            if self.nhwc:
                p = p.permute(0, 2, 3, 1).contiguous()
            if self.scaled:  # as the edge package's encode_pixels: (x * pixel_scale - mean) / std, float32
                p = (p * self.pixel_scale - self.mean) / self.std
            y = self.model(p)
            if isinstance(y, (tuple, list)):
                y = y[0]
            if self.identity:
                return y
            # as OutputMap.to_normalized: float32 outputs times float64 a, b, back to float32
            return (y[:, self.order].to(torch.float64) * self.a + self.b).to(torch.float32)

    m = BMPilot()
    m.training = False  # not .eval(): an exported program's module refuses train/eval switching
    return m


def bm_input(frames) -> "torch.Tensor":
    """uint8 RGB frames (N, H, W, 3) -> what Behavior Metrics' torch brain feeds: torchvision
    `ToTensor()` of each, NCHW float32 p / 255 (computed as ToTensor does: float, then / 255)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.uint8))
    return t.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)


def bm_torchscript(module, contract, example_frames=None):
    """A traced, frozen TorchScript module for Behavior Metrics' torch brain: input (N, 3, H, W)
    float32 p / 255 (ToTensor of the uint8 RGB crop), output (N, 2) float32 pilotopt-normalized
    [v, w] (BM applies v = 17.5 q + 6.5, w = 14.2 q - 7.1). Inside: p = round(x * 255), the
    contract's channels / layout / scaling, `module`, the contract's output map to physical and back
    to pilotopt-normalized. `module` is an nn.Module in eval mode, an FX GraphModule (a PT2E program's
    `.module()`: its q/dq ops are rewritten with `to_core_ops`) or an ExportedProgram, taking the
    contract's input. `example_frames`: uint8 RGB frames (N, H, W, 3) to trace with (default two
    seeded random frames of the contract's size). Raises BadInputError (one line) when the traced
    module does not reproduce the eager one."""
    import torch

    if isinstance(module, torch.export.ExportedProgram):
        module = module.module()
    if isinstance(module, torch.fx.GraphModule):
        module = to_core_ops(module)  # q/dq ops to core aten; drops export's _guards_fn input check
    elif isinstance(module, torch.nn.Module):
        module.eval()
    else:
        raise BadInputError(f"bm_torchscript needs a torch.nn.Module, GraphModule or ExportedProgram, "
                            f"got {type(module).__name__}")
    g = contract.geometry
    if example_frames is None:
        example_frames = np.random.default_rng(0).integers(0, 256, (2, g.height, g.width, 3), dtype=np.uint8)
    frames = np.asarray(example_frames)
    if frames.ndim != 4 or frames.shape[1:] != (g.height, g.width, 3):
        raise BadInputError(f"example frames must be (N, {g.height}, {g.width}, 3) uint8 RGB, got {frames.shape}")
    wrapper = _bm_module(module, contract)
    x = bm_input(frames)
    with torch.no_grad():
        eager = wrapper(x)
        traced = torch.jit.trace(wrapper, (x,), check_trace=False)
    traced.eval()
    try:
        scripted = torch.jit.freeze(traced, optimize_numerics=False)
    except Exception:  # noqa: BLE001 - freezing is an optimization; the traced module is frozen in behaviour
        scripted = traced
    _check_graph(scripted)
    with torch.no_grad():
        for batch in (x, x[:1]):
            ref = eager if batch is x else wrapper(batch)
            for train in (False, True):  # BM never calls .eval(): train mode must change nothing
                scripted.train(train)
                got = scripted(batch)
                diff = float((got - ref).abs().max())
                if got.shape != ref.shape or not diff <= MAX_TRACE_DIFF:
                    raise BadInputError(f"the traced TorchScript differs from the model by {diff:.3g} on a batch of "
                                        f"{len(batch)} (train mode {train}); the model's forward depends on the batch "
                                        "size or on Python values the trace cannot record")
    scripted.train(False)
    return scripted


def _check_graph(scripted) -> None:
    kinds = {n.kind() for n in scripted.inlined_graph.nodes()} if hasattr(scripted, "inlined_graph") else set()
    bad = sorted(k for k in kinds if k.split("::")[0] in QDQ_NAMESPACES)
    if bad:
        raise BadInputError(f"the TorchScript still calls {', '.join(bad)}; plain torch.jit.load could not run it")


_PLAIN_LOAD = r"""
import json, sys
import torch
path, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
m = torch.jit.load(path)
x = torch.load(inp)
ys = []
with torch.no_grad():
    for train in (True, True, False, True):  # BM never calls .eval(); several calls: the profiling executor
        m.train(train)
        ys.append(m(x))
torch.save(ys[-1], out)
loaded = sorted(k for k in ("torchao", "executorch", "pilotopt") if k in sys.modules)
print(json.dumps({"spread": max(float((y - ys[0]).abs().max()) for y in ys), "shape": list(ys[-1].shape),
                  "dtype": str(ys[-1].dtype), "loaded": loaded, "torch": torch.__version__}))
"""


def check_loads_plain(path, x, timeout: float = 120.0) -> dict:
    """Prove that a fresh `python -c` process that imports only torch can `torch.jit.load` the file
    at `path` and run it on the tensor `x` (e.g. `bm_input(frames)`), in train and eval mode, several
    calls. Returns {"output": its output, "spread": max difference between its repeated calls,
    "shape", "dtype", "torch": version, "loaded": which of torchao / executorch / pilotopt were in
    that process' sys.modules afterwards (a file that needs none of them: [])}. Raises BadInputError
    (one line) when the process fails (e.g. an op only torchao registers)."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "x.pt", Path(tmp) / "y.pt"
        torch.save(x.detach().cpu(), inp)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        proc = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, str(path), str(inp), str(out)],
                              capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or ["no output"]
            raise BadInputError(f"a plain-torch process could not load and run {Path(path).name}: {lines[-1].strip()}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        info["output"] = torch.load(out)
    return info
