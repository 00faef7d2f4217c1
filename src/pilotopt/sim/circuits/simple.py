"""Simple circuit: the JdeRobot Behavior Metrics Gazebo F1 follow-line "simple circuit"."""

from pilotopt.sim.circuits import CircuitSpec

CIRCUIT = CircuitSpec(
    name="simple",
    control=(
        (0.0, 0.0), (30.4, 0.0), (60.8, 0.0), (66.8, 0.0), (86.6, 8.2), (94.8, 28.0), (94.8, 53.0),
        (92.5, 62.2), (86.2, 69.4), (69.9, 80.9), (58.9, 95.2), (54.1, 101.4), (46.7, 103.7),
        (39.2, 101.4), (34.3, 97.9), (5.6, 77.9), (-23.0, 57.8), (-27.9, 54.4), (-44.4, 32.9),
        (-49.5, 18.8), (-49.8, 10.0), (-44.7, 2.8), (-36.4, 0.0), (-30.4, 0.0),
    ),
    length=463.0,
    description=(
        "Gazebo 'simple circuit' of JdeRobot Behavior Metrics (F1 follow-line): a closed loop "
        "with a long straight, a wide sweeper, a gentle counter-bend and two tighter corners"
    ),
    reference="Gazebo world length 463 m",
)
