"""pilotopt.data: reading both recording layouts, validation, circuit splits, flip/oversampling,
the preprocessed cache, sequences and augmentation.

Frames are synthetic 640 x 480 images whose red channel encodes the frame index (8 * index) and
whose blue channel encodes the recording, with a left-to-right green ramp, so a loaded sample can
be traced back to its file and a mirror is detectable."""

import csv
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pilotopt.data.decode as decode_mod
from pilotopt.data import DataConfig, Split, load_splits, make_augmenter
from pilotopt.data.formats import circuit_from_name, parse_json_objects
from pilotopt.errors import BadInputError
from pilotopt.preprocess import crop_resize, normalize_labels

W_PATTERN = [0.2, -0.5, 1.5, -2.0, 0.9, 1.0, -1.0, 3.0]  # |w| >= 1 is a sharp turn: 5 of 8


def v_of(i):
    return 7.0 + 0.5 * i


def w_of(i):
    return W_PATTERN[i % len(W_PATTERN)]


def write_frame(path, idx, rec=0, size=(640, 480)):
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = 8 * idx
    a[..., 1] = (np.arange(w) * 255 // (w - 1)).astype(np.uint8)[None, :]
    a[..., 2] = 20 * rec
    Image.fromarray(a).save(path, compress_level=1)


def write_dls(folder, n, rec=0, shuffle=False, drop_ext=False, columns=("image_name", "v", "w", "timestamp")):
    """A DeepLearningStudio recording: frames + data.csv."""
    folder.mkdir(parents=True)
    for i in range(n):
        write_frame(folder / f"{i}.png", i, rec)
    rows = [{"image_name": f"{i}" if drop_ext and i % 2 else f"{i}.png", "v": v_of(i), "w": w_of(i),
             "timestamp": 0.05 * i, "extra": "x"} for i in range(n)]
    if shuffle:
        random.Random(rec).shuffle(rows)
    with (folder / "data.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r[c] for c in columns])
    return folder


def decode_sample(x):
    """(frame index, recording) encoded in a loaded (66, 200, 3) image."""
    return int(x[0, 0, 0]) // 8, int(x[0, 0, 2]) // 20


def cfg_for(root, tmp_path, **kw):
    base = dict(roots=[root], test_circuits=(), val_fraction=0.0, flip=False, oversample=1,
                cache_dir=tmp_path / "cache")
    return DataConfig(**{**base, **kw})


def expected_label(i):
    return normalize_labels(v_of(i), w_of(i))


# --- reading -------------------------------------------------------------------------------------

def test_dls_labels_follow_the_named_image_not_the_row_order(tmp_path):
    root = tmp_path / "data"
    write_dls(root / "mytrack_clockwise_2", 12, rec=3, shuffle=True, drop_ext=True,
              columns=("timestamp", "w", "extra", "v", "image_name"))
    rows = list(csv.DictReader((root / "mytrack_clockwise_2" / "data.csv").open()))
    assert [r["image_name"] for r in rows] != sorted(r["image_name"] for r in rows)  # really shuffled
    assert any(not r["image_name"].endswith(".png") for r in rows)

    splits = load_splits(cfg_for(root, tmp_path))
    x, y = splits.train.arrays()
    assert x.shape == (12, 66, 200, 3) and x.dtype == np.uint8 and y.dtype == np.float32
    seen = []
    for k in range(len(x)):
        idx, rec = decode_sample(x[k])
        assert rec == 3
        np.testing.assert_allclose(y[k], expected_label(idx), atol=1e-6)
        seen.append(idx)
    assert seen == list(range(12))  # frames in integer order: 10 after 9, not after 1
    assert list(splits.train.info()["frame"]) == list(range(12))
    assert splits.train.circuits == ["mytrack"]


def test_legacy_images_and_data_json_layouts(tmp_path):
    root = tmp_path / "old"
    for rec, name in enumerate(["named", "unnamed", "as_list"], start=1):
        folder = root / name
        (folder / "Images").mkdir(parents=True)
        for i in range(11):  # 10.png must sort after 9.png
            write_frame(folder / "Images" / f"{i}.png", i, rec)
        objs = [{"image_name": f"{i}.png", "w": w_of(i), "v": v_of(i)} for i in range(11)]
        if name == "named":
            random.Random(0).shuffle(objs)
            text = "".join(json.dumps(o) for o in objs)  # concatenated, back to back
        elif name == "unnamed":
            text = "\n".join(json.dumps({"w": w_of(i), "v": v_of(i)}) for i in range(11))
        else:
            text = json.dumps(objs)
        (folder / "data.json").write_text(text)

    splits = load_splits(cfg_for(root, tmp_path))
    x, y = splits.train.arrays()
    assert len(x) == 33
    got = set()
    for k in range(len(x)):
        idx, rec = decode_sample(x[k])
        np.testing.assert_allclose(y[k], expected_label(idx), atol=1e-6)
        got.add((rec, idx))
    assert got == {(r, i) for r in (1, 2, 3) for i in range(11)}
    assert splits.train.circuits == ["as_list", "named", "unnamed"]


def test_parse_json_objects_handles_lists_and_concatenation():
    assert parse_json_objects('{"a": 1}{"a": 2}\n{"a": 3}') == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert parse_json_objects('[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    with pytest.raises(ValueError):
        parse_json_objects('{"a": 1}{"a": ')


def test_circuit_from_folder_name_and_meta_json(tmp_path):
    assert circuit_from_name("montreal_clockwise_1") == "montreal"
    assert circuit_from_name("many_curves_anticlockwise_3") == "many_curves"
    assert circuit_from_name("extended_simple_cw") == "extended_simple"
    assert circuit_from_name("simple_clockwise_12") == "simple"
    assert circuit_from_name("my_track_ccw_12") == "my_track"
    assert circuit_from_name("Backyard_2") == "backyard"

    root = tmp_path / "data"
    write_dls(root / "montreal_clockwise_1", 3)
    (root / "montreal_clockwise_1" / "meta.json").write_text(json.dumps({"circuit": "monaco", "direction": "cw"}))
    assert load_splits(cfg_for(root, tmp_path)).train.circuits == ["monaco"]  # meta.json wins


# --- validation ----------------------------------------------------------------------------------

def _good(root):
    return write_dls(root / "monaco_clockwise_1", 6, rec=1)


def _corrupt_png(root):
    rec = _good(root)
    (rec / "3.png").write_bytes((rec / "3.png").read_bytes()[:200])  # truncated file
    return "3.png"


def _not_a_png(root):
    rec = _good(root)
    (rec / "2.png").write_bytes(b"definitely not an image")
    return "2.png"


def _missing_csv(root):
    _good(root)
    folder = root / "nurburgring_clockwise_1"
    folder.mkdir()
    write_frame(folder / "0.png", 0)
    return "nurburgring_clockwise_1: 1 image file but no data.csv"


def _missing_w(root):
    write_dls(root / "monaco_clockwise_1", 3, columns=("image_name", "v", "timestamp"))
    return "data.csv: no 'w' column"


def _missing_v(root):
    write_dls(root / "monaco_clockwise_1", 3, columns=("image_name", "w"))
    return "data.csv: no 'v' column"


def _nan_label(root):
    rec = _good(root)
    text = (rec / "data.csv").read_text().splitlines()
    parts = text[3].split(",")
    parts[2] = "nan"
    text[3] = ",".join(parts)
    (rec / "data.csv").write_text("\n".join(text) + "\n")
    return "data.csv line 4: w is 'nan', not a finite number"


def _text_label(root):
    rec = _good(root)
    with (rec / "data.csv").open("a") as fh:
        fh.write("5.png,fast,0.1,0\n")
    return "data.csv line 8: v is 'fast', not a number"


def _missing_image(root):
    rec = _good(root)
    with (rec / "data.csv").open("a") as fh:
        fh.write("99.png,10,0.1,0\n")
    return "names image '99.png' but .*99.png does not exist"


def _wrong_size(root):
    rec = _good(root)
    write_frame(rec / "4.png", 4, size=(320, 240))
    return "4.png: frame is 320 x 240; frames must be 640 x 480"


def _empty_root(root):
    root.mkdir()
    return "no usable recordings found under"


def _missing_root(root):
    return "does not exist"


def _no_rows(root):
    write_dls(root / "monaco_clockwise_1", 0)
    return "data.csv has no label rows"


BAD_CASES = {f.__name__[1:]: f for f in [_corrupt_png, _not_a_png, _missing_csv, _missing_w, _missing_v, _nan_label,
                                         _text_label, _missing_image, _wrong_size, _empty_root, _missing_root,
                                         _no_rows]}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_line_naming_the_file(tmp_path, case):
    root = tmp_path / "data"
    if case not in ("empty_root", "missing_root"):
        root.mkdir()
    pattern = BAD_CASES[case](root)
    with pytest.raises(BadInputError, match=pattern) as err:
        load_splits(cfg_for(root, tmp_path, workers=1))
    message = str(err.value)
    assert "\n" not in message
    assert str(root) in message or case == "missing_root" and str(root) in message


def test_missing_test_circuit_names_what_was_found(tmp_path):
    root = tmp_path / "data"
    _good(root)
    write_dls(root / "simple_clockwise_1", 2)
    with pytest.raises(BadInputError, match=r"test circuit 'montmelo' is not in the data \(found: monaco, simple\); "
                                            "generate it or pass --test-circuits"):
        load_splits(DataConfig(roots=[root], cache_dir=tmp_path / "c"))  # default test circuits
    with pytest.raises(BadInputError, match="no training data"):
        load_splits(DataConfig(roots=[root], test_circuits="simple,monaco", cache_dir=tmp_path / "c"))


def test_skip_bad_skips_and_counts(tmp_path):
    root = tmp_path / "data"
    write_dls(root / "monaco_clockwise_1", 6, rec=1)
    bad = write_dls(root / "nurburgring_clockwise_1", 6, rec=2)
    (bad / "1.png").write_bytes(b"garbage")  # corrupt
    write_frame(bad / "2.png", 2, size=(320, 240))  # wrong size
    lines = (bad / "data.csv").read_text().splitlines()
    lines[4] = "3.png,NaN,0.1,0"  # bad label
    (bad / "data.csv").write_text("\n".join(lines + ["77.png,10,0.1,0"]) + "\n")  # missing image
    write_dls(root / "montreal_clockwise_1", 2, columns=("image_name", "v"))  # no w column
    (root / "unlabelled").mkdir()
    write_frame(root / "unlabelled" / "0.png", 0)  # no data.csv

    with pytest.raises(BadInputError):
        load_splits(cfg_for(root, tmp_path))
    splits = load_splits(cfg_for(root, tmp_path, skip_bad=True))
    skipped = splits.summary["skipped"]
    assert skipped["frames"] == 4 and skipped["recordings"] == 2
    assert set(skipped["reasons"]) == {"bad label", "corrupt image", "missing image", "wrong frame size",
                                       "missing column", "missing labels"}
    x, y = splits.train.arrays()
    got = {decode_sample(img) for img in x}
    assert got == {(i, 1) for i in range(6)} | {(0, 2), (4, 2), (5, 2)}  # only good frames train
    for img, label in zip(x, y):
        np.testing.assert_allclose(label, expected_label(decode_sample(img)[0]), atol=1e-6)
    # a cache hit reports the same counts (decode problems are stored with the cache)
    again = load_splits(cfg_for(root, tmp_path, skip_bad=True))
    assert again.summary["cache_hit"] and again.summary["skipped"]["frames"] == 4


def test_config_is_validated():
    for bad in [dict(roots=5), dict(val_fraction=1.0), dict(val_fraction=-0.1), dict(oversample=0),
                dict(sequence_length=0), dict(turn_threshold=-1.0), dict(augment="sepia"), dict(seed="x"),
                dict(flip="yes"), dict(workers=0)]:
        with pytest.raises(BadInputError) as err:
            DataConfig(**{"roots": ["data"], **bad})
        assert "\n" not in str(err.value)
    cfg = DataConfig(roots="data", test_circuits="Simple, montreal")
    assert cfg.test_circuits == ("simple", "montreal") and len(cfg.roots) == 1
    with pytest.raises(BadInputError, match="no dataset folder given"):
        load_splits(DataConfig())


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PILOTOPT_CACHE", str(tmp_path / "envcache"))
    assert DataConfig(roots=["data"]).resolved_cache_dir == tmp_path / "envcache"
    assert DataConfig(roots=["data"], cache_dir=tmp_path / "mine").resolved_cache_dir == tmp_path / "mine"
    monkeypatch.delenv("PILOTOPT_CACHE")
    assert DataConfig(roots=["data"]).resolved_cache_dir == Path.home() / ".cache" / "pilotopt"


# --- splits, flip, oversampling ------------------------------------------------------------------

SPLIT_RECS = {"simple_clockwise_1": 1, "montreal_anticlockwise_1": 2, "monaco_clockwise_1": 3,
              "monaco_anticlockwise_1": 4, "nurburgring_clockwise_1": 5, "many_curves_clockwise_1": 6}


@pytest.fixture(scope="module")
def split_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    for name, rec in SPLIT_RECS.items():
        write_dls(root / name, 8, rec=rec)
    return root


def _keys(split):
    info = split.info()
    return [(os.path.basename(r), int(f), bool(fl))
            for r, f, fl in zip(info["recording"], info["frame"], info["flipped"])]


def test_splits_are_by_circuit_and_whole_recordings(split_root, tmp_path):
    cfg = cfg_for(split_root, tmp_path, test_circuits=("simple", "montreal"), val_fraction=0.25, flip=True,
                  oversample=2)
    s = load_splits(cfg)
    assert s.test.circuits == ["montreal", "simple"]
    assert not set(s.train.circuits + s.val.circuits) & {"simple", "montreal"}
    assert not {c for c in s.train.info()["circuit"]} & {"simple", "montreal"}
    assert len(s.val.recordings) == 1  # 25 % of 4 training recordings, whole
    val_rec = s.val.recordings[0].name
    assert sorted(f for r, f, _ in _keys(s.val)) == list(range(8)) and {r for r, _, _ in _keys(s.val)} == {val_rec}
    assert val_rec not in {r for r, _, _ in _keys(s.train)}
    assert len(s.test) == 16 and len(s.val) == 8  # no flip, no oversampling outside training
    assert not s.val.flipped.any() and not s.test.flipped.any()
    # train: 3 recordings x 8 frames, each mirrored, sharp turns (5 of 8) twice
    assert len(s.train) == 2 * (24 + 15)
    counts = {}
    for key in _keys(s.train):
        counts[key] = counts.get(key, 0) + 1
    for (rec, frame, flipped), n in counts.items():
        assert n == (2 if abs(w_of(frame)) >= 1.0 else 1)
    assert {k[2] for k in counts} == {False, True}
    assert s.summary["train"]["samples"] == len(s.train) and s.summary["cache_hit"] is False
    assert isinstance(s.train, Split) and all(p.is_dir() for p in s.train.recordings)


def test_flip_is_a_mirror_with_negated_w(split_root, tmp_path):
    s = load_splits(cfg_for(split_root, tmp_path, test_circuits=("simple", "montreal"), flip=True))
    keys = _keys(s.train)
    x, y = s.train.arrays()
    plain = {k[:2]: i for i, k in enumerate(keys) if not k[2]}
    flipped = [(i, k) for i, k in enumerate(keys) if k[2]]
    assert len(flipped) == len(plain) > 0
    for i, key in flipped:
        j = plain[key[:2]]
        np.testing.assert_array_equal(x[i], x[j][:, ::-1])
        assert not np.array_equal(x[i], x[j])  # the ramp makes the mirror visible
        assert y[i, 0] == y[j, 0] and y[i, 1] == pytest.approx(1.0 - y[j, 1], abs=1e-7)


def test_oversampling_only_sharp_turns_and_only_in_training(split_root, tmp_path):
    s = load_splits(cfg_for(split_root, tmp_path, test_circuits=("simple",), val_fraction=0.2, oversample=3,
                            turn_threshold=1.0))
    train_frames = s.summary["train"]["frames"]
    sharp = s.summary["train"]["sharp_turn_frames"]
    assert len(s.train) == train_frames + 2 * sharp
    assert len(s.val) == s.summary["val"]["frames"] and len(s.test) == 8
    w = s.train.labels[:, 1] * 14.2 - 7.1
    assert np.sum(np.abs(w) >= 1.0 - 1e-5) == 3 * sharp


def test_single_training_recording_validates_on_its_last_block(tmp_path):
    root = tmp_path / "data"
    write_dls(root / "monaco_clockwise_1", 10, rec=1)
    write_dls(root / "simple_clockwise_1", 3, rec=2)
    s = load_splits(cfg_for(root, tmp_path, test_circuits=("simple",), val_fraction=0.2, sequence_length=3))
    assert [k[1] for k in _keys(s.val)] == [8, 9] and [k[1] for k in _keys(s.train)] == list(range(8))
    assert "only one training recording" in s.summary["validation"]
    xv, _ = s.val.batch([0])
    assert [decode_sample(f)[0] for f in xv[0]] == [8, 8, 8]  # never reaches back into training frames


def test_batches_are_deterministic_and_complete(split_root, tmp_path):
    s = load_splits(cfg_for(split_root, tmp_path, test_circuits=("simple", "montreal"), flip=True))
    n = len(s.train)
    sizes = [len(x) for x, _ in s.train.batches(7, shuffle=True, seed=3)]
    assert sum(sizes) == n and sizes[:-1] == [7] * (len(sizes) - 1) and sizes[-1] == (n % 7 or 7)
    a = np.concatenate([y for _, y in s.train.batches(7, shuffle=True, seed=3)])
    b = np.concatenate([y for _, y in s.train.batches(7, shuffle=True, seed=3)])
    c = np.concatenate([y for _, y in s.train.batches(7, shuffle=True, seed=4)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.sort(a, axis=0), np.sort(s.train.labels, axis=0))
    x_all, y_all = s.train.arrays()
    x_seq = np.concatenate([x for x, _ in s.train.batches(16, shuffle=False)])
    np.testing.assert_array_equal(x_seq, x_all)


# --- cache ---------------------------------------------------------------------------------------

def test_second_load_hits_the_cache_without_decoding(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_dls(root / "monaco_clockwise_1", 6, rec=1)
    cfg = cfg_for(root, tmp_path)
    first = load_splits(cfg)
    assert first.summary["cache_hit"] is False
    x1, y1 = first.train.arrays()

    def no_decoding(*args, **kwargs):
        raise AssertionError("a PNG was decoded on a cache hit")

    with monkeypatch.context() as m:
        m.setattr(decode_mod, "decode_frame", no_decoding)
        m.setattr(Image, "open", no_decoding)
        second = load_splits(cfg)
    assert second.summary["cache_hit"] is True
    assert second.summary["cache_path"] == first.summary["cache_path"]
    x2, y2 = second.train.arrays()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)

    # changed inputs are a different cache
    csv_path = root / "monaco_clockwise_1" / "data.csv"
    os.utime(csv_path, ns=(csv_path.stat().st_atime_ns, csv_path.stat().st_mtime_ns + 10**9))
    assert load_splits(cfg).summary["cache_hit"] is False


@pytest.mark.parametrize("damage", ["truncate_images", "drop_marker", "corrupt_labels"])
def test_damaged_cache_is_rebuilt_not_trusted(tmp_path, monkeypatch, damage):
    root = tmp_path / "data"
    write_dls(root / "monaco_clockwise_1", 6, rec=1)
    cfg = cfg_for(root, tmp_path)
    first = load_splits(cfg)
    x1, y1 = first.train.arrays()
    cache = first.summary["cache_path"]
    del first
    images = os.path.join(cache, "images.npy")
    if damage == "truncate_images":
        with open(images, "r+b") as fh:
            fh.truncate(os.path.getsize(images) // 2)
    elif damage == "drop_marker":
        os.remove(os.path.join(cache, "manifest.json"))
    else:
        arr = np.load(os.path.join(cache, "vw.npy"))
        arr[0, 1] = 5.0
        np.save(os.path.join(cache, "vw.npy"), arr)

    calls = []
    real = decode_mod.decode_frame
    monkeypatch.setattr(decode_mod, "decode_frame", lambda p, *a: calls.append(p) or real(p, *a))
    again = load_splits(cfg)
    assert again.summary["cache_hit"] is False and len(calls) == 6
    assert "rebuilt" in again.summary["cache_note"]
    x2, y2 = again.train.arrays()
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


# --- sequences -----------------------------------------------------------------------------------

def test_sequences_are_consecutive_frames_within_one_recording(tmp_path):
    root = tmp_path / "data"
    write_dls(root / "monaco_clockwise_1", 5, rec=1)
    write_dls(root / "nurburgring_clockwise_1", 5, rec=2)
    s = load_splits(cfg_for(root, tmp_path, sequence_length=3, flip=True))
    x, y = s.train.batch(np.arange(len(s.train)))
    assert x.shape == (20, 3, 66, 200, 3) and s.train.input_shape == (3, 66, 200, 3)
    flipped = s.train.flipped
    for k in range(len(x)):
        frames = [decode_sample(f) for f in x[k]]
        last, rec = frames[-1]
        assert [f for f, _ in frames] == [max(last - 2, 0), max(last - 1, 0), last]
        assert {r for _, r in frames} == {rec}  # never crosses recordings
        expected = expected_label(last).copy()
        if flipped[k]:
            expected[1] = 1.0 - expected[1]
            assert x[k, 0, 0, 0, 1] > x[k, 0, 0, -1, 1]  # every frame of the sequence mirrored
            assert x[k, 2, 0, 0, 1] > x[k, 2, 0, -1, 1]
        else:
            assert x[k, 0, 0, 0, 1] < x[k, 0, 0, -1, 1]
        np.testing.assert_allclose(y[k], expected, atol=1e-6)


# --- augmentation --------------------------------------------------------------------------------

def test_augmenter_changes_images_deterministically(tmp_path):
    assert make_augmenter(None, 0) is None and make_augmenter("none", 0) is None
    with pytest.raises(BadInputError, match="unknown augmentation"):
        make_augmenter("sepia", 0)
    rng = np.random.default_rng(0)
    x = rng.integers(40, 200, (16, 66, 200, 3), dtype=np.uint8)
    aug = make_augmenter("default", seed=1)
    a = aug(x, np.random.default_rng(5))
    b = make_augmenter("default", seed=1)(x, np.random.default_rng(5))
    c = aug(x, np.random.default_rng(6))
    assert a.shape == x.shape and a.dtype == np.uint8
    assert not np.array_equal(a, x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    seq = aug(np.stack([x[:4]] * 2, axis=1), np.random.default_rng(1))
    assert seq.shape == (4, 2, 66, 200, 3)
    np.testing.assert_array_equal(seq[:, 0], seq[:, 1])  # one draw for the whole sequence


def test_augmentation_only_touches_training_batches(split_root, tmp_path):
    s = load_splits(cfg_for(split_root, tmp_path, test_circuits=("simple",), val_fraction=0.25, augment="default"))
    x_train, _ = s.train.arrays()
    aug_x = np.concatenate([x for x, _ in s.train.batches(16, shuffle=False, seed=0)])
    aug_again = np.concatenate([x for x, _ in s.train.batches(16, shuffle=False, seed=0)])
    assert not np.array_equal(aug_x, x_train)
    np.testing.assert_array_equal(aug_x, aug_again)
    plain = np.concatenate([x for x, _ in s.train.batches(16, shuffle=False, seed=0, augment=None)])
    np.testing.assert_array_equal(plain, x_train)
    for split in (s.val, s.test):
        assert split.augment is None
        np.testing.assert_array_equal(np.concatenate([x for x, _ in split.batches(16, shuffle=False)]),
                                      split.arrays()[0])
        with pytest.raises(BadInputError, match="training split only"):
            split.batches(16, augment=make_augmenter("default", 0))


# --- end to end on simulator data ----------------------------------------------------------------

def test_generated_dataset_loads_end_to_end(tmp_path, monkeypatch):
    from pilotopt.sim.dataset import DatasetConfig, generate_dataset

    root = tmp_path / "gen"
    generate_dataset(root, DatasetConfig(circuits=("simple",), directions=("clockwise", "anticlockwise"),
                                         laps=0.04), workers=1)
    monkeypatch.setattr(decode_mod, "PARALLEL_MIN_FRAMES", 1)  # exercise the worker processes
    calls = []
    cfg = DataConfig(roots=[root], test_circuits=(), val_fraction=0.5, cache_dir=tmp_path / "cache", workers=2)
    s = load_splits(cfg, progress=lambda done, total: calls.append((done, total)))
    assert s.summary["decoded_with"] == "2 processes"
    n = s.summary["frames_cached"]
    assert calls and calls[-1] == (n, n)
    assert s.train.circuits == s.val.circuits == ["simple"]
    assert len(s.train.recordings) == len(s.val.recordings) == 1
    rec = s.val.recordings[0]
    with (rec / "data.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    x, y = s.val.arrays()
    assert len(x) == len(rows) == s.summary["val"]["frames"]
    expected = normalize_labels([float(r["v"]) for r in rows], [float(r["w"]) for r in rows])
    np.testing.assert_allclose(y, expected, atol=1e-6)
    for i in (0, len(rows) - 1):
        np.testing.assert_array_equal(x[i], crop_resize(np.asarray(Image.open(rec / f"{i}.png").convert("RGB"))))
    assert len(s.train) == 2 * s.summary["train"]["frames"] + s.summary["train"]["oversampled_extra"]
