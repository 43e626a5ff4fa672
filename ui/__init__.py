"""Everything Gradio. Imports no torch; the engine is handed in."""

from ui.demo import CSS, build_demo

__all__ = ["CSS", "build_demo"]
