import math

import pytest

from pilotopt.sim.vehicle import Vehicle, VehicleLimits, VehicleState, arc


def test_full_circle_returns_to_start():
    v, w = 10.0, 0.5
    x, y, th = 0.0, 0.0, 0.3
    steps = 40
    dt = (2 * math.pi / w) / steps
    for _ in range(steps):
        x, y, th = arc(x, y, th, v, w, dt)
    assert (x, y) == pytest.approx((0.0, 0.0), abs=1e-9)


def test_step_size_does_not_change_the_path():
    a = (0.0, 0.0, 0.0)
    b = (0.0, 0.0, 0.0)
    for _ in range(10):
        a = arc(*a, 8.0, 1.3, 0.1)
    for _ in range(1000):
        b = arc(*b, 8.0, 1.3, 0.001)
    assert a == pytest.approx(b, abs=1e-9)


def test_straight_line_and_limits():
    car = Vehicle(VehicleState(0, 0, 0), VehicleLimits(v_max=20, w_max=1.0))
    car.command(50.0, -3.0)
    assert car.cmd == (20.0, -1.0)
    car.command(10.0, 0.0)
    car.advance(2.0)
    assert (car.state.x, car.state.y) == pytest.approx((20.0, 0.0))
    assert car.state.odometer == pytest.approx(20.0)
    car.command(float("nan"), 0.0)
    assert car.cmd[0] == 0.0


def test_actuator_lag_is_first_order():
    car = Vehicle(VehicleState(0, 0, 0), VehicleLimits(lag=0.2))
    car.command(10.0, 0.0)
    car.advance(0.2)
    assert car.state.v == pytest.approx(10.0 * (1 - math.exp(-1)), rel=1e-3)
    assert car.state.x < 10.0 * 0.2
