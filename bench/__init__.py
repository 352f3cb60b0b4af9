"""Benchmark scripts (run as `python bench/NAME.py`); figures they write land in bench/results/."""
