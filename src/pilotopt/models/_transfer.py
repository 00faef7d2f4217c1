"""Copy weights from a Keras model to the torch model of the same architecture, layer by layer.

Layers are matched by name (the Keras layer name equals the last component of the torch
submodule's name: conv1, dense2, convlstm1, output, ...). Layouts:

* Conv2D kernel (kh, kw, in, out) -> Conv2d weight (out, in, kh, kw); bias as is.
* Dense kernel (in, out) -> Linear weight (out, in). A Dense fed by a Flatten of an image
  tensor (the first dense layer) also has its input rows reordered: Keras flattens NHWC in
  (h, w, c) order, the torch models flatten NCHW in (c, h, w) order.
* ConvLSTM2D kernel (k, k, in, 4F) and recurrent_kernel (k, k, F, 4F) -> the cell's single
  Conv2d weight (4F, in + F, k, k) (input channels first, then hidden, as the cell concatenates);
  bias (4F,) as is; the gate order (i, f, c, o) is the same.
* TimeDistributed layers contribute the weights of the layer they wrap.

Every weighted Keras layer must find its torch module with the same shapes, and every torch
parameter must be written, otherwise BadInputError says which layer disagrees.
"""

from __future__ import annotations

import numpy as np

from pilotopt.errors import BadInputError


def _keras_weighted_layers(keras_model):
    import tf_keras as keras

    for layer in keras_model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if inner.weights:
            yield layer.name, inner


def _torch_modules_by_name(torch_model) -> dict[str, list]:
    """{last component of the submodule name: [modules with that name]}."""
    found: dict[str, list] = {}
    for full_name, module in torch_model.named_modules():
        if full_name:
            found.setdefault(full_name.rsplit(".", 1)[-1], []).append(module)
    return found


def _flattened_image_shape(layer) -> tuple[int, int, int] | None:
    """(h, w, c) when `layer`'s input is a Flatten of an NHWC image tensor, else None."""
    import tf_keras as keras

    nodes = layer.inbound_nodes
    if len(nodes) != 1:
        return None
    source = nodes[0].inbound_layers
    if not isinstance(source, keras.layers.Flatten):
        return None
    shape = tuple(source.input_shape[1:])
    return shape if len(shape) == 3 else None


def _keras_to_torch_arrays(layer, module) -> dict[str, np.ndarray]:
    """{torch parameter name relative to `module`: array in torch layout} for one layer."""
    import tf_keras as keras

    if isinstance(layer, keras.layers.ConvLSTM2D):
        kernel, recurrent, bias = (w.numpy() for w in (layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias))
        weight = np.concatenate([kernel, recurrent], axis=2).transpose(3, 2, 0, 1)
        return {"cell.conv.weight": weight, "cell.conv.bias": bias}
    if isinstance(layer, keras.layers.Conv2D):
        out = {"weight": layer.kernel.numpy().transpose(3, 2, 0, 1)}
    elif isinstance(layer, keras.layers.Dense):
        kernel = layer.kernel.numpy()
        hwc = _flattened_image_shape(layer)
        if hwc is not None:  # rows in (h, w, c) order -> (c, h, w)
            h, w, c = hwc
            kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
        out = {"weight": kernel.T}
    else:
        raise BadInputError(f"keras_to_torch: no rule for layer {layer.name!r} ({type(layer).__name__})")
    if layer.use_bias:
        out["bias"] = layer.bias.numpy()
    return out


def keras_to_torch(keras_model, torch_model):
    """Load `keras_model`'s weights into `torch_model` (same registered architecture) in place
    and return `torch_model`."""
    import torch

    modules = _torch_modules_by_name(torch_model)
    written: set[int] = set()
    for name, layer in _keras_weighted_layers(keras_model):
        candidates = modules.get(name, [])
        if len(candidates) != 1:
            what = "no module" if not candidates else f"{len(candidates)} modules"
            raise BadInputError(f"keras_to_torch: the torch model has {what} named {name!r}")
        module = candidates[0]
        params = dict(module.named_parameters())
        for pname, array in _keras_to_torch_arrays(layer, module).items():
            target = params.get(pname)
            if target is None:
                raise BadInputError(f"keras_to_torch: torch module {name!r} has no parameter {pname!r}")
            if tuple(target.shape) != array.shape:
                raise BadInputError(
                    f"keras_to_torch: layer {name!r} {pname}: Keras gives {array.shape}, "
                    f"torch expects {tuple(target.shape)}"
                )
            with torch.no_grad():
                target.copy_(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)))
            written.add(id(target))
    missing = [n for n, p in torch_model.named_parameters() if id(p) not in written]
    if missing:
        raise BadInputError(f"keras_to_torch: no Keras weights for torch parameters {missing}")
    return torch_model
