"""Everything that touches torch and diffusers. Imports no gradio.

Imported before torch and transformers load, it sets how they start (a user's own setting of
each wins): OpenMP's threads sleep while they wait for work instead of spinning, which on a
shared CPU made renders 4-7x slower (docs/PERFORMANCE.md); and the lines those libraries
print at every start that the app has no use for are left out.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_DISABLE_SYMLINKS_WARNING", "1")  # the cache works without them

from pipeline.quiet import leave_out_import_noise, leave_out_torchvision_advice

leave_out_import_noise()
leave_out_torchvision_advice()

__version__ = "0.3.0"
