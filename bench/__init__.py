"""Benchmarks: each prints a table and writes JSON; run one from the repository's root, `python -m bench.NAME`."""
