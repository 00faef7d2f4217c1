import csv
import json

import numpy as np
import pytest
from PIL import Image

from pilotopt.errors import BadInputError
from pilotopt.sim.dataset import DatasetConfig, NoiseConfig, file_digest, generate_dataset

SMALL = dict(circuits=("simple",), directions=("clockwise",), laps=0.06)


def test_format_is_deeplearningstudio(tmp_path):
    cfg = DatasetConfig(**{**SMALL, "directions": ("clockwise", "anticlockwise")})
    summary = generate_dataset(tmp_path, cfg, workers=1)
    assert sorted(summary["recordings"]) == ["simple_anticlockwise_1", "simple_clockwise_1"]
    rec = tmp_path / "simple_clockwise_1"
    with (rec / "data.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["image_name", "v", "w", "timestamp"]
    assert len(rows) > 20
    for i, row in enumerate(rows):
        assert row["image_name"] == f"{i}.png"
        assert 6.5 <= float(row["v"]) <= 24.0 and -7.1 <= float(row["w"]) <= 7.1
        assert float(row["timestamp"]) == pytest.approx(i * 0.05)
    img = Image.open(rec / f"{len(rows) - 1}.png")
    assert img.size == (640, 480) and img.mode == "RGB"
    meta = json.loads((rec / "meta.json").read_text())
    assert meta["circuit"] == "simple" and meta["direction"] == "clockwise" and meta["frames"] == len(rows)
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_same_seed_same_files_and_different_seed_differs(tmp_path):
    cfg = DatasetConfig(**SMALL, seed=7)
    generate_dataset(tmp_path / "a", cfg, workers=1)
    generate_dataset(tmp_path / "b", cfg, workers=2)  # also across process pools
    generate_dataset(tmp_path / "c", DatasetConfig(**SMALL, seed=8), workers=1)
    a, b, c = (file_digest(tmp_path / x / "simple_clockwise_1") for x in "abc")
    assert a == b
    assert a != c


def test_noise_perturbs_the_drive_but_labels_stay_clean(tmp_path):
    clean = DatasetConfig(**SMALL, noise=NoiseConfig(rate=0.0))
    noisy = DatasetConfig(**SMALL, noise=NoiseConfig(rate=4.0, w_amplitude=1.5))
    generate_dataset(tmp_path / "clean", clean, workers=1)
    generate_dataset(tmp_path / "noisy", noisy, workers=1)

    def w_labels(root):
        with (root / "simple_clockwise_1" / "data.csv").open() as fh:
            return np.array([float(r["w"]) for r in csv.DictReader(fh)])

    wc, wn = w_labels(tmp_path / "clean"), w_labels(tmp_path / "noisy")
    n = min(len(wc), len(wn))
    # the noisy drive leaves the line, so the expert's (clean) labels steer back: they differ
    assert np.abs(wc[:n] - wn[:n]).max() > 0.1
    # and the labels are the expert's: bounded like the real data, no injected offsets of 1.5 rad/s
    assert np.all(np.abs(wn) <= 7.1)


def test_finished_recordings_are_not_redone(tmp_path):
    cfg = DatasetConfig(**SMALL)
    generate_dataset(tmp_path, cfg, workers=1)
    stamp = (tmp_path / "simple_clockwise_1" / "data.csv").stat().st_mtime_ns
    summary = generate_dataset(tmp_path, cfg, workers=1)
    assert summary["generated"] == 0 and summary["skipped_existing"] == 1
    assert (tmp_path / "simple_clockwise_1" / "data.csv").stat().st_mtime_ns == stamp
    # an incomplete recording (no meta.json) is regenerated
    (tmp_path / "simple_clockwise_1" / "meta.json").unlink()
    assert generate_dataset(tmp_path, cfg, workers=1)["generated"] == 1


def test_bad_dataset_settings(tmp_path):
    with pytest.raises(BadInputError, match="unknown circuit"):
        generate_dataset(tmp_path, DatasetConfig(circuits=("nowhere",)))
    with pytest.raises(BadInputError, match="laps"):
        generate_dataset(tmp_path, DatasetConfig(circuits=("simple",), laps=0))
