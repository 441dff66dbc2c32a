"""Command-line interface: parse, call a service, render. Nothing else."""
