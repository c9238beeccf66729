"""Crystal Workbench: crystal counting on private microscope images, with secure remote execution.

Layers (imports point down only)::

    workbench.remote      PySyft 0.9.5 bridge (the only package that imports syft)
    workbench.federation  cross-factory aggregation
    workbench.imaging     io, denoise, segment, model, measure, pipeline
    workbench.synth       synthetic micrographs with ground truth
    workbench.camera, workbench.errors   shared vocabulary
"""

__version__ = "0.1.0"
