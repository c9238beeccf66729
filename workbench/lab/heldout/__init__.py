"""A second renderer of brightfield seed-crystal frames, for evaluation only.

Designed apart from :mod:`workbench.synth` (the renderer the counters are tuned and
trained on) and sharing none of its rendering code: crystals are 3-D convex solids of
several habits, projected at random tilts; rims come from refraction (light deflected
past the objective's acceptance) and from defocus (a transport-of-intensity halo whose
polarity follows the sign of the defocus); the sensor adds shot, read and fixed-pattern
noise and, on colour cameras, a Bayer mosaic. A counter that scores well on
:mod:`workbench.synth` but not here has learned that renderer, not crystals.

Examples
--------
>>> from workbench.lab.heldout import render_heldout
>>> frame = render_heldout("legacy", seed=0, shape=(128, 160))
>>> frame.truth["renderer"], frame.image.shape
('heldout', (128, 160))
"""

from workbench.lab.heldout.render import HeldoutFrame, render_heldout
from workbench.lab.heldout.write import write_heldout_set

__all__ = ["HeldoutFrame", "render_heldout", "write_heldout_set"]
