"""Everything that touches torch and diffusers. Imports no gradio."""

__version__ = "0.3.0"
