"""DeepLearningStudio PyTorch models (PilotNet, DeepestLSTMTinyPilotNet): rows 240:480 resized to
the model's input (66 x 200 for PilotNet; cv2.resize, bilinear), RGB, NCHW, ToTensor (pixel / 255,
no mean/std); outputs (v, w) normalized by v 6.5..24 m/s, w -7.1..7.1 rad/s. Behavior Metrics'
brain_f1_torch feeds and maps them the same way."""

from pilotopt.contracts.contract import SCALINGS, InputContract, register_contract

scale, mean, std = SCALINGS["unit"]
register_contract(InputContract(name="dls-torch", layout="nchw", pixel_scale=scale, mean=mean, std=std,
                                size_from_model=True, description="DeepLearningStudio PyTorch: crop, NCHW, /255"))
