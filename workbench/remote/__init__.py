"""PySyft 0.9.5 bridge: factory datasites, uploads, review and the researcher client.

The only package that imports ``syft``; ``config``, ``identity``, ``output_rule``,
``code_findings`` and the start/stop half of ``launch`` import without it, so
``workbench datasite down`` stays fast.

One factory, one datasite process (``launch``): pinned identity, blobs and database
in the factory's state folder, loopback by default, the security wraps
(``_hardening``) and syft bug fixes (``_syft_fixes``) installed before the server
forks. The admin uploads image folders (``upload``), creates researcher accounts
(``admin``) and reviews code requests (``review``). A researcher (``client``) submits
one function, e.g. ``counting.count_crystals``, to many factories and collects one
row of aggregates per factory. ``demo`` and ``bench`` run the whole round trip.
"""
