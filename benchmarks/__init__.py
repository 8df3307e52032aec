"""Benchmarks for sngep (not part of the installed package).

Run from the repository root: ``python -m benchmarks.<name> [--quick]``.
"""
