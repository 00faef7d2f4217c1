"""Optional experiment tracking with MLflow, to a local store under the output folder (no server).

The store is SQLite (`<store>/mlflow.db`) with artifacts in `<store>/artifacts/`: MLflow 3 keeps
its plain-folder store only behind an opt-out flag, in maintenance mode, while SQLite works with
mlflow-skinny plus SQLAlchemy and Alembic (the `mlflow` extra). Browse it with a full MLflow:
`mlflow ui --backend-store-uri sqlite:///<store>/mlflow.db`.

Everything goes through an `MlflowClient` bound to that store, never MLflow's process-global
"active run", so a tracker neither sees nor changes any other MLflow use in the same process.
"""

from __future__ import annotations

import numbers
import re
import time
from pathlib import Path
from typing import Any

from pilotopt.errors import BadInputError

MISSING = "--mlflow needs mlflow: pip install 'pilotopt[mlflow]'"
EXPERIMENT = "pilotopt"
_MAX_PARAMS, _MAX_METRICS = 100, 1000  # MLflow's limits for one log_batch call
_MAX_KEY, _MAX_VALUE = 250, 6000


class Tracker:
    """The disabled tracker: every call does nothing, so the pipeline logs unconditionally.
    `start_run(name)` returns the tracker itself, a context manager that ends the run (FAILED if
    the block raised)."""

    enabled = False

    def start_run(self, name: str) -> Tracker:
        return self

    def end_run(self, status: str = "FINISHED") -> None:
        return None

    def log_params(self, params: dict[str, Any]) -> None:
        return None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        return None

    def log_artifact(self, path: Path | str) -> None:
        return None

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.end_run("FAILED" if exc_type is not None else "FINISHED")


class MlflowTracker(Tracker):
    """Logs to the local MLflow store in `store`; the store is created at the first run."""

    enabled = True

    def __init__(self, store: Path, experiment: str = EXPERIMENT) -> None:
        self.store = Path(store).resolve()
        self.experiment = experiment
        self.tracking_uri = f"sqlite:///{self.store / 'mlflow.db'}"
        self.run_id: str | None = None
        self._client = None

    def start_run(self, name: str) -> MlflowTracker:
        from mlflow.tracking import MlflowClient

        if self.run_id is not None:
            self.end_run()
        self.store.mkdir(parents=True, exist_ok=True)
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        exp = self._client.get_experiment_by_name(self.experiment)
        # Artifacts beside the database, not MLflow's default ./mlruns in the working directory.
        exp_id = exp.experiment_id if exp is not None else self._client.create_experiment(
            self.experiment, artifact_location=(self.store / "artifacts").as_uri())
        self.run_id = self._client.create_run(exp_id, run_name=name).info.run_id
        return self

    def end_run(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self._client.set_terminated(self.run_id, status)
            self.run_id = None

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), str(v)[:_MAX_VALUE]) for k, v in params.items()]
        for i in range(0, len(items), _MAX_PARAMS):
            self._client.log_batch(self._run(), params=items[i:i + _MAX_PARAMS])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Numbers only (NumPy scalars too): None, a metric that does not apply, is left out rather
        than logged as 0."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_key(k), float(v), now, step or 0) for k, v in metrics.items()
                 if isinstance(v, numbers.Real) and not isinstance(v, bool)]
        for i in range(0, len(items), _MAX_METRICS):
            self._client.log_batch(self._run(), metrics=items[i:i + _MAX_METRICS])

    def log_artifact(self, path: Path | str) -> None:
        """A file, or a folder's contents under the folder's name."""
        path = Path(path)
        if path.is_dir():
            self._client.log_artifacts(self._run(), str(path), artifact_path=path.name)
        else:
            self._client.log_artifact(self._run(), str(path))

    def _run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MlflowTracker: call start_run(name) before logging")
        return self.run_id


def _key(name: Any) -> str:
    """MLflow accepts only [A-Za-z0-9_ ./-:] in names; variant and circuit names may hold more."""
    return re.sub(r"[^\w.\-/ :]", "_", str(name))[:_MAX_KEY] or "_"


def make_tracker(enabled: bool, store: Path) -> Tracker:
    """The MLflow tracker for `store` when enabled, else the no-op tracker. Checks the packages at
    once, so `--mlflow` without them fails in one line before any work; creates nothing yet."""
    if not enabled:
        return Tracker()
    try:
        import alembic  # noqa: F401  (the SQLite store's schema migrations)
        import mlflow  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise BadInputError(MISSING) from None
    return MlflowTracker(store)
