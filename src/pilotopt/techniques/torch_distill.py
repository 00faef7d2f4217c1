"""`torch_distill`: knowledge distillation of the PyTorch baseline (the teacher) into a small registered
student. The default, `pilotnet_nano`, has a 4x4/4 patch stem (34x fewer parameters and 18x fewer
MACs than PilotNet); on the demo's data it reached a lower test MSE than the baseline and than
`pilotnet_student` (PilotNet's topology, thin: 3.7x fewer MACs), and ran 5x faster than it in
LiteRT (0.050 ms against 0.256 ms at batch 1 on an AVX2 EPYC), since PilotNet's overlapping first
convolution at full resolution dominates a thin PilotNet. `student: pilotnet_student` keeps the
study's topology. The student learns from both the teacher's outputs and the labels,

    loss = alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, labels),

on the TRAINING split. It trains from scratch (unless `init` names a checkpoint of it), so it gets
more epochs than the fine-tunes and a higher learning rate with cosine decay (a loop of its own:
the shared fine-tune has a constant rate; and the frozen teacher runs once per frame, its outputs
kept for the later epochs). The artifact is an ordinary checkpoint of the student's
registered architecture, run by the `torch` runtime."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pilotopt.contracts.torch_adapter import adapters
from pilotopt.errors import BadInputError, RuntimeUnavailable, one_line
from pilotopt.models import build_torch, get_model_spec, model_names
from pilotopt.techniques import _torch_fit
from pilotopt.techniques._core import TORCH, Result, TechniqueContext, register_technique
from pilotopt.techniques._settings import setting
from pilotopt.techniques.torch_channel_prune import count_macs


@dataclass(frozen=True)
class DistillSettings(_torch_fit.FineTuneSettings):
    student: str = setting("pilotnet_nano", "a registered frame model smaller than the baseline", nonempty=True)
    alpha: float = setting(0.5, "weight of the teacher's outputs in the loss (1 - alpha: the labels)", ge=0, le=1)
    epochs: int = 10
    learning_rate: float = 1e-3  # start of the cosine decay
    final_lr_fraction: float = setting(0.05, "the rate decays to learning_rate x this at the last step", gt=0, le=1)
    init: str = setting("", "a pilotopt checkpoint of the student to start from (empty: fresh init under the seed)")
    # the teacher's targets computed on the augmented frames: the student learns the teacher's
    # behaviour in other light too (without it the nano student left the road at dusk)
    augment: str = "default"


def _student(ctx: TechniqueContext, s: DistillSettings):
    """The student: fresh under ctx.seed, or loaded from `s.init`."""
    net = build_torch(s.student, seed=ctx.seed)
    if s.init:
        path = Path(s.init).expanduser()
        if not path.is_file():
            raise BadInputError(f"init checkpoint '{path}' does not exist; pass a model.pt of {s.student}")
        try:
            ckpt = ctx.torch.load(path, map_location="cpu", weights_only=True)
            if ckpt.get("model") != s.student:
                raise BadInputError(f"init checkpoint '{path}' holds '{ckpt.get('model')}', not the student "
                                    f"'{s.student}'")
            net.load_state_dict(ckpt["state_dict"])
        except BadInputError:
            raise
        except Exception as exc:
            raise BadInputError(f"cannot load init checkpoint '{path}': {one_line(exc, limit=200)}") from None
    return net


@register_technique("torch_distill", framework=TORCH, runtime="torch", order=180, needs_data=True,
                    settings=DistillSettings,
                    description="knowledge distillation of the baseline into pilotnet_nano (18x fewer MACs)")
def apply(ctx: TechniqueContext) -> Result:
    s: DistillSettings = ctx.settings
    torch = ctx.torch

    teacher_name = ctx.torch_model_name
    student_spec = get_model_spec(s.student)
    own = ctx.contract.raw_pixels and ctx.contract.outputs.identity  # pilotopt's contract: a plain student
    if ctx.contract.geometry != student_spec.input_geometry:
        g = ctx.contract.geometry
        raise RuntimeUnavailable(f"the student '{s.student}' sees {student_spec.input_shape[0]}x"
                                 f"{student_spec.input_shape[1]} images; the input model's contract "
                                 f"'{ctx.contract.name}' feeds {g.height}x{g.width}")
    teacher = ctx.torch_model()  # eval mode, a fresh copy; never trained here
    teacher_params = int(sum(p.numel() for p in teacher.parameters()))
    teacher_macs = _macs(ctx, teacher, teacher_name)
    if ctx.sequence_length != 1 or student_spec.sequence_length != 1:
        raise BadInputError(f"torch_distill needs frame models; '{teacher_name}' -> '{s.student}' includes a "
                            "recurrent one")
    if teacher_name == s.student or teacher_params <= student_spec.num_params:
        raise BadInputError(f"the baseline '{teacher_name}' ({teacher_params:,} params) is not bigger "
                            f"than the student '{s.student}' ({student_spec.num_params:,}); nothing to distill")

    torch.manual_seed(ctx.seed)
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = _student(ctx, s)
    if not own:  # inside the teacher's contract: its tensors in, its output space out
        to_raw, to_native = adapters(ctx.contract)
        student = torch.nn.Sequential(to_raw, student, to_native)
    opt = torch.optim.Adam(student.parameters(), lr=s.learning_rate)
    total = _torch_fit.steps(ctx, s)
    floor = s.final_lr_fraction

    def cosine(step: int) -> float:  # 1 at the first step -> floor at the last
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total - 1) / max(1, total - 1)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    mse = torch.nn.MSELoss()
    split = ctx.train
    # the teacher never changes: without augmentation run it once per frame (the first epoch that meets
    # it), not per epoch; with augmentation every batch is new, and so are its targets
    targets = np.full((len(split), 2), np.nan, np.float32)
    augmenting = s.augment not in (None, "none")
    history: list[dict] = []
    sums = np.zeros(3)
    count, last_epoch, n_steps = 0, 0, 0

    def close_epoch(epoch: int) -> None:
        if count:
            loss, to_teacher, to_labels = (sums / count).tolist()
            history.append({"epoch": epoch + 1, "loss": loss, "mse_to_teacher": to_teacher,
                            "mse_to_labels": to_labels, "lr_end": float(opt.param_groups[0]["lr"])})

    student.train()
    for epoch, idx in _torch_fit.batch_indices(ctx, s):
        if epoch != last_epoch:
            close_epoch(last_epoch)
            sums[:], count, last_epoch = 0.0, 0, epoch
        x, y = _torch_fit.training_batch(ctx, s.augment, epoch, idx)
        xb, yb = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
        if augmenting:
            with torch.no_grad():
                target = teacher(xb)
        else:
            new = np.isnan(targets[idx, 0])
            if new.any():
                with torch.no_grad():
                    targets[idx[new]] = teacher(xb[torch.from_numpy(new)]).numpy()
            target = torch.from_numpy(targets[idx])
        out = student(xb)
        to_teacher, to_labels = mse(out, target), mse(out, yb)
        loss = s.alpha * to_teacher + (1.0 - s.alpha) * to_labels
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        n_steps += 1
        sums += [float(loss.detach()), float(to_teacher.detach()), float(to_labels.detach())]
        count += 1
    close_epoch(last_epoch)
    student.eval()

    runtime = None
    if own:
        name = ctx.save_torch_checkpoint(student, arch=s.student,
                                         meta={"distilled_from": teacher_name, "distill_alpha": s.alpha})
    else:  # a self-contained trace in the teacher's contract, as the toolkit's own tools load it
        with torch.inference_mode():
            traced = torch.jit.trace(student, torch.from_numpy(ctx.random_frames(2)))
        name = "model.torchscript.pt"
        traced.save(str(ctx.out / name))
        runtime = "torchscript"
    t_params = teacher_params
    s_params = int(sum(p.numel() for p in student.parameters()))
    return Result(name, {
        "model": s.student, "teacher": teacher_name, "student": s.student, "alpha": s.alpha,
        "teacher_params": t_params, "student_params": s_params, "params_ratio": s_params / t_params,
        "teacher_macs": int(teacher_macs), "student_macs": int(student_spec.macs),
        "macs_ratio": student_spec.macs / teacher_macs, "init": s.init or "fresh (seeded)",
        "fine_tune_steps": n_steps, "history": history, "final_loss": history[-1]["loss"] if history else None,
        "input_contract": ctx.contract.name, "student_wrapped_in_contract": not own, "augment": s.augment,
    }, runtime=runtime)


def _macs(ctx: TechniqueContext, teacher, name: str) -> int:
    """The teacher's multiply-accumulates: analytic for a registered model, else counted by hooks."""
    if name in model_names():
        return int(get_model_spec(name).macs)

    return int(count_macs(teacher, tuple(ctx.sample_shape)))
