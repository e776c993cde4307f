"""Benchmarks and budgets of the program's own figures (`make bench`, tests/test_budgets.py)."""
