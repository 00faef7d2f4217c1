"""pilotopt: optimize end-to-end driving models and measure every variant offline and in closed loop."""

__version__ = "0.1.0"
