"""Benchmarks: `make bench` prints speed, memory and API-budget figures (medians)."""
