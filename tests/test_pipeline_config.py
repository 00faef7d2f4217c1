"""`pilotopt run` configuration: profiles, overrides, and one-line errors naming the key, before any work."""

from __future__ import annotations

import pytest

from pilotopt.errors import BadInputError
from pilotopt.pipeline.config import load_config, technique_overrides, technique_plan
from pilotopt.techniques import get_technique


def test_quick_is_the_default_profile_and_includes_every_technique():
    from pilotopt.techniques import technique_names

    cfg = load_config()
    assert cfg.profile == "quick" and cfg.techniques == "all"
    plan = technique_plan(cfg)
    assert sorted(plan["torch"] + plan["tf"]) == sorted(technique_names())
    assert "keras" in plan["tf"] and "torch" in plan["torch"]


def test_file_then_command_line_override_the_profile(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("profile: full\ntrain:\n  epochs: 3\nclosed_loop:\n  circuits: [montreal]\n"
                 "technique_settings:\n  tf_prune:\n    final_sparsity: 0.6\n")
    cfg = load_config(f, {"train": {"epochs": 4}})
    assert cfg.profile == "full" and cfg.train.epochs == 4 and cfg.drive_circuits == ["montreal"]
    assert cfg.data.test_circuits == ["simple", "montmelo", "montreal"]  # from the full profile
    assert technique_overrides(cfg, ["tf_prune"])["tf_prune"]["final_sparsity"] == 0.6


def test_technique_defaults_reach_only_techniques_with_that_setting():
    cfg = load_config(overrides={"technique_defaults": {"epochs": 1, "calibration_frames": 7}})
    over = technique_overrides(cfg, ["tf_cluster", "tflite_int8", "keras", "tf_prune", "openvino_int8"])
    assert over["tf_cluster"]["epochs"] == 1 and "calibration_frames" not in over["tf_cluster"]
    assert over["tf_prune"]["epochs"] == 3  # the quick profile's own setting for it wins over the defaults
    assert over["tflite_int8"] == over["openvino_int8"] == {"calibration_frames": 7}
    assert "keras" not in over


def test_a_misspelled_technique_default_names_the_closest_setting(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("technique_defaults: {calibraton_frames: 50}\n")
    with pytest.raises(BadInputError) as err:
        load_config(f)
    msg = str(err.value)
    assert "technique_defaults" in msg and "'calibraton_frames'" in msg and "'calibration_frames'" in msg
    assert "\n" not in msg
    with pytest.raises(BadInputError, match="unknown setting 'warp_factor'; valid settings: .*calibration_frames"):
        load_config(overrides={"technique_defaults": {"warp_factor": 9}})


def test_old_setting_names_still_work_with_a_warning_naming_the_new_one():
    from pilotopt.techniques._settings import RenamedSettingWarning

    with pytest.warns(RenamedSettingWarning) as caught:
        cfg = load_config(overrides={"technique_defaults": {"subset_size": 30},
                                     "technique_settings": {"tflite_int8": {"representative_frames": 20}}})
    said = {str(w.message) for w in caught}
    assert {f"setting '{old}' is renamed 'calibration_frames'; the old name is accepted until the next release"
            for old in ("subset_size", "representative_frames")} <= said
    over = technique_overrides(cfg, ["openvino_int8", "tflite_int8"])
    assert over == {"openvino_int8": {"calibration_frames": 30}, "tflite_int8": {"calibration_frames": 20}}
    with pytest.warns(RenamedSettingWarning):
        assert get_technique("tf_pqat").make_settings({"representative_frames": "9"}).calibration_frames == 9
    with pytest.raises(BadInputError, match="'subset_size' is an old name of 'calibration_frames'"):
        get_technique("openvino_int8").make_settings({"subset_size": 9, "calibration_frames": 9})


@pytest.mark.parametrize("doc, key", [
    ("techniques: [tflite_int8, warp_drive]\n", "techniques"),
    ("closed_loop:\n  circuits: [atlantis]\n", "closed_loop.circuits"),
    ("train:\n  epochs: -2\n", "train.epochs"),
    ("data:\n  path: /no/such/folder\n", "data.path"),
    ("trainn:\n  epochs: 2\n", "trainn"),
    ("train:\n  learning_rat: 0.1\n", "train.learning_rat"),
    ("technique_settings:\n  tf_prune:\n    final_sparsity: lots\n", "technique_settings.tf_prune"),
    ("executor:\n  name: dask\n", "executor.name"),
    ("profile: turbo\n", "profile"),
    ("- just\n- a list\n", "mapping"),
    ("train: [\n", "not valid YAML"),
])
def test_bad_configs_give_one_line_naming_the_key(tmp_path, doc, key):
    f = tmp_path / "bad.yaml"
    f.write_text(doc)
    with pytest.raises(BadInputError) as err:
        load_config(f)
    msg = str(err.value)
    assert key in msg and "\n" not in msg, msg


def test_missing_config_file(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_cli_rejects_bad_config_before_any_work(tmp_path):
    import subprocess
    import sys

    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  epochs: -1\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pilotopt", "run", "--config", str(f), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "train.epochs" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()  # nothing started


def test_frameworks_build_side_by_side_sharing_the_threads():
    """Two at once (executor.build_workers 2): both frameworks' work runs at once (a barrier only two
    concurrent calls pass), each with half the threads; a failure is raised, not lost."""
    import threading

    from pilotopt.pipeline.run import per_framework

    cfg = load_config(None, {"threads": 2})
    barrier = threading.Barrier(2, timeout=10)

    def work(fw, threads):
        barrier.wait()  # BrokenBarrierError if the other framework is not running at the same time
        return fw, threads

    assert per_framework(cfg, ["torch", "tf"], work, 2) == {"torch": ("torch", 1), "tf": ("tf", 1)}
    assert per_framework(cfg, ["torch", "tf"], lambda fw, t: t) == {"torch": 2, "tf": 2}  # one at a time

    def fails(fw, threads):
        if fw == "tf":
            raise BadInputError("tf broke")
        return fw

    with pytest.raises(BadInputError, match="tf broke"):
        per_framework(cfg, ["torch", "tf"], fails, 2)


def test_optimize_groups_keep_a_shared_prefix_in_one_group():
    """The optimize stage's queue: every planned chain exactly once; chains with the same first step
    (tf_prune, tf_prune_dynamic_range, tf_prune+tflite_int8_fallback) in one group, so their
    cached prefix is computed once and never by two groups at a time; fine-tunes first."""
    from pilotopt.pipeline.config import variant_plan
    from pilotopt.pipeline.run import chain_names, prefix_groups
    from pilotopt.techniques import techniques

    cfg = load_config(None, {})
    plan, named = technique_plan(cfg), variant_plan(cfg)
    jobs = prefix_groups(plan, named)
    for fw in plan:
        grouped = [n for job in jobs if job[0] == fw for n in chain_names(job[1], job[2])]
        assert sorted(grouped) == sorted(chain_names(plan[fw], named[fw]))
    (prune,) = [job for job in jobs if "tf_prune" in job[1]]
    assert prune[1] == ["tf_prune", "tf_prune_dynamic_range"] and list(prune[2]) == ["tf_prune+tflite_int8_fallback"]
    (distill,) = [job for job in jobs if "torch_distill" in job[1]]
    assert set(distill[2]) == {"torch_distill+onnx_int8_static", "torch_distill+torch_static",
                               "torch_distill+torch_to_keras+tflite_fp32"}
    known = techniques()
    trains = [known[job[1][0]].needs_data for job in jobs if job[1] and job[1][0] in known]
    assert trains == sorted(trains, reverse=True)  # every fine-tune / calibration group before the rest


def test_optimize_queue_starts_the_longest_fine_tunes_first():
    """The quick profile's queue: groups by decreasing fine-tune work (epochs x frames), so the last
    job to start is short; the chained prefix counts once; conversions (no training) come last."""
    from pilotopt.pipeline.config import variant_plan
    from pilotopt.pipeline.run import fine_tune_work, longest_first, prefix_groups

    cfg = load_config(None, {})
    jobs = longest_first(prefix_groups(technique_plan(cfg), variant_plan(cfg)),
                         lambda job: fine_tune_work(cfg, job[1], job[2]))
    work = [fine_tune_work(cfg, job[1], job[2]) for job in jobs]
    assert work == sorted(work, reverse=True) and work[-1] == 0
    firsts = [job[1][0] if job[1] else next(iter(job[2])) for job in jobs]
    assert firsts[0] == "torch_distill"  # 6 epochs over the whole split
    # tf_pcqat: prune 3 epochs + cluster 1 + QAT 1 (default), over 4096 frames
    assert fine_tune_work(cfg, ["tf_pcqat"], {}) == (3 + 1 + 1) * 4096
    # tf_prune's group: its chain reuses the tf_prune prefix, so the group counts it once, plus
    # the chain's int8 calibration (1)
    (prune,) = [job for job in jobs if "tf_prune" in job[1]]
    assert fine_tune_work(cfg, prune[1], prune[2]) == fine_tune_work(cfg, ["tf_prune"], {}) + 1
    assert fine_tune_work(cfg, ["tflite_float16"], {}) == 0
    assert longest_first(["a", "b", "c"], {"a": 1, "b": 2, "c": 1}.get) == ["b", "a", "c"]


def test_drives_share_the_cores_unless_wall_latency_is_measured():
    from pilotopt.pipeline.run import drive_threads

    assert drive_threads(load_config(None, {"threads": 2, "executor": {"workers": 2}})) == 1
    assert drive_threads(load_config(None, {"threads": 4, "executor": {"workers": 2}})) == 2
    assert drive_threads(load_config(None, {"threads": 2, "executor": {"workers": 1}})) == 2
    assert drive_threads(load_config(None, {"threads": 2, "executor": {"workers": 2},
                                            "closed_loop": {"latency": "wall"}})) == 2


def test_queue_starts_what_is_ready_and_stops_after_a_failure():
    import threading

    from pilotopt.pipeline.run import queue_side_by_side

    started, gate = [], threading.Event()

    def work(item):
        started.append(item)
        if item == "slow":
            assert gate.wait(10), "'b' never ran beside 'slow'"
        if item == "b":
            gate.set()
        return item.upper()

    # 'b' waits for 'a' (index 0), 'slow' holds a worker until 'b' has run on the other one
    deps = {"a": set(), "slow": set(), "b": {0}, "c": {2}}
    items = ["a", "slow", "b", "c"]
    out = queue_side_by_side(work, items, 2, lambda i, done: deps[items[i]] <= done)
    assert out == ["A", "SLOW", "B", "C"] and started.index("c") > started.index("b")

    ran = []

    def fails(item):
        ran.append(item)
        if item == "x":
            raise BadInputError("x broke")
        return item

    with pytest.raises(BadInputError, match="x broke"):
        queue_side_by_side(fails, ["x", "after"], 1, lambda i, done: True)
    assert ran == ["x"]  # nothing new starts after a failure


def test_a_frameworks_techniques_start_while_the_other_still_trains(monkeypatch, tmp_path):
    """With both frameworks building side by side, torch's technique groups run as soon as its
    baseline exists: here tf's training only ends once a torch group has run (else a deadlock,
    caught by the timeout), and 'train' / 'optimize' are both timed."""
    import threading

    from pilotopt.pipeline import run, stage_jobs
    from pilotopt.variants import Variant

    cfg = load_config(None, {"techniques": ["torch_static", "tflite_int8"], "variants": {},
                             "executor": {"build_workers": 2}})
    torch_went = threading.Event()

    def train_one(cfg_, out, roots, fw, threads, say):
        if fw == "tf":
            assert torch_went.wait(20), "no torch technique ran while tf trained"
        return tmp_path / fw

    def group(cfg_, out, roots, baseline, job, threads, tagged, say, given=None):
        fw, items, _ = job
        if fw == "torch":
            torch_went.set()
        return [Variant(name=n, runtime="x", artifact=None, framework=fw) for n in items]

    monkeypatch.setattr(stage_jobs, "train_baseline", train_one)
    monkeypatch.setattr(stage_jobs, "optimize_group", group)
    monkeypatch.setattr(run, "_description", lambda v: v.name)
    clock = run.StageClock(lambda line: None)
    planned = run._train_and_optimize(cfg, tmp_path, [], clock, lambda line: None)
    names = {p["name"] for p in planned}
    assert names == {"torch_static", "tflite_int8"}
    assert set(clock.stages) == {"train", "optimize"} and all(v["ok"] for v in clock.stages.values())
