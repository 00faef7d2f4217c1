"""Frame models of the PilotNet family from one declarative plan: normalize, convs (ReLU),
flatten, dense layers (ReLU), linear output. The plan gives the analytic layer table and both
builders, so the two frameworks cannot drift apart.

Layer names, identical in both frameworks: normalize, conv1..convN, flatten, dense1..denseM,
output. In torch a 'same' conv whose TensorFlow padding is asymmetric (stride 2) is preceded by
a `conv<i>_pad` ZeroPad2d that pads exactly as TF does (the extra pixel bottom/right).
"""

from __future__ import annotations

from dataclasses import dataclass

from pilotopt.models._registry import LayerInfo, ModelSpec, NORM_OFFSET, NORM_SCALE, conv_out, layer_seed, tf_same_pads


@dataclass(frozen=True)
class Conv:
    filters: int
    kernel: int
    stride: int = 1
    padding: str = "valid"


class FrameConvNetSpec(ModelSpec):
    """Subclasses set `convs` (tuple of Conv) and `dense` (hidden dense widths)."""

    convs: tuple[Conv, ...] = ()
    dense: tuple[int, ...] = ()

    def layer_table(self) -> list[LayerInfo]:
        h, w, c = self.input_shape
        table = [LayerInfo("normalize", "rescale", (h, w, c), 0, 0)]
        for i, conv in enumerate(self.convs, 1):
            h = conv_out(h, conv.kernel, conv.stride, conv.padding)
            w = conv_out(w, conv.kernel, conv.stride, conv.padding)
            if h < 1 or w < 1:
                raise ValueError(f"{self.name}: conv{i} leaves no pixels")
            fan_in = conv.kernel * conv.kernel * c
            params = fan_in * conv.filters + conv.filters
            table.append(LayerInfo(f"conv{i}", "conv", (h, w, conv.filters), params, h * w * conv.filters * fan_in))
            c = conv.filters
        units = h * w * c
        table.append(LayerInfo("flatten", "flatten", (units,), 0, 0))
        widths = [*self.dense, self.outputs]
        names = [f"dense{i}" for i in range(1, len(self.dense) + 1)] + ["output"]
        for name, width in zip(names, widths):
            table.append(LayerInfo(name, "dense", (width,), units * width + width, units * width))
            units = width
        return table

    # -- PyTorch -----------------------------------------------------------------------------
    def _build_torch(self, seed: int):
        from collections import OrderedDict

        from torch import nn

        from pilotopt.models._torch_layers import FrameConvNet, init_keras_like

        h, w, c = self.input_shape
        features: OrderedDict[str, nn.Module] = OrderedDict()
        for i, conv in enumerate(self.convs, 1):
            k, s = conv.kernel, conv.stride
            pad: tuple[int, int] | str = (0, 0)
            if conv.padding == "same":
                top, bottom = tf_same_pads(h, k, s)
                left, right = tf_same_pads(w, k, s)
                if top == bottom and left == right:
                    pad = (top, left)
                else:
                    features[f"conv{i}_pad"] = nn.ZeroPad2d((left, right, top, bottom))
            features[f"conv{i}"] = nn.Conv2d(c, conv.filters, k, stride=s, padding=pad)
            features[f"conv{i}_relu"] = nn.ReLU()
            h = conv_out(h, k, s, conv.padding)
            w = conv_out(w, k, s, conv.padding)
            c = conv.filters
        head: OrderedDict[str, nn.Module] = OrderedDict()
        units = h * w * c
        for i, width in enumerate(self.dense, 1):
            head[f"dense{i}"] = nn.Linear(units, width)
            head[f"dense{i}_relu"] = nn.ReLU()
            units = width
        head["output"] = nn.Linear(units, self.outputs)
        model = FrameConvNet(self.name, nn.Sequential(features), nn.Sequential(head))
        return init_keras_like(model, seed)

    # -- Keras -------------------------------------------------------------------------------
    def _build_keras(self, seed: int):
        import tf_keras as keras

        def init(index: int):
            return keras.initializers.GlorotUniform(seed=layer_seed(seed, index))

        inp = keras.Input(shape=self.input_shape, name="image", dtype="float32")
        x = keras.layers.Rescaling(NORM_SCALE, offset=NORM_OFFSET, name="normalize")(inp)
        index = 0
        for i, conv in enumerate(self.convs, 1):
            x = keras.layers.Conv2D(
                conv.filters, conv.kernel, strides=conv.stride, padding=conv.padding, activation="relu",
                kernel_initializer=init(index), name=f"conv{i}",
            )(x)
            index += 1
        x = keras.layers.Flatten(name="flatten")(x)
        for i, width in enumerate(self.dense, 1):
            x = keras.layers.Dense(width, activation="relu", kernel_initializer=init(index), name=f"dense{i}")(x)
            index += 1
        out = keras.layers.Dense(self.outputs, kernel_initializer=init(index), name="output")(x)
        return keras.Model(inp, out, name=self.name)

