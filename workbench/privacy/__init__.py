"""Privacy mechanisms of a factory (no syft): audit log, secure aggregation, DP budget.

- :mod:`~workbench.privacy.audit`: an append-only, hash-chained log of everything that
  happens to a factory's data (requests, decisions, runs, releases, spends).
- :mod:`~workbench.privacy.secure_sum`: pairwise masking (X25519 + HKDF), so a pooled
  sum across factories is exact while no factory's own vector can be read.
- :mod:`~workbench.privacy.budget`: differential privacy with OpenDP noise and a
  per-researcher privacy-loss ledger.
"""
