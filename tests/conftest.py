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


@pytest.fixture(scope="module")
def dls(tmp_path_factory):
    """Every artifact a DeepLearningStudio / Behavior Metrics user has (tests/_dls_models.py), with the
    preset and architecture it needs; built once per test file that asks."""
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
    "test_search.py",  # 303 (the Ray and killed searches read the reference back as cached)
    "test_runtimes.py",  # 193
    "test_own_models.py",  # 160
    "test_techniques_collab.py",  # 150
    "test_own_models_cli.py",  # 149
    "test_pipeline_run.py",  # 140
    "test_pipeline_ray.py",  # 163 before its stage jobs reused Ray workers, 83-86 alone after (a local Ray cluster, a node killed, a rerun)
    "test_targets.py",  # 130 (an edge venv, a real sshd, a second local Ray node)
    "test_techniques_portable.py",  # 129
    "test_deploy.py",  # 104 (variants of five techniques, a fresh venv with the edge wheel)
    "test_own_models_tf.py",  # 96
    "test_techniques_tfmot.py",  # 93
    "test_chains.py",  # 86
    "test_techniques_torch_quant.py",  # 72
    "test_cli.py",  # 68
    "test_bench_techniques.py",  # 61
    "test_evaluate.py",  # 58
    "test_variant_record.py",  # 52
    "test_executorch.py",  # 49
    "test_techniques.py",  # 48
    "test_train.py",  # 42
    "test_ros.py",  # 41 (mostly waiting on a 30 s drive over ROS: little CPU)
    "test_techniques_torch_speed.py",  # 36
    "test_drive_jobs.py",  # 34
    "test_executors.py",  # 29
    "test_bench_machine.py",  # 27
    "test_docs.py",  # 24
    "test_models.py",  # 23
    "test_drive_many.py",  # 18 (K cars against one at a time; the closed-loop bench in subprocesses)
    "test_deploy_convert.py",  # 14
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order stays
