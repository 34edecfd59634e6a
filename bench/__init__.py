"""Benchmarks: scripts that measure, print a table, and rewrite their section of BENCHMARKS.md.

Run from the repository root with the venv's Python, e.g. `.venv/bin/python -m bench.conversion`.
Speed goals are checked here, never in timed unit tests.
"""
