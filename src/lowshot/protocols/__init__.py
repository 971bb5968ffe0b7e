"""Benchmark protocols: split definitions, calibrated stacking, two-stage runners."""
