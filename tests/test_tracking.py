"""Experiment tracking: what the MLflow tracker logs can be read back; disabled does nothing."""

import builtins
import math

import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.pipeline.tracking import MISSING, Tracker, make_tracker

MLFLOW_MISSING = "mlflow is not installed (pip install 'pilotopt[mlflow]')"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: creating its database (MLflow's schema migrations) takes seconds."""
    pytest.importorskip("mlflow", reason=MLFLOW_MISSING)
    return tmp_path_factory.mktemp("out") / "mlruns"


def test_mlflow_tracker_logs_params_metrics_and_artifacts(tmp_path, store):
    from mlflow.tracking import MlflowClient

    report = tmp_path / "report.md"
    report.write_text("# report\n")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "simple_cw.png").write_bytes(b"png")

    untouched = tmp_path / "untouched"
    assert make_tracker(True, untouched).enabled and not untouched.exists()  # nothing created before a run
    tracker = make_tracker(True, store)
    with tracker.start_run("pilotopt-smoke"):
        run_id = tracker.run_id
        tracker.log_params({"profile": "smoke", "epochs": 2, "frameworks": "torch,tf"})
        tracker.log_metrics({"torch_fp32.mse": 0.25, "torch_fp32.p50_ms": np.float32(1.5),
                             "torch_int8+prune.simple.cw.completed_pct": 100, "absent": None}, step=1)
        tracker.log_metrics({"torch_fp32.mse": 0.125}, step=2)
        tracker.log_artifact(report)
        tracker.log_artifact(plots)

    client = MlflowClient(tracker.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "pilotopt-smoke" and run.info.status == "FINISHED"
    assert run.data.params == {"profile": "smoke", "epochs": "2", "frameworks": "torch,tf"}
    # latest value per metric; a name MLflow would refuse ('+') is made safe; None is left out
    assert run.data.metrics == {"torch_fp32.mse": 0.125, "torch_fp32.p50_ms": 1.5,
                                "torch_int8_prune.simple.cw.completed_pct": 100.0}
    history = client.get_metric_history(run_id, "torch_fp32.mse")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.25), (2, 0.125)]
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["plots", "report.md"]
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/simple_cw.png"]
    # the store (database and artifacts) is under the output folder, not the working directory
    assert (store / "mlflow.db").is_file()
    assert (store / "artifacts").is_dir() and run.info.artifact_uri.startswith((store / "artifacts").as_uri())


def test_a_failing_block_marks_the_run_failed(store):
    from mlflow.tracking import MlflowClient

    tracker = make_tracker(True, store)
    with pytest.raises(ZeroDivisionError):
        with tracker.start_run("broken"):
            run_id = tracker.run_id
            tracker.log_metrics({"x": math.nan})
            1 / 0
    run = MlflowClient(tracker.tracking_uri).get_run(run_id)
    assert run.info.status == "FAILED" and math.isnan(run.data.metrics["x"])


def test_disabled_tracker_does_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "mlruns"
    tracker = make_tracker(False, store)
    assert type(tracker) is Tracker and not tracker.enabled
    with tracker.start_run("x") as t:
        t.log_params({"a": 1})
        t.log_metrics({"m": 1.0}, step=3)
        t.log_artifact(tmp_path / "missing.txt")  # not even looked at
    assert list(tmp_path.iterdir()) == []  # no store, no ./mlruns


def test_enabled_without_mlflow_is_a_one_line_error(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(BadInputError) as err:
        make_tracker(True, tmp_path / "mlruns")
    assert str(err.value) == MISSING == "--mlflow needs mlflow: pip install 'pilotopt[mlflow]'"
    assert make_tracker(False, tmp_path / "mlruns").enabled is False  # disabled never needs it
