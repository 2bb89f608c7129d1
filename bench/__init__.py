"""Benchmarks and fault runs that start their own local stack; see `bench.reliability`."""
