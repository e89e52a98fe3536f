"""Load generation for ``tokenmux bench`` (see main.py)."""
