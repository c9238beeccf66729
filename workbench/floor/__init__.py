"""The factory floor: operators count crystals on new images with the tools their factory adopted.

A small ASGI web app (Starlette, server-rendered pages, uvicorn) served by the
factory's own machine, on loopback unless its config opens it to the plant network.
Nothing it does sends an image or a result anywhere: uploads, overlays and the batch
history stay in the factory's state folder.

Modules
-------
config    the floor's TOML (``datasites/floor/<factory>.toml``): where, limits, specification
accounts  operator and admin accounts (scrypt hashes), expiring sessions, CSRF tokens
history   SQLite batch history: batches, per-image results, batch summaries, CSV
spc       control limits (individuals chart, ±3σ) over batch values
charts    small SVG charts: control charts and the crystal size distribution
runner    counting in a process pool: hash check, count, overlay, one row per image
app       the Starlette application and its pages
service   ``workbench floor up|down|status``: one background process per factory
demo      start a floor with an adopted tool for ``make demo``
bench     the page's overhead over ``workbench count``
"""
