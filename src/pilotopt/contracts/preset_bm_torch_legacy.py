"""Behavior Metrics' PyTorch brains with `PredictionsNormalized` (brain_f1_torch-lstm), for models
trained on the older dataset: rows 240:480 resized to the model's input, RGB, NCHW, pixel / 255,
and outputs mapped as v = 6 p0, w = 6 (p1 - 0.5)."""

from pilotopt.contracts.contract import SCALINGS, InputContract, OutputMap, register_contract

scale, mean, std = SCALINGS["unit"]
register_contract(InputContract(name="bm-torch-legacy", layout="nchw", pixel_scale=scale, mean=mean, std=std,
                                outputs=OutputMap(0, 1, 6.0, 0.0, 6.0, -3.0), size_from_model=True,
                                description="Behavior Metrics torch brain, legacy: crop, NCHW, /255, v=6p, w=6(p-0.5)"))
