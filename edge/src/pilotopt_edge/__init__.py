"""pilotopt-edge: a pilotopt deploy folder on the car, camera frame -> (v, w), NumPy plus one runtime."""

from pilotopt_edge.brain import Brain
from pilotopt_edge.errors import EdgeError
from pilotopt_edge.feeding import Feeding, OutputMap, encode_pixels

__version__ = "0.2.0"
__all__ = ["Brain", "EdgeError", "Feeding", "OutputMap", "encode_pixels", "__version__"]
