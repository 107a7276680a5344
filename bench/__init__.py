"""Benchmarks: each writes JSON + a markdown table (and plots) under reports/."""
