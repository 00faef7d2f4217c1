import csv
import glob
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import pilotopt.sim.dataset as dataset_mod
from pilotopt.data.formats import find_recordings
from pilotopt.sim.recording import recording_meta_path
from pilotopt.data.validate import Problems
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
    # the recording holds only its frames and data.csv; pilotopt's metadata sits beside it
    assert sorted(os.listdir(rec)) == sorted([f"{i}.png" for i in range(len(rows))] + ["data.csv"])
    meta_path = tmp_path / ".pilotopt" / "simple_clockwise_1.meta.json"
    assert recording_meta_path(rec) == meta_path
    meta = json.loads(meta_path.read_text())
    assert meta["circuit"] == "simple" and meta["direction"] == "clockwise" and meta["frames"] == len(rows)
    assert meta["recording"] == "simple_clockwise_1"
    assert json.loads((tmp_path / ".pilotopt" / "dataset.json").read_text())["recordings"] == summary["recordings"]
    assert sorted(os.listdir(tmp_path)) == [".pilotopt", "simple_anticlockwise_1", "simple_clockwise_1"]
    assert not list(tmp_path.rglob(".*tmp*"))  # nothing half-written left behind


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
    # an incomplete recording (folder without its metadata) is regenerated
    recording_meta_path(tmp_path / "simple_clockwise_1").unlink()
    assert generate_dataset(tmp_path, cfg, workers=1)["generated"] == 1
    # and so is metadata without its folder
    shutil.rmtree(tmp_path / "simple_clockwise_1")
    assert generate_dataset(tmp_path, cfg, workers=1)["generated"] == 1
    assert generate_dataset(tmp_path, cfg, workers=1)["generated"] == 0


def test_bad_dataset_settings(tmp_path):
    with pytest.raises(BadInputError, match="unknown circuit"):
        generate_dataset(tmp_path, DatasetConfig(circuits=("nowhere",)))
    with pytest.raises(BadInputError, match="laps"):
        generate_dataset(tmp_path, DatasetConfig(circuits=("simple",), laps=0))


# --- read by DeepLearningStudio's own readers ----------------------------------------------------
# Checked against JdeRobot/DeepLearningStudio, Formula1-FollowLine/tensorflow/PilotNet/utils/processing.py
# (get_images_and_annotations; PilotNetx3, memDCCP and DeepestLSTMTinyPilotNet list a recording the
# same way but take the frame name at a fixed path depth, split('/')[6]) and
# Formula1-FollowLine/pytorch/PilotNet/utils/processing.py (load_data, used by PilotNetDataset).
# Neither lists the dataset root: the TensorFlow one joins fixed recording names to --data_dir (which
# ends in '/'), the PyTorch one takes each recording folder as its own --data_dir.


def dls_int_stem(path):
    # their sort key: the last path component up to '.png', as an integer (ValueError otherwise)
    return int(path.split("/")[-1].split(".png")[0])


def dls_rows_in_file_order(csv_path):
    """(v, w) per data.csv row in file order: the TF reader's pandas.read_csv(...)['v'/'w'].tolist(),
    the PyTorch reader's csv.DictReader; neither looks at image_name."""
    try:
        import pandas
    except ImportError:
        with open(csv_path, newline="") as fh:
            return [(float(r["v"]), float(r["w"])) for r in csv.DictReader(fh)]
    table = pandas.read_csv(csv_path)
    return [(float(v), float(w)) for v, w in zip(table["v"].tolist(), table["w"].tolist())]


def dls_imread_rgb(path):
    import cv2

    img = cv2.imread(path)
    assert img is not None, f"cv2.imread cannot read {path}"  # their cvtColor would fail on None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def dls_tensorflow_read(data_dir, recording):
    """One recording read the way the TF reader does: glob.glob(folder + '*') minus the exact path
    data_dir + recording + '/data.csv', sorted by integer stem, cv2.imread each, paired by position
    with the data.csv rows."""
    paths = [p for p in glob.glob(data_dir + recording + "/*") if p != data_dir + recording + "/data.csv"]
    paths = sorted(paths, key=dls_int_stem)
    images = [dls_imread_rgb(p) for p in paths]
    return paths, images, dls_rows_in_file_order(data_dir + recording + "/data.csv")


def dls_pytorch_read(folder):
    """One recording read the way the PyTorch reader does: glob.glob(folder + '*.png') (folder given
    with its trailing '/'), sorted by integer stem, paired by position with the data.csv rows."""
    paths = sorted(glob.glob(folder + "*.png"), key=dls_int_stem)
    images = [dls_imread_rgb(p) for p in paths]
    return paths, images, dls_rows_in_file_order(folder + "data.csv")


def pilotopt_labels(root):
    """{frame path: (v, w)} and {recording name: (circuit, direction)} as pilotopt's loader reads them."""
    labels, circuits = {}, {}
    for rec in find_recordings([root], Problems()):
        circuits[rec.path.name] = (rec.circuit, rec.direction)
        for frame, vw in zip(rec.frames, rec.vw):
            labels[os.path.realpath(frame)] = (float(vw[0]), float(vw[1]))
    return labels, circuits


def assert_same_pairing(paths, images, rows, ours):
    assert len(paths) == len(rows) > 20  # they never check this: a mismatch would shift every label
    for path, img, (v, w) in zip(paths, images, rows):
        assert img.shape == (480, 640, 3)
        assert ours[os.path.realpath(path)] == pytest.approx((v, w), abs=1e-9), path


def test_deeplearningstudio_readers_load_it_unchanged(tmp_path):
    root = tmp_path / "data"
    generate_dataset(root, DatasetConfig(**{**SMALL, "directions": ("clockwise", "anticlockwise")}), workers=1)
    ours, circuits = pilotopt_labels(root)
    assert circuits == {"simple_clockwise_1": ("simple", "clockwise"),
                        "simple_anticlockwise_1": ("simple", "anticlockwise")}
    data_dir = str(root) + "/"
    # a glob of the root, as a user listing recordings for --data_dir would do, sees only recordings
    assert sorted(glob.glob(data_dir + "*")) == [data_dir + "simple_anticlockwise_1",
                                                data_dir + "simple_clockwise_1"]
    seen = 0
    for name in ("simple_clockwise_1", "simple_anticlockwise_1"):
        assert_same_pairing(*dls_tensorflow_read(data_dir, name), ours)
        assert_same_pairing(*dls_pytorch_read(data_dir + name + "/"), ours)
        seen += len(glob.glob(data_dir + name + "/*.png"))
    assert seen == len(ours)  # every frame pilotopt loads, they load too


def test_old_layout_with_meta_json_inside_still_reads_and_is_moved_out(tmp_path):
    root = tmp_path / "data"
    cfg = DatasetConfig(**SMALL)
    generate_dataset(root, cfg, workers=1)
    rec = root / "simple_clockwise_1"
    data_csv = (rec / "data.csv").read_bytes()
    # the layout pilotopt wrote before: meta.json inside the recording, dataset.json in the root
    shutil.move(recording_meta_path(rec), rec / "meta.json")
    shutil.move(root / ".pilotopt" / "dataset.json", root / "dataset.json")
    shutil.rmtree(root / ".pilotopt")
    # ... which DeepLearningStudio's TF reader cannot sort (proof this emulation would catch it)
    with pytest.raises(ValueError, match="meta"):
        dls_tensorflow_read(str(root) + "/", rec.name)

    # pilotopt still reads it, circuit from that meta.json even when the folder name says nothing
    renamed = root / "recording_7"
    rec.rename(renamed)
    _, circuits = pilotopt_labels(root)
    assert circuits == {"recording_7": ("simple", "clockwise")}
    # an in-folder meta.json travels with its folder, so it wins over metadata beside it
    meta = json.loads((renamed / "meta.json").read_text())
    recording_meta_path(renamed).parent.mkdir()
    recording_meta_path(renamed).write_text(json.dumps({**meta, "circuit": "monaco"}))
    assert pilotopt_labels(root)[1] == {"recording_7": ("simple", "clockwise")}
    shutil.rmtree(root / ".pilotopt")
    renamed.rename(rec)

    # the next `sim dataset` run keeps the recording (same settings) and moves its metadata out
    summary = generate_dataset(root, cfg, workers=1)
    assert summary["generated"] == 0 and summary["skipped_existing"] == 1
    assert not (rec / "meta.json").exists() and not (root / "dataset.json").exists()
    assert json.loads(recording_meta_path(rec).read_text())["settings_hash"] == meta["settings_hash"]
    assert (rec / "data.csv").read_bytes() == data_csv
    assert_same_pairing(*dls_tensorflow_read(str(root) + "/", rec.name), pilotopt_labels(root)[0])


def test_metadata_beside_the_folder_is_what_the_loader_reads(tmp_path):
    root = tmp_path / "data"
    generate_dataset(root, DatasetConfig(**SMALL), workers=1)
    meta_path = recording_meta_path(root / "simple_clockwise_1")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "circuit": "monaco", "direction": "anticlockwise"}))
    assert pilotopt_labels(root)[1] == {"simple_clockwise_1": ("monaco", "anticlockwise")}
    meta_path.write_text("{not json")
    with pytest.raises(BadInputError, match="simple_clockwise_1.meta.json"):
        pilotopt_labels(root)
    meta_path.unlink()  # no metadata: the circuit comes from the folder name
    assert pilotopt_labels(root)[1] == {"simple_clockwise_1": ("simple", "clockwise")}


def test_a_crash_never_leaves_metadata_that_disagrees_with_its_folder(tmp_path, monkeypatch):
    root = tmp_path / "data"
    rec = root / "simple_clockwise_1"
    generate_dataset(root, DatasetConfig(**SMALL, seed=7), workers=1)  # 7 and 8 drive differently
    old_csv, old_files = (rec / "data.csv").read_bytes(), file_digest(rec)
    new_cfg = DatasetConfig(**SMALL, seed=8)

    # killed while writing frames: the old folder stays whole, its old metadata is already gone
    real_encode, calls = dataset_mod.encode_png, []

    def encode_then_die(frame, level):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_encode(frame, level)

    monkeypatch.setattr(dataset_mod, "encode_png", encode_then_die)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, new_cfg, workers=1)
    monkeypatch.undo()
    assert (rec / "data.csv").read_bytes() == old_csv and not recording_meta_path(rec).exists()
    assert not list(root.rglob(".*tmp*"))

    # killed after the new folder is in place but before its metadata: folder without metadata
    real_write_json = dataset_mod.write_json

    def die_on_metadata(target, obj):
        if str(target).endswith(".meta.json"):
            raise KeyboardInterrupt
        return real_write_json(target, obj)

    monkeypatch.setattr(dataset_mod, "write_json", die_on_metadata)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, new_cfg, workers=1)
    monkeypatch.undo()
    assert file_digest(rec) != old_files and not recording_meta_path(rec).exists()
    # either way the loader still reads the folder (circuit from its name) ...
    assert pilotopt_labels(root)[1] == {"simple_clockwise_1": ("simple", "clockwise")}
    # ... and the generator treats it as incomplete: written again, then skipped
    assert generate_dataset(root, new_cfg, workers=1)["generated"] == 1
    assert json.loads(recording_meta_path(rec).read_text())["dataset_seed"] == 8
    assert generate_dataset(root, new_cfg, workers=1)["generated"] == 0
