"""Benchmarks. ``python -m bench [NAME ...]`` runs them and writes docs/benchmarks.md."""
