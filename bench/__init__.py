"""Benchmarks: run with ``make bench`` (``python -m bench``); they print their figures."""
