"""Crystal imaging: read images, remove illumination, noise and imperfections, count
crystals and agglomerates, measure the crystal size distribution.

Plain functions over numpy arrays (scikit-image style); only :mod:`~workbench.imaging.io`
touches files. The usual entry point is :func:`workbench.imaging.pipeline.analyze`.
This package never imports syft.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.pipeline import analyze
>>> report = analyze(np.full((128, 128), 0.7, np.float32), camera="legacy")
>>> report.method, "count" in report.to_json()
('classical', True)
"""
