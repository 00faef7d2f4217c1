"""DeepLearningStudio layouts beyond `data.csv` with image names: a data.csv without image_name
(rows pair with frames in integer-name order), the TensorFlow `Train/` + `Test/` split with its
not-quite-JSON train.json/test.json, labels outside the normalization bounds, and data without any
of the requested test circuits.

Every frame is one solid colour that encodes its integer name, so a loaded sample shows which file
it came from and whether it was paired with the right label."""

import csv
import random
import warnings

import numpy as np
import pytest
from PIL import Image

from pilotopt.data import DataConfig, load_splits
from pilotopt.data.formats import parse_loose_objects
from pilotopt.data.validate import DataWarning
from pilotopt.errors import BadInputError
from pilotopt.preprocess import normalize_labels


def colour(k):
    return (10 * k + 5, 250 - 10 * k, 77)


def write_solid(path, k):
    Image.fromarray(np.full((480, 640, 3), colour(k), np.uint8)).save(path, compress_level=1)


def frame_of(x):
    """The integer name of the frame a loaded (66, 200, 3) sample was decoded from."""
    r, g, b = (int(c) for c in x[33, 100])
    k = (r - 5) // 10
    assert (r, g, b) == colour(k), f"not a solid test frame: {(r, g, b)}"
    return k


def label(k):
    """Row k's physical (v, w): distinct per row, inside the bounds."""
    return 7.0 + 1.25 * k, -2.0 + 0.35 * k


def write_frames(folder, n, seed=0):
    """Frames 0.png .. n-1.png, written in shuffled order so directory order is not numeric."""
    folder.mkdir(parents=True, exist_ok=True)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    for k in order:
        write_solid(folder / f"{k}.png", k)


def write_csv_in_order(folder, n, columns=("v", "w", "timestamp"), rows=None):
    """A DLS recording whose data.csv has no image_name: row k labels frame k.png."""
    write_frames(folder, n)
    with (folder / "data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for k in range(n if rows is None else rows):
            v, w = label(k)
            writer.writerow([{"v": v, "w": w, "timestamp": 0.05 * k}[c] for c in columns])
    return folder


def cfg_for(root, tmp_path, **kw):
    base = dict(roots=[root], test_circuits=(), val_fraction=0.0, flip=False, oversample=1,
                cache_dir=tmp_path / "cache", workers=1)
    return DataConfig(**{**base, **kw})


def assert_paired(split, n_expected):
    x, y = split.arrays()
    assert len(x) == n_expected
    for sample, got in zip(x, y):
        k = frame_of(sample)
        np.testing.assert_allclose(got, normalize_labels(*label(k)), atol=1e-6)
    return [frame_of(sample) for sample in x]


# --- data.csv without image_name ---------------------------------------------------------------------

@pytest.mark.parametrize("columns", [("v", "w", "timestamp"), ("timestamp", "w", "v"), ("v", "w")])
def test_csv_without_image_name_pairs_rows_with_frames_in_numeric_order(tmp_path, columns):
    root = tmp_path / "data"
    write_csv_in_order(root / "monaco_clockwise_1", 12, columns=columns)
    assert sorted(f"{k}.png" for k in range(12))[2] == "10.png"  # text order would pair row 2 with 10.png

    splits = load_splits(cfg_for(root, tmp_path))
    assert assert_paired(splits.train, 12) == list(range(12))  # sample k is frame k.png with row k's label
    assert splits.train.circuits == ["monaco"]


def test_csv_without_image_name_count_mismatch_is_one_line_naming_the_folder(tmp_path):
    root = tmp_path / "data"
    folder = write_csv_in_order(root / "monaco_clockwise_1", 6, rows=5)  # 6 frames, 5 rows
    with pytest.raises(BadInputError) as err:
        load_splits(cfg_for(root, tmp_path))
    message = str(err.value)
    assert "\n" not in message and str(folder) in message
    assert "5 labels" in message and "6 frames" in message and "--skip-bad" in message

    write_csv_in_order(root / "nurburgring_clockwise_1", 4)
    splits = load_splits(cfg_for(root, tmp_path, skip_bad=True))
    assert splits.summary["skipped"]["recordings"] == 1
    assert splits.summary["skipped"]["reasons"] == {"count mismatch": 1}
    assert splits.train.circuits == ["nurburgring"] and assert_paired(splits.train, 4) == [0, 1, 2, 3]


def test_csv_without_image_name_rejects_frames_not_named_by_an_integer(tmp_path):
    root = tmp_path / "data"
    folder = write_csv_in_order(root / "monaco_clockwise_1", 4)
    write_solid(folder / "cover.png", 0)
    with pytest.raises(BadInputError, match=r"monaco_clockwise_1: frame 'cover.png' is not named by an integer") as err:
        load_splits(cfg_for(root, tmp_path))
    assert "\n" not in str(err.value)


def test_csv_without_image_name_keeps_pairing_past_a_bad_row(tmp_path):
    root = tmp_path / "data"
    folder = write_csv_in_order(root / "monaco_clockwise_1", 5)
    lines = (folder / "data.csv").read_text().splitlines()
    lines[3] = "fast,0.1,0.1"  # row for 2.png
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInputError, match=r"data.csv line 4 \(frame 2.png\): v is 'fast', not a number"):
        load_splits(cfg_for(root, tmp_path))
    splits = load_splits(cfg_for(root, tmp_path, skip_bad=True))
    assert assert_paired(splits.train, 4) == [0, 1, 3, 4]  # 3.png still gets row 3, not row 2


# --- Train/ + Test/ with train.json / test.json ------------------------------------------------------

def dls_tf_object(k, order):
    """One object as DeepLearningStudio's TensorFlow split writes it: bare words, w before v."""
    v, w = label(k)
    fields = {"class3": "moderate", "class2": "slightly_right", "classification": '"right"', "w": f"{w}",
              "v": f"{v:g}" if k % 2 else f"{v}"}
    return "{" + ", ".join(f'"{key}": {fields[key]}' for key in order) + "}"


def write_tf_split(root, name, n, seed):
    write_frames(root / name / "Images", n, seed)
    v_last = ["class3", "class2", "classification", "w", "v"]
    v_first = ["v", "class3", "w", "classification", "class2"]
    text = "".join(dls_tf_object(k, v_last if k % 3 else v_first) for k in range(n))  # no separators
    (root / name / f"{name.lower()}.json").write_text(text)
    return text


def test_train_test_json_layout_loads_with_the_right_labels(tmp_path):
    root = tmp_path / "dls"
    text = write_tf_split(root, "Train", 11, seed=1)  # 10.png must come after 9.png
    write_tf_split(root, "Test", 4, seed=2)
    assert '"class3": moderate' in text and "}{" in text
    with pytest.raises(ValueError):
        __import__("json").loads(text)  # really not JSON

    splits = load_splits(cfg_for(root, tmp_path, test_circuits="test"))
    assert splits.train.circuits == ["train"] and splits.test.circuits == ["test"]
    assert assert_paired(splits.train, 11) == list(range(11))
    assert assert_paired(splits.test, 4) == list(range(4))


def test_train_test_json_count_mismatch_names_the_folder(tmp_path):
    root = tmp_path / "dls"
    write_tf_split(root, "Train", 5, seed=1)
    write_solid(root / "Train" / "Images" / "5.png", 5)
    with pytest.raises(BadInputError) as err:
        load_splits(cfg_for(root, tmp_path))
    message = str(err.value)
    assert "\n" not in message and str(root / "Train" / "Images") in message
    assert "5 labels in train.json" in message and "6 frames" in message


def test_parse_loose_objects_reads_bare_words_and_rejects_truncation():
    objs = parse_loose_objects('{"class3": slow, "w": -0.2248, "v": 9}\n{"v": 12.5, "note": "a, b}", "w": 1e-3}')
    assert objs == [{"class3": "slow", "w": "-0.2248", "v": "9"}, {"v": "12.5", "note": "a, b}", "w": "1e-3"}]
    with pytest.raises(ValueError):
        parse_loose_objects('{"w": 1, "v": 9}{"w": 2, "v"')
    with pytest.raises(ValueError):
        parse_loose_objects("not objects at all")


def test_folder_with_images_but_no_labels_names_both_label_files(tmp_path):
    root = tmp_path / "dls"
    write_tf_split(root, "Train", 3, seed=1)
    write_frames(root / "Test" / "Images", 3)
    with pytest.raises(BadInputError, match=r"Test: has Images/ but no data.json or test.json"):
        load_splits(cfg_for(root, tmp_path))


# --- labels outside the normalization bounds ---------------------------------------------------------

def test_labels_outside_the_bounds_warn_once_and_are_counted(tmp_path):
    root = tmp_path / "data"
    fast = write_csv_in_order(root / "monaco_clockwise_1", 6)
    lines = (fast / "data.csv").read_text().splitlines()
    lines[1] = "30.0,0.1,0"  # v above 24 m/s
    lines[2] = "3.0,-8.5,0"  # v below 6.5 and w below -7.1: one label
    lines[5] = "10.0,7.5,0"  # w above 7.1
    (fast / "data.csv").write_text("\n".join(lines) + "\n")
    write_csv_in_order(root / "nurburgring_clockwise_1", 4)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_splits(cfg_for(root, tmp_path))
    ours = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "\n" not in message
    assert message.startswith("3 of 10 labels are outside")
    assert "clipped" in message and "fixed bounds" in message and "monaco_clockwise_1" in message
    assert "nurburgring" not in message
    assert splits.summary["labels_out_of_bounds"] == 3 and splits.summary["warnings"] == [message]

    with warnings.catch_warnings(record=True) as caught:  # cache hit: same warning, same count
        warnings.simplefilter("always")
        again = load_splits(cfg_for(root, tmp_path))
    assert again.summary["cache_hit"] and again.summary["labels_out_of_bounds"] == 3
    assert [str(w.message) for w in caught if issubclass(w.category, DataWarning)] == [message]


def test_labels_outside_the_bounds_name_at_most_three_recordings(tmp_path):
    root = tmp_path / "data"
    for name in ("a_1", "b_1", "c_1", "d_1"):
        folder = write_csv_in_order(root / name, 3)
        lines = (folder / "data.csv").read_text().splitlines()
        lines[1] = "25.0,0.0,0"
        (folder / "data.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(DataWarning, match=r"4 of 12 labels .* in a_1, b_1, c_1 and 1 more; pilotopt normalizes"):
        splits = load_splits(cfg_for(root, tmp_path))
    assert splits.summary["labels_out_of_bounds"] == 4


def test_labels_inside_the_bounds_do_not_warn(tmp_path):
    root = tmp_path / "data"
    write_csv_in_order(root / "monaco_clockwise_1", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        splits = load_splits(cfg_for(root, tmp_path))
    assert splits.summary["labels_out_of_bounds"] == 0 and splits.summary["warnings"] == []


# --- no requested test circuit in the data -----------------------------------------------------------

def test_no_default_test_circuit_lists_the_circuits_found(tmp_path):
    root = tmp_path / "dls"
    write_tf_split(root, "Train", 3, seed=1)
    write_tf_split(root, "Test", 3, seed=2)
    with pytest.raises(BadInputError) as err:
        load_splits(DataConfig(roots=[root], cache_dir=tmp_path / "cache", workers=1))  # default test circuits
    message = str(err.value)
    assert "\n" not in message
    assert "none of the test circuits simple, montmelo, montreal (the default) is in the data" in message
    assert "circuits found: test, train" in message and "--test-circuits test" in message


def test_requested_test_circuits_missing_lists_the_circuits_found(tmp_path):
    root = tmp_path / "data"
    write_csv_in_order(root / "monaco_clockwise_1", 3)
    write_csv_in_order(root / "nurburgring_anticlockwise_2", 3)
    with pytest.raises(BadInputError, match=r"none of the test circuits montreal is in the data; circuits found: "
                                            r"monaco, nurburgring; .*--test-circuits"):
        load_splits(cfg_for(root, tmp_path, test_circuits="montreal"))
