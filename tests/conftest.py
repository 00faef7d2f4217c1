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
