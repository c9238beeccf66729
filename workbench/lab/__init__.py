"""Experiment harnesses above the counting library: training, benchmarks, evaluation.

``workbench.lab`` may import ``workbench.synth`` (it needs images with ground truth);
``workbench.imaging`` never does, so the counting code that runs in the sandbox and on
the factory floor carries no generator.
"""
