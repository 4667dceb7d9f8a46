"""Benchmarks and measurements run by `make bench`, not part of `make test`."""
