"""One variant, measured in a fresh process: `python -m pilotopt.evaluate.worker JOB.json`.

The parent writes the job (artifact, runtime, threads, test set folder, timing settings, where to
write); the worker writes a result JSON and the predictions (.npy), and prints `@@phase NAME`
lines so the parent can say where a crash happened. Every Python error becomes a result with
status failed (a missing runtime included) and exit code 0; only a hard crash (signal,
os._exit, out of memory) leaves no result.

Memory is this process's peak RSS (VmHWM on Linux, else ru_maxrss) and its RSS just before the
model is loaded (Python, NumPy, pilotopt, the memory-mapped test set header); the difference is
the runtime's and model's share. Order matters for the memory figures: load, latency, brain step and throughput run first and the
peak RSS is read before the accuracy pass (which touches every memory-mapped test frame) and
before the parameter count (which may read the artifact a second time)."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from pilotopt.artifacts import count_params
from pilotopt.atomic import atomic_path, write_json
from pilotopt.contracts import out_of_range_share
from pilotopt.errors import RuntimeUnavailable, one_line
from pilotopt.evaluate.latency import sample_calls, summarize, time_calls
from pilotopt.evaluate.plugins import load_runtime_plugins
from pilotopt.evaluate.testset import EvalFrames
from pilotopt.preprocess import crop_resize
from pilotopt.runtimes import contract_predictor

PHASE_MARK = "@@phase "


def _phase(name: str) -> None:
    print(f"{PHASE_MARK}{name}", flush=True)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rss_bytes() -> int | None:
    return _status_kb("VmRSS")


def _peak_rss_bytes() -> int:
    """This process's own peak RSS. Linux: VmHWM, which starts afresh at exec; ru_maxrss is not
    used there because it carries over the parent's RSS at fork time (the evaluation parent holds
    the test set, so every worker would report at least the parent's size)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


MAX_SAMPLES = 1000


def _mb(b: int | None) -> float | None:
    return None if b is None else round(b / 2**20, 2)


def _check_output(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n, 2):
        raise ValueError(f"the model returned shape {tuple(y.shape)} for {n} frames; expected ({n}, 2)")
    return y.astype(np.float32, copy=False)


def measure(job: dict) -> dict:
    timing = {k: job[k] for k in ("min_calls", "min_seconds", "warmup_calls", "warmup_seconds", "max_seconds")}
    result: dict = {"status": "ok", "reason": None}
    phase = "start"
    try:
        load_runtime_plugins()
        data = EvalFrames(job["testset"])
        rss_before = _rss_bytes()
        peak_before = _peak_rss_bytes()  # where VmRSS cannot be read

        phase = "load"
        _phase(phase)
        t0 = time.perf_counter()
        try:
            predictor = contract_predictor(job["artifact"], job["runtime"], job["threads"], job.get("contract"),
                                           job.get("arch"), job.get("arch_args"))
        except RuntimeUnavailable as exc:
            # the artifact exists but its runtime is missing here: the evaluation failed (variants a
            # machine cannot produce at all are marked skipped by their producer instead)
            return {"status": "failed", "reason": "runtime unavailable: " + one_line(exc)}
        result["load_seconds"] = round(time.perf_counter() - t0, 3)
        try:
            result["predictor"] = predictor.describe()
        except Exception:  # noqa: BLE001 - description is informative only
            result["predictor"] = {"runtime": job["runtime"]}
        t = int(getattr(predictor, "sequence_length", 1) or 1)
        if t > data.windows.shape[1]:
            raise ValueError(f"the model needs {t} frames per sample; the test set was prepared with "
                             f"{data.windows.shape[1]}")

        phase = "first call"
        _phase(phase)
        x1 = data.inputs([0], t)
        _check_output(predictor.predict(x1), 1)

        phase = "latency"
        _phase(phase)
        latency = {"model": time_calls(lambda: predictor.predict(x1), **timing).to_json()}
        result["latency_ms"] = latency

        phase = "brain step"
        _phase(phase)
        camera = data.camera
        geometry = predictor.contract.geometry
        history: deque = deque(maxlen=t)

        def brain_step():
            obs = crop_resize(camera, geometry)
            if t > 1:
                if not history:
                    history.extend([obs] * t)
                history.append(obs)
                batch = np.stack(history)[None]
            else:
                batch = obs[None]
            return predictor.predict(batch)

        _check_output(brain_step(), 1)
        seconds = sample_calls(brain_step, **timing)
        latency["brain_step"] = summarize(seconds).to_json()
        samples = [round(s * 1000.0, 5) for s in seconds]
        # evenly thinned to at most MAX_SAMPLES, in call order: reproducible drives draw from these
        result["brain_step_samples_ms"] = samples[::max(1, -(-len(samples) // MAX_SAMPLES))]

        phase = "throughput"
        _phase(phase)
        bs = int(job["throughput_batch"])
        xb = data.inputs(np.arange(bs) % len(data), t)
        _check_output(predictor.predict(xb), bs)
        stats = time_calls(lambda: predictor.predict(xb), min_calls=job["throughput_min_calls"],
                           min_seconds=job["min_seconds"], warmup_calls=3,
                           warmup_seconds=job["warmup_seconds"], max_seconds=job["max_seconds"])
        result["throughput"] = {"batch": bs, "fps": bs / (stats.mean_ms / 1000.0), "calls": stats.n,
                                "batch_p50_ms": stats.p50_ms, "batch_mean_ms": stats.mean_ms}
        del xb

        peak = _peak_rss_bytes()
        before = rss_before if rss_before is not None else peak_before
        result["memory_mb"] = {"rss_before_load": _mb(before), "peak_rss": _mb(peak),
                               "model_share": _mb(max(0, peak - before))}

        phase = "accuracy"
        _phase(phase)
        preds = []
        for start in range(0, len(data), bs):
            idx = np.arange(start, min(start + bs, len(data)))
            preds.append(_check_output(predictor.predict(data.inputs(idx, t)), len(idx)))
        pred = np.concatenate(preds).astype(np.float32)
        result["input_contract"] = predictor.contract.name
        result["outputs_out_of_range_share"] = round(out_of_range_share(pred), 4)
        if not np.isfinite(pred).all():
            raise ValueError(f"{int((~np.isfinite(pred)).any(axis=1).sum())} of {len(pred)} predictions "
                             "are NaN or infinite")
        with atomic_path(job["predictions"]) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, pred, allow_pickle=False)

        phase = "params"
        _phase(phase)
        try:
            result["params"] = count_params(Path(job["artifact"]), job["runtime"])
        except Exception as exc:  # noqa: BLE001 - counts are optional; say why they are missing
            result["params"] = None
            result["params_error"] = one_line(exc)
        return result
    except Exception as exc:  # noqa: BLE001 - every error is this variant's failure, never the run's
        return {"status": "failed", "reason": f"{phase}: {one_line(exc)}", **{k: v for k, v in result.items()
                                                                               if k not in ("status", "reason")}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m pilotopt.evaluate.worker JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    t0 = time.perf_counter()
    result = measure(job)
    result["measure_seconds"] = round(time.perf_counter() - t0, 3)
    result["pid"] = os.getpid()

    write_json(job["result"], result)
    _phase("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
