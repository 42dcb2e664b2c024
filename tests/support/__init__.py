"""Helpers the tests (and benchmarks) share: not shipped with the package."""
