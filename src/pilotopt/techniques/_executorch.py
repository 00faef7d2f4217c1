"""Lowering PyTorch models to ExecuTorch programs on the XNNPACK delegate: fp32 as exported
(`executorch_fp32`), or a PT2E graph converted with the XNNPACK quantizer (`torch_static`,
`torch_qat`, via `_pt2e`), so the int8 model RUNS int8 kernels (XNNPACK's qs8 convolutions and
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
