"""Benchmarks (not tests): `make bench` or `python -m bench.run`. Results go to bench/results/*.json."""
