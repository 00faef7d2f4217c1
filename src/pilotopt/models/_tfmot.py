"""Make TF-MOT (tensorflow-model-optimization 0.8.1) accept the fixed input normalization layer.

Every Keras model here starts with `keras.layers.Rescaling(1/127.5, offset=-1)`: weight-free and
fixed, so quantization, pruning and clustering have nothing to change in it. TF-MOT 0.8.1 still
refuses it:

* `quantize_model` raises "Layer normalize:<class ...Rescaling> is not supported" because its
  default 8-bit registry has no entry for Rescaling;
* `prune_low_magnitude` raises "Please initialize `Prune` with a supported layer" because
  prune_registry.py tries to register Rescaling but registers `Rescaling.__class__` (that is,
  `type`) instead of the class.

(`cluster_weights` already accepts it: it allows every layer without trainable weights.)

`register_tfmot_layers()` adds Rescaling to those registries: for quantization with its output
quantized (like Add/Concatenate), so a converted full-int8 LiteRT model has quantization
parameters for the normalized tensor (checked: MUL and ADD become int8 ops); for pruning with no
prunable weights. It changes only TF-MOT's in-memory tables, is idempotent, and is a no-op when
TF-MOT is not installed. `build_keras` calls it; call it yourself before using TF-MOT on a Keras
model you loaded from disk instead of building it.
"""

from __future__ import annotations

_done = False


def register_tfmot_layers() -> bool:
    """Register Rescaling with TF-MOT's quantize and prune registries. Returns False when TF-MOT
    is not installed."""
    global _done
    if _done:
        return True
    try:
        import tf_keras as keras
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry as q8,
        )
        from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry
    except ImportError:
        return False

    rescaling = keras.layers.Rescaling
    infos = q8.Default8BitQuantizeRegistry._LAYER_QUANTIZE_INFO
    if not any(info.layer_type is rescaling for info in infos):
        infos.append(q8._QuantizeInfo(rescaling, [], [], True))
    try:  # the experimental n-bit scheme keeps its own table
        from tensorflow_model_optimization.python.core.quantization.keras.experimental.default_n_bit import (
            default_n_bit_quantize_registry as qn,
        )

        infos_n = qn.DefaultNBitQuantizeRegistry._LAYER_QUANTIZE_INFO
        if not any(info.layer_type is rescaling for info in infos_n):
            infos_n.append(qn._QuantizeInfo(rescaling, [], [], True))
    except (ImportError, AttributeError):
        pass
    prune_registry.PruneRegistry._LAYERS_WEIGHTS_MAP.setdefault(rescaling, [])
    _done = True
    return True
