"""Copy weights between a Keras model and the torch model of the same registered architecture,
layer by layer, in either direction (`keras_to_torch`, `torch_to_keras`).

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
parameter must be written (read), otherwise BadInputError says which layer disagrees. The two
directions are exact inverses: each rule above is a transpose or a reorder, no arithmetic.
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


def _the_module(modules: dict[str, list], name: str, direction: str):
    """The one torch module named `name`, or BadInputError (none or several)."""
    candidates = modules.get(name, [])
    if len(candidates) != 1:
        what = "no module" if not candidates else f"{len(candidates)} modules"
        raise BadInputError(f"{direction}: the torch model has {what} named {name!r}")
    return candidates[0]


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
        module = _the_module(modules, name, "keras_to_torch")
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


def _torch_to_keras_arrays(layer, module) -> list[np.ndarray]:
    """The weights of one Keras layer, in `layer.get_weights()` order, from its torch module."""
    import tf_keras as keras

    params = {n: p.detach().cpu().numpy() for n, p in module.named_parameters()}

    def take(name: str) -> np.ndarray:
        if name not in params:
            raise BadInputError(f"torch_to_keras: torch module {layer.name!r} has no parameter {name!r}")
        return params.pop(name)

    if isinstance(layer, keras.layers.ConvLSTM2D):
        weight = take("cell.conv.weight").transpose(2, 3, 1, 0)  # (k, k, in + F, 4F)
        n_in = weight.shape[2] - weight.shape[3] // 4
        out = [weight[:, :, :n_in], weight[:, :, n_in:], take("cell.conv.bias")]
    elif isinstance(layer, keras.layers.Conv2D):
        out = [take("weight").transpose(2, 3, 1, 0)]
    elif isinstance(layer, keras.layers.Dense):
        kernel = take("weight").T
        hwc = _flattened_image_shape(layer)
        if hwc is not None:  # rows in torch's (c, h, w) order -> Keras' (h, w, c)
            h, w, c = hwc
            kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
        out = [kernel]
    else:
        raise BadInputError(f"torch_to_keras: no rule for layer {layer.name!r} ({type(layer).__name__})")
    if not isinstance(layer, keras.layers.ConvLSTM2D) and layer.use_bias:
        out.append(take("bias"))
    if params:
        raise BadInputError(f"torch_to_keras: Keras layer {layer.name!r} has no place for torch parameters "
                            f"{sorted(params)}")
    return out


def torch_to_keras(torch_model, keras_model):
    """Load `torch_model`'s weights into `keras_model` (same registered architecture) in place and
    return `keras_model`: the inverse of keras_to_torch."""
    modules = _torch_modules_by_name(torch_model)
    read: set[int] = set()
    for name, layer in _keras_weighted_layers(keras_model):
        module = _the_module(modules, name, "torch_to_keras")
        arrays = _torch_to_keras_arrays(layer, module)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [a.shape for a in arrays] != expected:
            raise BadInputError(f"torch_to_keras: layer {name!r}: torch gives {[a.shape for a in arrays]}, "
                                f"Keras expects {expected}")
        layer.set_weights([np.ascontiguousarray(a, dtype=np.float32) for a in arrays])
        read.update(id(p) for p in module.parameters())
    left = [n for n, p in torch_model.named_parameters() if id(p) not in read]
    if left:
        raise BadInputError(f"torch_to_keras: the Keras model has no layer for torch parameters {left}")
    return keras_model
