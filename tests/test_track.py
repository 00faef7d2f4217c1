import numpy as np
import pytest

from pilotopt.errors import BadInputError
from pilotopt.sim.circuits import circuit_names, load_circuit
from pilotopt.sim.track import Track

# Centre-line lengths of the Gazebo circuits (spec section 2); ours must be within 10 %. Every
# registered circuit's geometry is checked in test_registries.py.
REFERENCE_LENGTHS = {"simple": 463, "nurburgring": 586, "montmelo": 764, "many_curves": 797, "montreal": 1513}


@pytest.mark.parametrize("name", circuit_names())
def test_circuit_length(name):
    track = load_circuit(name)
    if name in REFERENCE_LENGTHS:
        assert abs(track.length - REFERENCE_LENGTHS[name]) <= 0.10 * REFERENCE_LENGTHS[name]
    else:
        assert 400 <= track.length <= 1000


@pytest.mark.parametrize("name", ["simple", "montreal"])
def test_directions_are_the_same_loop_reversed(name):
    ccw = load_circuit(name, "anticlockwise")
    cw = load_circuit(name, "clockwise")
    assert ccw.is_anticlockwise and not cw.is_anticlockwise
    assert cw.length == pytest.approx(ccw.length, rel=1e-9)
    np.testing.assert_allclose(cw.points[::-1], ccw.points)


def test_projection_of_offset_point():
    track = load_circuit("simple")
    i = 500
    p = track.points[i] + 0.5 * track.normals[i]
    proj = track.project(p, hint=i - 3)
    assert proj.lateral == pytest.approx(0.5, abs=1e-6)
    assert proj.s == pytest.approx(track.s[i], abs=1e-6)
    assert track.project(track.points[i] - 1.25 * track.normals[i]).lateral == pytest.approx(-1.25, abs=1e-6)


def _write(tmp_path, rows, name="c.csv"):
    path = tmp_path / name
    path.write_text("x,y\n" + "\n".join(f"{x},{y}" for x, y in rows) + "\n")
    return path


def _circle(n=60, r=60.0):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def test_user_circuit_from_csv(tmp_path):
    pts = _circle()
    track = Track.from_csv(_write(tmp_path, np.vstack([pts, pts[:1]])))
    assert track.length == pytest.approx(2 * np.pi * 60, rel=0.01)
    assert track.min_radius() == pytest.approx(60, rel=0.05)
    # and through the circuit loader, by path
    assert load_circuit(str(tmp_path / "c.csv")).length == pytest.approx(track.length)


@pytest.mark.parametrize("rows, message", [
    ([(0, 0), (10, 0), (0, 0)], "at least 4"),
    ([(0, 0), (100, 0), (float("nan"), 50), (0, 50), (0, 0)], "NaN"),
    ([(x, 0.0) for x in np.linspace(0, 300, 30)], "not closed"),
    ([(0, 0), (100, 100), (100, 0), (0, 100), (0, 0)], "self-intersecting"),
])
def test_malformed_circuit_csv(tmp_path, rows, message):
    with pytest.raises(BadInputError, match=message):
        Track.from_csv(_write(tmp_path, rows))


def test_tiny_corner_and_overlapping_road_rejected(tmp_path):
    # a 100 m x 60 m rectangle with points every 5 m: the spline's corners are ~2 m in radius
    edge = np.linspace(0, 1, 20, endpoint=False)[:, None]
    corners = np.array([[0, 0], [100, 0], [100, 60], [0, 60], [0, 0]], dtype=float)
    rect = np.vstack([a + edge * (b - a) for a, b in zip(corners[:-1], corners[1:])])
    with pytest.raises(BadInputError, match="radius"):
        Track.from_csv(_write(tmp_path, np.vstack([rect, rect[:1]])))
    # a long thin loop whose two straights are 5 m apart: the 8 m roads would overlap
    xs = np.linspace(0, 200, 40)
    thin = np.vstack([np.stack([xs, np.zeros_like(xs)], 1),
                      [[215, 2.5]],
                      np.stack([xs[::-1], np.full_like(xs, 5.0)], 1),
                      [[-15, 2.5]]])
    with pytest.raises(BadInputError):
        Track.from_csv(_write(tmp_path, thin))


def test_non_numeric_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\nthree,4\n5,6\n7,8\n")
    with pytest.raises(BadInputError, match="line 3"):
        Track.from_csv(path)


def test_unknown_circuit_name():
    with pytest.raises(BadInputError, match="unknown circuit 'atlantis'"):
        load_circuit("atlantis")
    with pytest.raises(BadInputError, match="direction"):
        load_circuit("simple", "sideways")
