"""The original study's published figures, for the side-by-side with a pilotopt run.

Taken from the study's final "Results summary" page (the seed write-ups in the project's shared
folder, file 003: offline table lines 39-61, SimpleCircuit closed-loop table lines 11-21). Ratios are
against the study's own baseline of each framework: the LiteRT "Baseline" row (V100 GPU, batch 1024)
for TensorFlow, the eager "Baseline" row (CPU) for PyTorch; latency is the mean inference time. The
study's closed-loop "position deviation" is Behavior Metrics' formula (mean of 1000^d); its unit of
brain iteration frequency is iterations per second. Keys are the pilotopt techniques that
reproduce each row."""

from __future__ import annotations

SOURCE = "the study's Results summary (seed 003): offline table lines 39-61, SimpleCircuit table lines 11-21"

# technique: (study row, size ratio, MSE ratio, latency ratio) against the framework's baseline
OFFLINE_RATIOS = {
    "tf": {
        "baseline": ("tflite_fp32", "Baseline (TensorFlow Lite)"),
        "rows": {
            "tflite_dynamic_range": ("Dynamic Range Q", 0.2502, 0.9976, 0.6195),
            "tflite_float16": ("Float16 Q", 0.5001, 0.9998, 1.0034),
            "tf_qat": ("Q aware training", 0.2503, 1.0257, 1.2069),
            "tf_prune": ("Weight pruning", 1.0, 1.0364, 0.9765),
            "tf_prune_dynamic_range": ("Weight pruning + Q", 0.2502, 1.0372, 0.6079),
            "tflite_int8": ("Integer only Q", 0.2502, 685426.8, 0.9993),
            "tflite_int8_fallback": ("Integer (float fallback) Q", 0.2502, 1.0971, 0.9876),
            "tf_cqat": ("CQAT", 0.2503, 0.9586, 0.9705),
            "tf_pqat": ("PQAT", 0.2503, 1.0630, 1.0045),
            "tf_pcqat": ("PCQAT", 0.2503, 0.9552, 1.0042),
        },
    },
    "torch": {
        "baseline": ("torch", "Baseline (PyTorch)"),
        "rows": {
            "torch_dynamic": ("Dynamic Range Q", 0.3181, 0.9946, 1.4539),
            "torch_static": ("Static Q", 0.2623, 0.9998, 1.2198),
            "torch_qat": ("Q aware training", 0.2626, 0.8981, 1.2825),
            "torch_prune_local": ("Local Prune", 1.0002, 0.9253, 0.9609),
            "torch_prune_global": ("Global Prune", 1.0002, 0.8981, 0.9877),
            "torch_prune_quant": ("Prune + Quantization", 0.2626, 0.8530, 1.2226),
        },
    },
}

# technique: (study row, brain iteration frequency, position deviation) on SimpleCircuit
CLOSED_LOOP = {
    "keras": ("PilotNet (original)", 5.585, 7.406),
    "tflite_dynamic_range": ("Dynamic Range Q", 58.474, 6.693),
    "torch_prune_global": ("Global Prune", 42.90, 17.03),
    "torch_prune_local": ("Local Prune", 32.57, 14.15),
    "torch_qat": ("QAT", 26.45, 11.47),
    "torch_prune_quant": ("Prune + Quantization", 34.40, 4.61),
}
