"""Benchmarks: the app's engine against plain diffusers calls on the same pipeline.

Run `python -m benchmarks.run [--quick] [--device cuda]`; results go to docs/PERFORMANCE.md.
"""
