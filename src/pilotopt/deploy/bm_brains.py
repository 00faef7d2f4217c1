"""Behavior Metrics' Formula-1 brains (noetic-devel, `behavior_metrics/brains/gazebo/f1/`) as
facts: which file each loads, how it feeds the model and how it reads the outputs. Written from
the brains' documented behaviour, not copied; `feed` and `commands` reproduce what each brain
does with a camera frame, so `pilotopt deploy` can check an export the way BM will run it.

- brain_f1_keras_opencv_dataset.py: `.tflite` (`tflite` in the model's name), rows 240:480,
  cv2.resize to ImageSize [W, H], albumentations Normalize() (ImageNet mean/std of pixel / 255),
  NHWC float32 batch 1; PredictionsNormalized: v = 17.5 p0 + 6.5, w = 14.2 p1 - 7.1.
- brain_f1_keras.py: the same input; PredictionsNormalized: v = 13 p0, w = 6 (p1 - 0.5).
- brain_f1_torch.py: UseOptimized loads TorchScript (torch.jit.load, never .eval()); rows 240:480,
  cv2.resize to (200, 66), torchvision ToTensor (NCHW, pixel / 255); v = 17.5 p + 6.5, w = 14.2 p - 7.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pilotopt.contracts.contract import IMAGENET_MEAN, IMAGENET_STD

CROP = (240, 480)
SIZE_WH = (200, 66)  # BM's ImageSize is [W, H]


@dataclass(frozen=True)
class BMBrain:
    name: str  # our key
    brain_path: str  # BrainPath in BM's YAML
    models_dir: str  # where BM looks for Model: (relative to its checkout)
    framework: str  # "tf" (a .tflite) or "torch" (TorchScript)
    v_map: tuple  # v = a * p[0] + b
    w_map: tuple  # w = a * p[1] + b

    def feed(self, frame: np.ndarray) -> np.ndarray:
        """A 480 x 640 RGB camera frame -> the batch this brain hands the model."""
        import cv2

        img = cv2.resize(frame[CROP[0]:CROP[1]], SIZE_WH)
        if self.framework == "torch":  # ToTensor: HWC uint8 -> CHW float32 / 255
            return (np.transpose(img, (2, 0, 1)).astype(np.float32) / 255.0)[None]
        from albumentations import Normalize

        return Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)(image=img)["image"].astype(np.float32)[None]

    def commands(self, out: np.ndarray) -> tuple[float, float]:
        p = np.asarray(out, dtype=np.float64).reshape(-1)
        return self.v_map[0] * p[0] + self.v_map[1], self.w_map[0] * p[1] + self.w_map[1]

    def parameters(self, model: str) -> dict:
        """The `Parameters` block this brain reads (every key it indexes)."""
        if self.framework == "torch":
            return {"Model": model, "ImageCrop": True, "GPU": False, "UseOptimized": True}
        return {"Model": model, "ImageCropped": True, "ImageSize": list(SIZE_WH), "ImageNormalized": True,
                "PredictionsNormalized": True, "GPU": False, "UseOptimized": True, "ImageTranform": ""}


PILOTOPT_MAP = ((17.5, 6.5), (14.2, -7.1))
BRAINS = {
    "keras_opencv_dataset": BMBrain("keras_opencv_dataset", "brains/gazebo/f1/brain_f1_keras_opencv_dataset.py",
                                    "models/gazebo/tf_models", "tf", *PILOTOPT_MAP),
    "keras": BMBrain("keras", "brains/gazebo/f1/brain_f1_keras.py", "models/gazebo/tf_models", "tf",
                     (13.0, 0.0), (6.0, -3.0)),
    "torch": BMBrain("torch", "brains/gazebo/f1/brain_f1_torch.py", "models/gazebo/torch_models", "torch",
                     *PILOTOPT_MAP),
}


def config_yaml(brain: BMBrain, model: str, time_cycle_ms: int, world: str) -> dict:
    """A whole Behavior Metrics config (configs/gazebo/*.yml) driving `model` with `brain`."""
    return {"Behaviors": {
        "Robot": {
            "Sensors": {"Cameras": {"Camera_0": {"Name": "camera_0", "Topic": "/F1ROS/cameraL/image_raw"}},
                        "Pose3D": {"Pose3D_0": {"Name": "pose3d_0", "Topic": "/F1ROS/odom"}}},
            "Actuators": {"Motors": {"Motors_0": {"Name": "motors_0", "Topic": "/F1ROS/cmd_vel", "MaxV": 3,
                                                  "MaxW": 0.3}}},
            "BrainPath": brain.brain_path, "PilotTimeCycle": int(time_cycle_ms),
            "Parameters": brain.parameters(model), "Type": "f1"},
        "Simulation": {"World": world},
        "Dataset": {"In": "/tmp/my_bag.bag", "Out": ""},
        "Stats": {"Out": "./", "PerfectLap": "./perfect_bags/lap-simple-circuit.bag"},
        "Layout": {f"Frame_{i}": {"Name": f"frame_{i}", "Geometry": g, "Data": "rgbimage"}
                   for i, g in enumerate(([1, 1, 2, 2], [0, 1, 1, 1], [0, 2, 1, 1], [0, 3, 3, 1]))},
    }}
