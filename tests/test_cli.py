"""The CLI as a user meets it: real subprocesses, exit codes, one-line errors, no tracebacks."""

import json
import os
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    env = dict(os.environ, COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "pilotopt", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err


@pytest.mark.parametrize("args", [[], ["sim"], ["bench"], ["sim", "drive"], ["sim", "dataset"],
                                  ["sim", "list"], ["bench", "sim"], ["bench", "runtimes"], ["train"],
                                  ["optimize"], ["evaluate"], ["list"], ["list", "techniques"],
                                  ["list", "conditions"], ["report"], ["report", "publish"]])
def test_help_everywhere(args):
    proc = run(*args, "--help")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_sim_list_shows_circuits_and_lengths():
    proc = run("sim", "list")
    assert proc.returncode == 0
    for name in ("simple", "montreal", "nurburgring"):
        assert name in proc.stdout
    assert "expert" in proc.stdout and "white_line" in proc.stdout


def test_drive_writes_json_and_plot(tmp_path):
    out = tmp_path / "run.json"
    proc = run("sim", "drive", "--brain", "expert", "--circuit", "simple", "--direction", "clockwise",
               "--json", str(out), "--plot", str(tmp_path / "p.png"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["metrics"]["lap_completed"] is True and doc["config"]["direction"] == "clockwise"
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert "position_deviation_mae" in proc.stdout


def test_unknown_circuit():
    assert_one_line_error(run("sim", "drive", "--circuit", "atlantis"), "atlantis", "simple")


def test_malformed_circuit_csv(tmp_path):
    bad = tmp_path / "loop.csv"
    bad.write_text("x,y\n0,0\n100,100\n100,0\n0,100\n0,0\n")
    assert_one_line_error(run("sim", "drive", "--circuit", str(bad)), "self-intersecting")
    bad.write_text("x,y\n0,0\n1,nan\n2,2\n3,0\n")
    assert_one_line_error(run("sim", "drive", "--circuit", str(bad)), "NaN")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(run("sim", "dataset", "--out", str(blocker / "ds"), "--circuits", "simple"),
                          str(blocker / "ds"))
    assert_one_line_error(run("sim", "drive", "--json", str(blocker / "x" / "r.json")), "cannot write")


def test_bad_mode_and_video_format(tmp_path):
    assert_one_line_error(run("sim", "drive", "--mode", "warp"), "warp")
    assert_one_line_error(run("sim", "drive", "--video", str(tmp_path / "v.avi")), ".avi")


def test_dataset_command(tmp_path):
    proc = run("sim", "dataset", "--out", str(tmp_path / "ds"), "--circuits", "simple",
               "--directions", "clockwise", "--laps", "0.05", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ds" / "simple_clockwise_1" / "data.csv").is_file()


@pytest.mark.slow
def test_bench_sim_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = run("bench", "sim", "--out", str(out), "--frames", "20", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    s = doc["summary"]
    assert s["full_frame_640x480_fps"] > 0 and s["pilotnet_view_fps"] > s["full_frame_640x480_fps"]
    assert s["expert_real_time_factor_with_camera"] > 1.0


def test_sim_drive_from_latency_samples_is_reproducible_and_bad_samples_are_one_line(tmp_path):
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([4.0, 30.0, 55.0]))  # ms
    outs = []
    for k in range(2):
        out = tmp_path / f"m{k}.json"
        proc = run("sim", "drive", "--brain", "classic", "--mode", "realtime", "--latency-samples", str(samples),
                   "--condition", "slow:2", "--repetition", "1", "--interventions", "--timeout", "8",
                   "--json", str(out))
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(out.read_text())["metrics"])
    keep = ("completed_distance", "position_deviation_mae", "interventions", "driving_score", "brain_steps",
            "mean_emulated_latency_ms")
    assert [{k: m[k] for k in keep} for m in outs] == [{k: outs[0][k] for k in keep}] * 2
    assert outs[0]["latency_source"] == "distribution" and outs[0]["condition"] == "slow:2"
    assert outs[0]["mean_emulated_latency_ms"] > 10.0  # drawn from the samples, x2
    samples.write_text('{"variants": []}')
    assert_one_line_error(run("sim", "drive", "--mode", "realtime", "--latency-samples", str(samples)),
                          "latency samples", "found 0")
    assert_one_line_error(run("sim", "drive", "--condition", "fog"), "unknown condition 'fog'")


def test_progress_lines_survive_another_thread_silencing_stderr():
    """`run` builds two frameworks side by side in one process; a thread that silences a converter's
    C++ chatter redirects file descriptor 2 for the whole process, which once swallowed the other
    thread's progress lines. The command's lines go to a copy of the original stderr."""
    code = ("import threading\n"
            "from pilotopt.cli.progress import line_sayer\n"
            "from pilotopt.frameworks import quiet_stderr\n"
            "say = line_sayer()\n"
            "with quiet_stderr():\n"
            "    t = threading.Thread(target=say, args=('from the other thread',)); t.start(); t.join()\n"
            "    import sys; print('swallowed', file=sys.stderr, flush=True)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "from the other thread" in r.stderr and "swallowed" not in r.stderr


# -- technique settings: one declaration each -------------------------------------------------------
def test_a_misspelled_technique_default_stops_a_run_before_any_work(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("technique_defaults: {calibraton_frames: 50}\n")
    out = tmp_path / "out"
    proc = run("run", "--config", str(cfg), "--out", str(out))
    assert_one_line_error(proc, "technique_defaults", "'calibraton_frames'", "did you mean 'calibration_frames'")
    assert not out.exists()


def test_list_techniques_settings_prints_every_declared_setting():
    from pilotopt.techniques import techniques

    proc = run("list", "techniques", "--settings")
    assert proc.returncode == 0, proc.stderr
    blocks: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines()[:-1]:  # the last line says how to set one
        if line.startswith("  "):
            blocks[name].append(line)
        else:
            name, _, rest = line.partition(":")
            assert rest in ("", " no settings"), line
            blocks[name] = []
    # the CLI runs in a fresh process: techniques that test modules register in this one are not in it
    known = {n: t for n, t in techniques().items() if not n.startswith("test_")}
    assert list(blocks) == list(known)
    for name, tech in known.items():  # every setting as declared: type, default, allowed values, description
        assert blocks[name] == [f"  {p.name} ({p.type_name}, default {p.default_text}"
                                f"{', ' + p.bounds if p.bounds else ''}): {p.description}" for p in tech.settings], name
    assert blocks["keras"] == [] and "keras: no settings" in proc.stdout
    for name in ("tflite_int8", "openvino_int8", "onnx_int8_static", "torch_static"):  # one name per knob
        assert any(b.startswith("  calibration_frames (int, default 200, >= 1): TRAINING frames the activation "
                                "ranges are measured on") for b in blocks[name]), name
    assert "  backend (str, default executorch, one of executorch, pt2): executorch: XNNPACK int8 kernels " \
           "(.pte); pt2: q/dq reference program (.pt2)" in blocks["torch_static"]
    assert any(b.startswith("  final_sparsity (float, default 0.8, in [0, 1)): ") for b in blocks["tf_prune"])
    assert "representative_frames" not in proc.stdout and "subset_size" not in proc.stdout
    assert all(len(b.split("): ", 1)[1]) > 5 for lines in blocks.values() for b in lines)  # a description each
