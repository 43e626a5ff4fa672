"""Benchmarks: the app against plain diffusers calls on the same pipeline.

Run `python -m benchmarks.run [--quick] [--switches] [--device cuda]` and
`python -m benchmarks.response`; results go to docs/PERFORMANCE.md.
"""
