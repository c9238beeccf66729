"""Synthetic brightfield micrographs of translucent sugar seed crystals, with exact truth.

The mock data on every datasite and the oracle every accuracy test is scored against.

Examples
--------
>>> from workbench.synth import synthesize
>>> sample = synthesize("legacy", seed=0, shape=(128, 160))
>>> sample.image.shape, sample.truth["camera"]
((128, 160), 'legacy')
"""

from workbench.synth.generate import SyntheticImage, synthesize
from workbench.synth.write import generate_set, write_sample

__all__ = ["SyntheticImage", "generate_set", "synthesize", "write_sample"]
