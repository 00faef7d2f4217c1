"""Shared by the torchao quantization techniques (torch_dynamic, torch_static, torch_qat,
torch_prune_quant): export with a dynamic batch, PT2E prepare (observers or fake-quant) with the x86
quantizer, calibration on TRAINING frames, conversion, re-export and save as a `.pt2` that the
`torch_export` runtime loads, and reading the int8 weights back out of a saved program.

PT2E's converted graph is the reference q/dq form (int8 weights + dequantize, activations quantized
and dequantized around fp32 conv/linear): it is exactly what the int8 kernels compute, and eager
execution of it is 7-8x SLOWER than fp32. So torch_static and torch_qat default to the `executorch`
backend: the XNNPACK quantizer (symmetric int8 per-channel weights, int8 activations) and the
converted graph lowered to ExecuTorch's XNNPACK delegate, which runs int8 kernels (`.pte`). The
`pt2` backend keeps the x86 quantizer's `.pt2` program (the `torch_export` runtime) for inspection
and for torch.compile users."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from pilotopt.techniques import _executorch
from pilotopt.techniques._settings import setting
from pilotopt.techniques._torch_fit import fine_tune

QUANTIZERS = {"executorch": "XNNPACKQuantizer (symmetric per-channel)",  # int8 weights and activations
              "pt2": "X86InductorQuantizer"}  # int8 per-channel symmetric weights, uint8 per-tensor activations
BACKENDS = tuple(QUANTIZERS)
QDQ_PROGRAM = "qdq.pt2"  # beside an executorch backend's .pte


def available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("torchao") is None:
        return False, "torchao is not installed (pip install torchao)"
    return True, ""


def torchao_version() -> str | None:
    import torchao

    return getattr(torchao, "__version__", None)


def example(ctx):
    """Two seeded uint8-valued frames of the model's input shape: batch 2, because export
    specializes a batch of 1 to a constant."""
    return ctx.torch.from_numpy(ctx.random_frames(2, seed=ctx.seed))


MAX_BATCH = 4096


def batch_dim():
    """The dynamic batch dimension every torch.export / ONNX export here declares."""
    import torch

    return torch.export.Dim("batch", min=1, max=MAX_BATCH)


def export(ctx, net, x):
    """torch.export of `net` (a module or GraphModule) with a dynamic batch."""
    return ctx.torch.export.export(net, (x,), dynamic_shapes=({0: batch_dim()},))


def backend_setting():
    """The `backend` setting of the PT2E techniques (declared once, for torch_static and torch_qat)."""
    return setting("executorch", "executorch: XNNPACK int8 kernels (.pte); pt2: q/dq reference program (.pt2)",
                   choices=BACKENDS)


def _quantizer(qat: bool, backend: str = "pt2"):
    if backend == "executorch":
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                              get_symmetric_quantization_config)

        return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)

    return X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config(is_qat=qat))


def prepare(ctx, net, x, qat: bool, backend: str = "pt2"):
    """Export `net` and insert observers (PTQ) or fake-quant modules (QAT). The result accepts
    `.train()` / `.eval()` so the shared fine-tune loop can drive it."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e

    ctx.torch.manual_seed(ctx.seed)
    graph = export(ctx, net, x).module()
    prepared = (prepare_qat_pt2e if qat else prepare_pt2e)(graph, _quantizer(qat, backend))
    return allow_exported_model_train_eval(prepared)


def calibrate(ctx, prepared, n: int, batch_size: int) -> int:
    """Run `n` TRAINING frames through the observers; returns how many were used."""
    torch = ctx.torch
    frames = ctx.train_frames(n)
    prepared.eval()
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            prepared(torch.from_numpy(frames[i: i + batch_size]))
    return int(len(frames))


def quant_modules(prepared, kind: str) -> list[str]:
    """Targets of the call_module nodes of the prepared graph that run an observer
    (`kind="observer"`) or fake-quant module (`"fake_quant"`), in graph order (two targets may name
    one module when the quantizer shares a spec)."""
    from torchao.quantization.pt2e import FakeQuantizeBase, ObserverBase

    cls = FakeQuantizeBase if kind == "fake_quant" else ObserverBase
    return [str(n.target) for n in prepared.graph.nodes
            if n.op == "call_module" and isinstance(prepared.get_submodule(str(n.target)), cls)]


def _drop_unused_attributes(gm) -> None:
    """convert_pt2e leaves the fp32 weights on the module although the graph now reads the int8
    copies; drop every parameter/buffer no get_attr node reads so they are not saved too."""
    gm.graph.eliminate_dead_code()
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    for name, _ in list(gm.named_parameters()) + list(gm.named_buffers()):
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(gm.get_submodule(owner) if owner else gm, attr)
    gm.delete_all_unused_submodules()
    gm.recompile()


def conv_feeds_batch_norm(graph) -> bool:
    """Whether a conv runs anywhere upstream of a BatchNorm in `graph` (so BN folding has work)."""
    from torchao.quantization.pt2e.utils import _is_bn_node

    for bn in (n for n in graph.nodes if _is_bn_node(n)):
        todo, seen = list(bn.all_input_nodes), set()
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "call_function" and "conv" in str(node.target):
                return True
            todo.extend(node.all_input_nodes)
    return False


@contextmanager
def _no_empty_bn_fold(prepared):
    """convert_pt2e folds each BatchNorm into the conv before it by matching 102 pattern graphs, each
    built with a torch.export (48 s on this machine) whether or not a conv feeds a BatchNorm. A
    DeepLearningStudio PilotNet's only BatchNorm normalizes the input, with no conv before it: then
    only the fold's own clean-up runs (the in-place counter updates of training-mode BatchNorms
    removed), and the patterns are not built."""
    from torchao.quantization.pt2e import quantize_pt2e

    fold = getattr(quantize_pt2e, "_fold_conv_bn_qat", None)
    if fold is None or conv_feeds_batch_norm(prepared.graph):
        yield
        return

    def clean_up(m):
        import torch

        for node in list(m.graph.nodes):
            if (node.target == torch.ops.aten.add_.Tensor and node.args[0].op == "get_attr" and node.args[1] == 1
                    and any("BatchNorm" in str(kind) for _, kind in node.meta.get("nn_module_stack", {}).values())):
                m.graph.erase_node(node)
        m.graph.eliminate_dead_code()
        m.recompile()
        return m

    quantize_pt2e._fold_conv_bn_qat = clean_up
    try:
        yield
    finally:
        quantize_pt2e._fold_conv_bn_qat = fold


def convert_and_save(ctx, prepared, x, name: str = "model.pt2", backend: str = "pt2"):
    """convert_pt2e (int8 weights folded into constants) and re-export with the dynamic batch; then
    torch.export.save into ctx.out (`pt2`), or lower to ExecuTorch's XNNPACK delegate (`executorch`,
    batch 1). Returns (artifact name, the converted ExportedProgram, details of the lowering)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    with _no_empty_bn_fold(prepared):
        converted = convert_pt2e(prepared)
    _drop_unused_attributes(converted)
    program = export(ctx, converted, x)
    if backend == "executorch":
        with ctx.torch.no_grad():
            lowered = _executorch.lower(ctx, converted, (x[:1],), {})
        # the same int8 model as a q/dq program beside the .pte: what `pilotopt deploy` replays in
        # plain TorchScript for Behavior Metrics, whose torch brain cannot load a .pte
        save(ctx, program, QDQ_PROGRAM)
        return lowered.artifact, program, {**lowered.record, "qdq_program": QDQ_PROGRAM}
    name, program = save(ctx, program, name)
    return name, program, {}


def save(ctx, program, name: str = "model.pt2"):
    """torch.export.save without the example inputs: two input frames (317 KB) would otherwise be
    stored in every artifact and swamp the size of a small quantized model."""
    program.example_inputs = None
    ctx.torch.export.save(program, str(ctx.out / name))
    return name, program


# -- reading int8 weights back ---------------------------------------------------------------------
def _int8_of(t):
    """The int8 storage of `t`: itself, or a tensor subclass' int8 inner tensor (torchao Int8Tensor)."""
    import torch

    if not isinstance(t, torch.Tensor):
        return None
    flatten = getattr(t, "__tensor_flatten__", None)
    if flatten is not None:  # the largest int8 inner tensor is the data (zero points are int8 too)
        inner = [getattr(t, n, None) for n in flatten()[0]]
        inner = [i for i in inner if isinstance(i, torch.Tensor) and i.dtype == torch.int8]
        return max(inner, key=lambda i: i.numel()) if inner else None
    return t if t.dtype == torch.int8 else None


def _placeholder_tensors(program) -> dict:
    """Graph placeholder name -> the parameter / buffer / constant tensor it stands for."""
    sig, out = program.graph_signature, {}
    for ph, key in {**sig.inputs_to_parameters, **sig.inputs_to_buffers}.items():
        out[ph] = program.state_dict.get(key, program.constants.get(key))
    for ph, key in sig.inputs_to_lifted_tensor_constants.items():
        out[ph] = program.constants.get(key)
    return out


def int8_weights(program) -> dict[str, "object"]:
    """Layer name -> int8 weight tensor of an ExportedProgram: torchao subclass weights
    (`<layer>.weight` holding int8 data) and PT2E weights (conv/linear whose weight is the
    dequantize of an int8 constant; the layer named from the node's module stack)."""
    import torch

    out = {}
    for key, t in program.state_dict.items():
        q = _int8_of(t)
        if q is not None and key.endswith(".weight") and q is not t:
            out[key[: -len(".weight")]] = q
    tensors = _placeholder_tensors(program)
    layer_ops = (torch.ops.aten.conv2d.default, torch.ops.aten.linear.default)
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target not in layer_ops or len(node.args) < 2:
            continue
        w = node.args[1]
        if not (isinstance(w, torch.fx.Node) and w.op == "call_function" and "dequantize" in str(w.target)):
            continue
        src = w.args[0]
        q = _int8_of(tensors.get(src.name)) if isinstance(src, torch.fx.Node) else None
        if q is not None:
            stack = list((node.meta.get("nn_module_stack") or {}).values())
            out[stack[-1][0] if stack else node.name] = q
    return out


def graph_ops(program) -> dict[str, int]:
    """How often each quantization-related op (quantize / dequantize / choose_qparams / _int_mm)
    occurs in the program's graph."""
    counts: dict[str, int] = {}
    for node in program.graph.nodes:
        name = str(node.target)
        if node.op == "call_function" and any(k in name for k in ("quant", "qparams", "_int_mm")):
            counts[name] = counts.get(name, 0) + 1
    return counts


def int8_record(program) -> dict:
    """What the variant record says about a quantized program's int8 weights."""
    weights = int8_weights(program)
    zeros = {k: float((v == 0).float().mean()) for k, v in weights.items()}
    total = sum(int(v.numel()) for v in weights.values())
    return {"int8_weight_layers": sorted(weights), "int8_weight_params": total,
            "int8_weight_sparsity_per_layer": zeros,
            "int8_weight_sparsity_overall": (sum(int((v == 0).sum()) for v in weights.values()) / total
                                             if total else 0.0),
            "quant_graph_ops": graph_ops(program)}


# -- quantization-aware training -------------------------------------------------------------------
def qat(ctx, net, settings, after_step: Callable[[object], None] | None = None, backend: str = "pt2"):
    """prepare_qat_pt2e, fine-tune on the TRAINING split with the fake-quant modules in the graph
    (their enabled calls are counted: steps x fake-quant nodes shows every forward ran them), measure
    what fake-quant does to the outputs, convert and save. `after_step(prepared)` runs after each optimizer step.
    Returns (artifact name, record, the converted program)."""
    x = example(ctx)
    prepared = prepare(ctx, net, x, qat=True, backend=backend)
    fq_nodes = quant_modules(prepared, "fake_quant")
    if not fq_nodes:
        raise RuntimeError("prepare_qat_pt2e inserted no fake-quant modules: nothing would be quantized")
    # a shared quantization spec gives two graph nodes one module: hook each module once
    modules = list({id(m): m for m in (prepared.get_submodule(n) for n in fq_nodes)}.values())
    calls = {"n": 0}

    def count(module, inputs, output):
        calls["n"] += int(bool(module.fake_quant_enabled[0]))

    hooks = [m.register_forward_hook(count) for m in modules]
    step = (lambda: after_step(prepared)) if after_step is not None else None
    fit = fine_tune(ctx, prepared, settings, after_step=step)
    for h in hooks:
        h.remove()
    effect = _fake_quant_effect(ctx, prepared, x)
    artifact, program, lowering = convert_and_save(ctx, prepared, x, backend=backend)
    kinds: dict[str, int] = {}
    for m in modules:
        kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
    return artifact, {**fit, "fake_quant_nodes": len(fq_nodes), "fake_quant_node_targets": fq_nodes,
                      "fake_quant_modules": len(modules), "fake_quant_types": kinds,
                      "fake_quant_calls_during_training": calls["n"], "fake_quant_effect_max_abs": effect,
                      **quant_info(backend), **int8_record(program), **lowering}, program


def _fake_quant_effect(ctx, prepared, x) -> float:
    """max |output with fake-quant - output without| on `x` with the observers frozen: > 0 shows
    the training graph really quantized (a no-op "QAT" gives 0)."""
    from torchao.quantization.pt2e import disable_fake_quant, disable_observer, enable_fake_quant

    torch = ctx.torch
    prepared.apply(disable_observer)
    with torch.no_grad():
        on = prepared(x)
        prepared.apply(disable_fake_quant)
        off = prepared(x)
    prepared.apply(enable_fake_quant)
    return float((on - off).abs().max())


def quant_info(backend: str = "pt2") -> dict:
    return {"quantizer": QUANTIZERS[backend], "backend": backend, "torchao": torchao_version(),
            "precision": "int8"}


def ptq(ctx, net, calibration_frames: int, batch_size: int, backend: str = "pt2"):
    """Static post-training quantization: prepare_pt2e, calibrate on TRAINING frames, convert, save.
    Returns (artifact name, record, the converted program)."""
    x = example(ctx)
    prepared = prepare(ctx, net, x, qat=False, backend=backend)
    observers = quant_modules(prepared, "observer")
    if not observers:
        raise RuntimeError("prepare_pt2e inserted no observers: nothing would be quantized")
    used = calibrate(ctx, prepared, calibration_frames, batch_size)
    artifact, program, lowering = convert_and_save(ctx, prepared, x, backend=backend)
    return artifact, {"observers": len(observers), "calibration_frames": used, **quant_info(backend),
                      **int8_record(program), **lowering}, program
