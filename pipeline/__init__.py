"""Everything that touches torch and diffusers. Imports no gradio."""
