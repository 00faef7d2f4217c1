"""PyTorch training backend: deterministic CPU training (fixed seed, threads, deterministic ops)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from pilotopt.models import build_torch, get_model_spec
from pilotopt.train.backend import TrainBackend

CHECKPOINT = "model.pt"
TORCHSCRIPT = "model.torchscript.pt"


class TorchBackend(TrainBackend):
    framework = "torch"

    def __init__(self, model: str, seed: int, learning_rate: float, threads: int):
        super().__init__(model, seed, learning_rate, threads)
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        self.torch = torch
        self.net = build_torch(model, seed=seed)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=learning_rate)
        self.loss = torch.nn.MSELoss()

    def train_step(self, x, y) -> float:
        torch = self.torch
        self.net.train()
        xb = torch.from_numpy(np.ascontiguousarray(x)).float()
        yb = torch.from_numpy(np.ascontiguousarray(y)).float()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.net(xb), yb)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def predict(self, x) -> np.ndarray:
        torch = self.torch
        self.net.eval()
        with torch.inference_mode():
            return self.net(torch.from_numpy(np.ascontiguousarray(x)).float()).numpy()

    def get_state(self):
        return copy.deepcopy(self.net.state_dict())

    def set_state(self, state) -> None:
        self.net.load_state_dict(state)

    def num_params(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    def save(self, folder: Path, meta: dict) -> list[str]:
        torch = self.torch
        self.net.eval()
        torch.save({"format": "pilotopt.torch/1", "model": self.model_name, "state_dict": self.net.state_dict(),
                    "meta": meta}, folder / CHECKPOINT)

        spec = get_model_spec(self.model_name)
        shape = (1, spec.sequence_length, *spec.input_shape) if spec.sequence_length > 1 else (1, *spec.input_shape)
        example = torch.zeros(shape)
        import warnings

        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript still loads everywhere
            scripted = torch.jit.trace(self.net, example)
        scripted.save(str(folder / TORCHSCRIPT))
        return [CHECKPOINT, TORCHSCRIPT]
