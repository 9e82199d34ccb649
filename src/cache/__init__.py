"""Caches shared by the runs of a sweep on one machine: a frozen encoder's features (features.py)."""
