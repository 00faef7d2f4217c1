"""The one-command pipeline: train, optimize, measure offline, drive every variant on every circuit, report."""
