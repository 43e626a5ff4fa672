"""Everything Gradio. Imports no torch; the engine is handed in."""

from ui.demo import build_demo

__all__ = ["build_demo"]
