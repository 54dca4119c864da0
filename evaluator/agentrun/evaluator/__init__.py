"""Benchmarks a model (base or adapter) on held-out scenarios of the email task."""
