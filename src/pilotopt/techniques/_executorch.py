"""Lowering PyTorch models to ExecuTorch programs on the XNNPACK delegate: fp32 as exported, or
int8 through PT2E with the XNNPACK quantizer (symmetric int8 per-channel weights, int8 activations
calibrated on TRAINING frames), so the int8 model RUNS int8 kernels (XNNPACK's qs8 convolutions and
fully connected layers) instead of fp32 q/dq around fp32 ops. Batch 1: what a car runs."""

from __future__ import annotations

from pilotopt.techniques._core import Result, TechniqueContext

ARTIFACT = "model.pte"


def available() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("executorch") is None:
        return False, "executorch is not installed (pip install executorch==1.5.1)"
    return True, ""


def _example(ctx: TechniqueContext):
    return (ctx.torch.from_numpy(ctx.random_frames(1, seed=ctx.seed)),)


def lower(ctx: TechniqueContext, module, example, details: dict) -> Result:
    """Export `module` (batch 1), lower it to XNNPACK, write model.pte; the record names the
    delegated share of the graph."""
    import executorch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch = ctx.torch
    program = torch.export.export(module, example)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    graph = edge.exported_program().graph_module.graph
    calls = [n for n in graph.nodes if n.op == "call_function"]
    delegated = sum("executorch_call_delegate" in str(n.target) for n in calls)
    left = sorted({str(n.target).split(".")[-2] if "." in str(n.target) else str(n.target) for n in calls
                   if "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)})
    (ctx.out / ARTIFACT).write_bytes(edge.to_executorch().buffer)
    return Result(ARTIFACT, {**details, "executorch": getattr(executorch, "__version__", "?"), "delegate": "XNNPACK",
                             "delegate_calls": delegated, "ops_outside_delegate": left, "batch": 1})


def input_module(ctx: TechniqueContext):
    """The input model as an nn.Module (a pilotopt checkpoint or state dict)."""
    return ctx.torch_model()


def fp32(ctx: TechniqueContext) -> Result:
    net = input_module(ctx)
    with ctx.torch.no_grad():
        return lower(ctx, net, _example(ctx), {"precision": "fp32", "model": ctx.torch_model_name})


def int8(ctx: TechniqueContext, calibration_frames: int, per_channel: bool) -> Result:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    torch = ctx.torch
    net = input_module(ctx)
    example = _example(ctx)
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
    prepared = prepare_pt2e(torch.export.export(net, example).module(), quantizer)
    frames = ctx.train_frames(calibration_frames)
    with torch.no_grad():
        for i in range(len(frames)):
            prepared(torch.from_numpy(frames[i: i + 1]))
        converted = convert_pt2e(prepared)
    return lower(ctx, converted, example, {"precision": "int8", "model": ctx.torch_model_name,
                                           "quantizer": "XNNPACKQuantizer (symmetric)", "per_channel": per_channel,
                                           "calibration_frames": int(len(frames)), "calibration_from": "train"})
