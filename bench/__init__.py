"""Benchmarks (`make bench`, `python -m bench [NAME ...]`): commands that print figures.

Not part of the test suite. See docs/benchmarks.md for what each one measures, the goals
from DESIGN.md section 12, and a recorded run.
"""
