"""Evaluation: accuracy, demographic-differential and speed measurements (pure, no I/O)."""
