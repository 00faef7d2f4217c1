"""Training of the baseline models in PyTorch or TensorFlow from one loop."""

from pilotopt.train.config import TrainConfig
from pilotopt.train.loop import train

__all__ = ["TrainConfig", "train"]
