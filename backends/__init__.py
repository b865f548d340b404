"""Backends: each folder registers itself with graphc.backend when imported."""
