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
