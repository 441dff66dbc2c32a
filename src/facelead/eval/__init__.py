"""Evaluation: accuracy, demographic-differential and speed measurements.

``metrics`` is pure numpy (no I/O). The runners around it (``lfw``, ``folder``)
read protocol files and images, and cache templates under ``.cache/``; they
never touch the gallery database, the index or the audit log.
"""
