"""Parity harness: a published repository's code beside lowshot on the same generated data.

See ``docs/parity.md`` and ``python -m benchmarks.parity --help``.
"""
