"""Offline evaluation: one protocol for every variant (size, error, latency), in fresh processes."""
