"""`torch_to_keras`: a PyTorch model of a registered architecture as its Keras twin, the weights
copied layer by layer (a transpose or a reorder each, no arithmetic: pilotopt.models._transfer).

Why: LiteRT runs small models with the least fixed cost per call here (XNNPACK), and the LiteRT
techniques start from Keras, while the maintained PyTorch-to-LiteRT converter (litert-torch) does
not install with the pinned stack. With this conversion a PyTorch pass can end in LiteRT:
`torch_distill>tflite_fp32` inserts it by itself (the only conversion that bridges a checkpoint to
a Keras model). Ending a chain, it is followed by `tflite_fp32`, so alone it is the PyTorch
baseline in LiteRT."""

from __future__ import annotations

from pilotopt.errors import BadInputError, one_line
from pilotopt.models import get_model_spec, torch_to_keras
from pilotopt.techniques import _tfmot_fit
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique


def keras_twin(ctx: TechniqueContext):
    """The Keras model of the input checkpoint's registered architecture, holding its weights."""
    name = ctx.torch_model_name
    try:
        spec = get_model_spec(name)
    except BadInputError:
        raise BadInputError(f"torch_to_keras needs a registered architecture with a Keras twin; '{name}' is "
                            "not registered (see `pilotopt list models`)") from None
    net = ctx.torch_model()
    ctx.tf  # noqa: B018 - import TF with the run's thread settings before Keras builds anything
    try:
        model = spec.build_keras(seed=ctx.seed)
    except NotImplementedError:
        raise BadInputError(f"torch_to_keras: architecture '{name}' has no Keras twin; export it to ONNX "
                            "instead (onnx_fp32)") from None
    if tuple(model.input_shape[1:]) != tuple(ctx.sample_shape):
        raise BadInputError(f"torch_to_keras: the Keras twin of '{name}' takes {tuple(model.input_shape[1:])}, "
                            f"the model's input contract gives {tuple(ctx.sample_shape)}; export it to ONNX "
                            "instead (onnx_fp32)")
    try:
        torch_to_keras(net, model)
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a twin whose layers do not line up
        raise BadInputError(f"torch_to_keras: cannot copy the weights of '{name}': {one_line(exc, limit=200)}") from None
    return model, name


@register_technique("torch_to_keras", conversion=True, framework=TORCH, runtime="keras", finish="tflite_fp32",
                    order=104, tolerance=1e-4,
                    description="the PyTorch model as its registered Keras twin (weights copied exactly), "
                                "so LiteRT techniques can follow a PyTorch pass")
def apply(ctx: TechniqueContext) -> Result:
    model, name = keras_twin(ctx)
    return _tfmot_fit.save_keras(ctx, model, {"model": name, "keras_params": int(model.count_params()),
                                              "transfer": "layer by layer (pilotopt.models.torch_to_keras)"})
