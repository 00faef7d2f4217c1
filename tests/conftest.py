import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A tiny recorded dataset (nurburgring for training, simple held out), generated once per
    session and only read by the tests that share it."""
    from pilotopt.sim.dataset import DatasetConfig, generate_dataset

    data = tmp_path_factory.mktemp("tiny_data") / "data"
    generate_dataset(data, DatasetConfig(circuits=("nurburgring", "simple"), laps=0.05), workers=1)
    return data


@pytest.fixture(scope="session")
def dls(tmp_path_factory):
    """Every artifact a DeepLearningStudio / Behavior Metrics user has (tests/_dls_models.py), with the
    preset and architecture it needs; built once per test worker (7 s) and only read."""
    from _dls_models import build_dls_models

    return build_dls_models(tmp_path_factory.mktemp("dls_models"))


@pytest.fixture(scope="module")
def optimized(request, dls, tiny_data, tmp_path_factory):
    """The DLS artifacts of the asking file's OWN_CASES, optimized with their presets and evaluated."""
    from _dls_models import optimize_and_evaluate

    return optimize_and_evaluate(request.module.OWN_CASES, dls, tiny_data, tmp_path_factory)


# The costliest files first (seconds on 2 cores, `pytest --junitxml`, summed per file; refresh
# when a file's cost changes a lot). `make test` runs whole files per worker (--dist loadfile) in
# collection order (--no-loadscope-reorder), so this is longest-first scheduling: with xdist's
# default order (most tests first) one worker sat idle for the last ~90 s.
COSTLIEST_FIRST = (
    "test_search.py",  # 226 (the killed search resumes on Ray, reading the reference back as cached)
    "test_techniques_collab.py",  # 169
    "test_own_models_cli.py",  # 166
    "test_runtimes.py",  # 164
    "test_own_models.py",  # 124
    "test_pipeline_run.py",  # 120 (one tiny run on a local Ray cluster: a node killed, the run killed, resumed)
    "test_techniques_portable.py",  # 112
    "test_own_models_tf.py",  # 99
    "test_targets.py",  # 99 (an edge venv, a real sshd, a second local Ray node)
    "test_techniques_tfmot.py",  # 96
    "test_deploy.py",  # 94 (variants of five techniques, a fresh venv with the edge wheel)
    "test_chains.py",  # 94
    "test_techniques_torch_quant.py",  # 76
    "test_bench_techniques.py",  # 70
    "test_train.py",  # 67
    "test_variant_record.py",  # 65
    "test_evaluate.py",  # 64
    "test_cli.py",  # 61
    "test_techniques.py",  # 58
    "test_executorch.py",  # 47
    "test_techniques_torch_speed.py",  # 37
    "test_bench_machine.py",  # 36
    "test_drive_jobs.py",  # 35
    "test_executors.py",  # 33
    "test_models.py",  # 28
    "test_docs.py",  # 27
    "test_ros.py",  # 26 (mostly waiting on a 15 s drive over ROS: little CPU)
    "test_drive_many.py",  # 25 (K cars against one at a time; the closed-loop bench in subprocesses)
    "test_report.py",  # 18
    "test_deploy_convert.py",  # 17
    "test_closed_loop_science.py",  # 13
    "test_bench_scaling.py",  # 12
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order stays
