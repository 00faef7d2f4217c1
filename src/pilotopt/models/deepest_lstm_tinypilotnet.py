"""DeepestLSTMTinyPilotNet: a tiny per-frame conv stack followed by three ConvLSTM2D layers over a
short frame sequence (input (N, T, 66, 200, 3), T = 3).

Per frame (TimeDistributed in Keras, batch*time folded in torch): conv 8/8/8 (3x3, stride 2,
valid, ReLU) -> 7x24x8. Then ConvLSTM2D 8 filters 5x5 'same' x3 (the first two return
sequences, the last only its final hidden state), flatten, dense 50/10 (ReLU), 2.

Keras ConvLSTM2D: activation tanh, recurrent_activation set to 'sigmoid' explicitly (tf_keras'
default is 'hard_sigmoid'), gate order (i, f, c, o), unit_forget_bias=True (forget-gate bias
initialized to 1; values only, the count is unchanged). The torch ConvLSTMCell is one Conv2d over
concat(input, hidden) with the same parameter count: (k*k*(C_in+F))*4F + 4F.
"""

from __future__ import annotations

from pilotopt.models._registry import (LayerInfo, ModelSpec, NORM_OFFSET, NORM_SCALE, conv_out, layer_seed,
                                       register_model)


@register_model("deepest_lstm_tinypilotnet")
class DeepestLSTMTinyPilotNet(ModelSpec):
    description = "3 tiny convs per frame, 3 ConvLSTM2D (8 filters, 5x5) over 3 frames, dense 50/10/2"
    sequence_length = 3
    conv_filters = (8, 8, 8)
    conv_kernel = 3
    conv_stride = 2
    lstm_filters = (8, 8, 8)
    lstm_kernel = 5
    dense = (50, 10)

    def layer_table(self) -> list[LayerInfo]:
        t = self.sequence_length
        h, w, c = self.input_shape
        table = [LayerInfo("normalize", "rescale", (h, w, c), 0, 0)]
        k, s = self.conv_kernel, self.conv_stride
        for i, f in enumerate(self.conv_filters, 1):
            h, w = conv_out(h, k, s, "valid"), conv_out(w, k, s, "valid")
            fan_in = k * k * c
            table.append(LayerInfo(f"conv{i}", "conv", (h, w, f), fan_in * f + f, t * h * w * f * fan_in))
            c = f
        k = self.lstm_kernel
        for i, f in enumerate(self.lstm_filters, 1):
            fan_in = k * k * (c + f)  # input kernel + recurrent kernel
            params = fan_in * 4 * f + 4 * f
            table.append(LayerInfo(f"convlstm{i}", "convlstm", (h, w, f), params, t * h * w * 4 * f * fan_in))
            c = f
        units = h * w * c
        table.append(LayerInfo("flatten", "flatten", (units,), 0, 0))
        names = [f"dense{i}" for i in range(1, len(self.dense) + 1)] + ["output"]
        for name, width in zip(names, [*self.dense, self.outputs]):
            table.append(LayerInfo(name, "dense", (width,), units * width + width, units * width))
            units = width
        return table

    def _build_torch(self, seed: int):
        from collections import OrderedDict

        from torch import nn

        # torch: imported on first use, not with this module
        from pilotopt.models._torch_layers import ConvLSTM2d, SequenceConvLSTMNet, init_keras_like

        c = self.input_shape[2]
        features: OrderedDict[str, nn.Module] = OrderedDict()
        for i, f in enumerate(self.conv_filters, 1):
            features[f"conv{i}"] = nn.Conv2d(c, f, self.conv_kernel, stride=self.conv_stride)
            features[f"conv{i}_relu"] = nn.ReLU()
            c = f
        lstm: OrderedDict[str, nn.Module] = OrderedDict()
        n = len(self.lstm_filters)
        for i, f in enumerate(self.lstm_filters, 1):
            lstm[f"convlstm{i}"] = ConvLSTM2d(c, f, self.lstm_kernel, return_sequences=i < n)
            c = f
        table = {layer.name: layer for layer in self.layer_table()}
        units = table["flatten"].output_shape[0]
        head: OrderedDict[str, nn.Module] = OrderedDict()
        for i, width in enumerate(self.dense, 1):
            head[f"dense{i}"] = nn.Linear(units, width)
            head[f"dense{i}_relu"] = nn.ReLU()
            units = width
        head["output"] = nn.Linear(units, self.outputs)
        model = SequenceConvLSTMNet(self.name, nn.Sequential(features), nn.Sequential(lstm), nn.Sequential(head))
        return init_keras_like(model, seed)

    def _build_keras(self, seed: int):
        import tf_keras as keras

        index = 0

        def seeded(cls):
            nonlocal index
            index += 1
            return cls(seed=layer_seed(seed, index))

        inp = keras.Input(shape=self.sample_shape, name="frames", dtype="float32")
        x = keras.layers.Rescaling(NORM_SCALE, offset=NORM_OFFSET, name="normalize")(inp)
        for i, f in enumerate(self.conv_filters, 1):
            conv = keras.layers.Conv2D(
                f, self.conv_kernel, strides=self.conv_stride, padding="valid", activation="relu",
                kernel_initializer=seeded(keras.initializers.GlorotUniform), name=f"conv{i}_frame",
            )
            x = keras.layers.TimeDistributed(conv, name=f"conv{i}")(x)
        n = len(self.lstm_filters)
        for i, f in enumerate(self.lstm_filters, 1):
            x = keras.layers.ConvLSTM2D(
                f, self.lstm_kernel, padding="same", activation="tanh", recurrent_activation="sigmoid",
                unit_forget_bias=True, return_sequences=i < n,
                kernel_initializer=seeded(keras.initializers.GlorotUniform),
                recurrent_initializer=seeded(keras.initializers.Orthogonal), name=f"convlstm{i}",
            )(x)
        x = keras.layers.Flatten(name="flatten")(x)
        for i, width in enumerate(self.dense, 1):
            x = keras.layers.Dense(
                width, activation="relu", kernel_initializer=seeded(keras.initializers.GlorotUniform), name=f"dense{i}"
            )(x)
        out = keras.layers.Dense(
            self.outputs, kernel_initializer=seeded(keras.initializers.GlorotUniform), name="output"
        )(x)
        return keras.Model(inp, out, name=self.name)
