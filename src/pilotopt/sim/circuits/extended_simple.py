"""Extended simple circuit: the simple circuit lengthened with extra curves."""

from pilotopt.sim.circuits import CircuitSpec

CIRCUIT = CircuitSpec(
    name="extended_simple",
    control=(
        (0.0, 0.0), (33.0, 0.0), (66.0, 0.0), (99.0, 0.0), (105.0, 0.0), (124.8, 8.2),
        (133.0, 28.0), (133.0, 34.0), (133.0, 73.1), (133.0, 79.1), (130.7, 88.3), (124.5, 95.5),
        (108.1, 106.9), (97.1, 121.3), (92.3, 127.5), (84.9, 129.8), (77.4, 127.5), (57.0, 113.1),
        (46.0, 109.5), (34.0, 113.1), (21.7, 121.7), (11.3, 124.1), (2.9, 119.2), (-0.3, 109.0),
        (1.5, 89.1), (-0.5, 77.9), (-7.8, 69.2), (-12.7, 65.7), (-27.5, 55.4), (-32.4, 52.0),
        (-47.0, 32.9), (-52.2, 18.8), (-52.4, 10.0), (-47.4, 2.8), (-39.0, 0.0), (-33.0, 0.0),
    ),
    length=700.0,
    description=(
        "Longer version of the Gazebo simple circuit (JdeRobot Behavior Metrics): the same long "
        "straight, sweepers and tight corners plus a dip, an S-bend and a wider infield loop"
    ),
    reference="no Gazebo length; 700 m chosen within 400-1000 m",
)
