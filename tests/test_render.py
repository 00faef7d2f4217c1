import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.preprocess import crop_resize
from pilotopt.sim.appearance import appearance, variant_names
from pilotopt.sim.camera import CameraModel, PilotNetView, RowsView
from pilotopt.sim.circuits import load_circuit
from pilotopt.sim.render import Renderer


@pytest.fixture(scope="module")
def track():
    return load_circuit("simple")


def _pose(track, i, lateral=0.0, dtheta=0.0):
    x, y = track.points[i] + lateral * track.normals[i]
    return (x, y, track.heading_at(i) + dtheta)


def test_frame_geometry(track):
    cam = CameraModel()
    assert cam.focal == pytest.approx(320.0, abs=0.5)  # 90 deg over 640 px
    frame = Renderer(track).render_frame(_pose(track, 10))
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    look = appearance("default")
    # zero pitch: sky above row 240, ground below
    sky = frame[:240].reshape(-1, 3).astype(int)
    assert np.all(sky[:, 2] > sky[:, 1])  # blue-ish everywhere above the horizon
    ground = frame[240:]
    assert not np.any(np.all(ground == frame[0, 0], axis=-1))


def _straightest(track, ahead=100):
    k = np.abs(track.curvature)
    window = np.array([k[(i + np.arange(ahead)) % len(k)].max() for i in range(0, len(k), 10)])
    return int(np.argmin(window)) * 10


def test_line_in_the_middle_when_on_the_line(track):
    i = _straightest(track)
    frame = Renderer(track).render_frame(_pose(track, i))
    bottom = frame[470].astype(int)
    red = (bottom[:, 0] > 150) & (bottom[:, 1] < 80)
    cols = np.nonzero(red)[0]
    assert len(cols) > 20
    assert abs(cols.mean() - 320) < 10
    # offset 1 m to the left of the line: the line appears right of centre
    frame = Renderer(track).render_frame(_pose(track, i, lateral=1.0))
    bottom = frame[470].astype(int)
    red_cols = np.nonzero((bottom[:, 0] > 150) & (bottom[:, 1] < 80))[0]
    assert len(red_cols) == 0 or red_cols.mean() > 400


@pytest.mark.parametrize("look", ["default", "walls", "textured+shadows+noisy", "white_line+dusk"])
def test_brain_view_equals_preprocessed_full_frame(track, look):
    """Rendering only the pixels PilotNet reads gives exactly what preprocessing a full frame gives."""
    r = Renderer(track, look=look, seed=3)
    view = PilotNetView()
    for i, k in [(10, 0), (1200, 5), (3000, 11)]:
        pose = _pose(track, i, lateral=0.7, dtheta=0.05)
        assert np.array_equal(r.render_view(view, pose, k), crop_resize(r.render_frame(pose, k)))
    rows = RowsView([250, 300])
    pose = _pose(track, 42)
    assert np.array_equal(r.render_view(rows, pose, 2), r.render_frame(pose, 2)[[250, 300]])


@pytest.mark.parametrize("circuit", ["simple", "montreal"])
def test_one_pass_view_equals_the_two_pass_render(circuit):
    """The compiled shade-and-resize pass (plain looks) gives the bytes of shading the view's source
    grid and resizing it, at random poses on and off the road, for PilotNet's geometry and another."""
    from pilotopt.preprocess import Geometry

    track = load_circuit(circuit)
    r = Renderer(track, look="dusk")
    rng = np.random.default_rng(7)
    views = [PilotNetView(), PilotNetView(geometry=Geometry(crop_top=260, crop_bottom=470, height=80, width=160))]
    for view in views:
        assert r._fused_view(view) is not None  # the one-pass path is the one under test
        for i in rng.integers(0, len(track.points), 40):
            pose = _pose(track, int(i), lateral=rng.uniform(-6, 6), dtheta=rng.uniform(-1.0, 1.0))
            two_pass = view.finish(r.render_rgba(pose, view.rows, view.cols))[..., :3]
            assert np.array_equal(r.render_view(view, pose), two_pass)
            assert np.array_equal(r.render_view(view, pose), view.from_full(r.render_frame(pose)))


def test_compiled_sensor_noise_equals_its_numpy_arithmetic():
    from pilotopt.sim.conditions.camera_noise import GaussianBank, _to_pixels

    image = np.random.default_rng(0).integers(0, 256, (66, 200, 3), dtype=np.uint8)
    for std in (2.0, 40.0):
        bank = GaussianBank(np.random.default_rng(5))
        noisy = bank.add(image, std)
        again = np.random.default_rng(5)
        values = again.standard_normal(image.size * (GaussianBank.FRAMES + 1), dtype=np.float32)
        start = int(again.integers(image.size * GaussianBank.FRAMES + 1))
        expected = values[start:start + image.size].reshape(image.shape) * np.float32(std)
        expected += image
        assert np.array_equal(noisy, _to_pixels(expected, np.uint8))
        assert not np.array_equal(noisy, image)


def test_view_renders_far_fewer_pixels():
    view = PilotNetView()
    assert len(view.rows) * len(view.cols) < 0.2 * 640 * 480


def test_variants_change_the_picture(track):
    pose = _pose(track, _straightest(track))
    base = Renderer(track).render_frame(pose)
    white = Renderer(track, look="white_line").render_frame(pose)
    assert tuple(white[470, 320]) == (235, 235, 235) and tuple(base[470, 320]) == (200, 30, 30)
    dark = Renderer(track, look="dark").render_frame(pose)
    assert dark.mean() < 0.7 * base.mean()
    walls = Renderer(track, look="walls").render_frame(pose)
    assert not np.array_equal(walls[200:240], base[200:240])  # walls rise above the horizon
    noisy_a = Renderer(track, look="noisy", seed=1).render_frame(pose, 0)
    noisy_b = Renderer(track, look="noisy", seed=1).render_frame(pose, 0)
    assert np.array_equal(noisy_a, noisy_b)  # deterministic under the seed
    assert not np.array_equal(noisy_a, Renderer(track, look="noisy", seed=1).render_frame(pose, 1))
    assert set(variant_names()) >= {"default", "white_line", "dark", "textured", "noisy", "shadows", "walls"}


def test_unknown_variant():
    with pytest.raises(BadInputError, match="unknown visual variant 'neon'"):
        appearance("dark+neon")


def test_preprocess_rejects_wrong_frame_size():
    with pytest.raises(BadInputError, match="640 x 480"):
        crop_resize(np.zeros((240, 320, 3), np.uint8))


def test_ground_field_is_built_once_and_then_read_from_the_disk_cache(track, tmp_path, monkeypatch):
    """Every drive and recording process needs the field (about a second to build): the second
    process reads the stored one, the same numbers, and a corrupt file is only rebuilt."""
    from pilotopt.sim import render

    monkeypatch.setenv("PILOTOPT_CACHE", str(tmp_path))
    monkeypatch.setattr(render, "_FIELDS", {})
    built = render.ground_field(track)
    files = list((tmp_path / "ground_fields").glob("*.npz"))
    assert len(files) == 1
    probe = track.points[::50] + 1.5 * track.normals[::50]

    def no_build(self, *a, **k):
        raise AssertionError("the field was built again instead of read from the cache")

    with monkeypatch.context() as m:  # a new process: nothing in memory, the file on disk
        m.setattr(render, "_FIELDS", {})
        m.setattr(render.GroundField, "__init__", no_build)
        read = render.ground_field(track)
    np.testing.assert_array_equal(read.coef, built.coef)
    np.testing.assert_array_equal(read.offset_at(probe), built.offset_at(probe))
    assert (read.x0, read.y0, read.ncx, read.ncy) == (built.x0, built.y0, built.ncx, built.ncy)

    files[0].write_bytes(b"not a field")
    monkeypatch.setattr(render, "_FIELDS", {})
    again = render.ground_field(track)
    np.testing.assert_array_equal(again.coef, built.coef)
    with np.load(files[0]) as z:  # rewritten whole
        np.testing.assert_array_equal(z["coef"], built.coef)


def test_the_ground_field_cache_keeps_the_newest_fields_only(track, tmp_path, monkeypatch):
    """Every edited circuit stores a field of 17-30 MB: the cache keeps the newest few and clears
    what a killed writer left half-written."""
    import os

    from pilotopt.sim import render

    monkeypatch.setenv("PILOTOPT_CACHE", str(tmp_path))
    monkeypatch.setattr(render, "_FIELDS", {})
    monkeypatch.setattr(render, "FIELD_CACHE_KEEP", 2)
    folder = tmp_path / "ground_fields"
    folder.mkdir()
    for i, name in enumerate(("old_a.npz", "old_b.npz")):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (1000 + i, 1000 + i))
    dead = folder / ".f.npz.tmp-999999999-1"  # no such process
    dead.write_bytes(b"half")
    render.ground_field(track)
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 2 and "old_b.npz" in left and "old_a.npz" not in left
    assert render._field_file(track).name in left
