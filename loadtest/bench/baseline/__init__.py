"""The original write-up's serving approach, as the benchmark's baseline (app.py)."""
