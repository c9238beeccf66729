"""PySyft 0.9.5 bridge: factory datasites, uploads, review and the researcher client.

The only package that imports ``syft``. Modules that do not need it (``config``,
``identity``, ``output_rule``, ``code_findings`` and the start/stop half of
``launch``) import without it, so ``workbench datasite down`` stays fast.
"""
