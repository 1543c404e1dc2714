"""The SkyPilot lab: real SkyPilot against the real test control plane, read via the audit log.

Modules: :mod:`venvs` (cached SkyPilot installs), :mod:`lab` (control plane + scheduler + KWOK
fake nodes + the objects SkyPilot expects), :mod:`runner` (one SkyPilot operation as one
identity, with its audit events), :mod:`scenarios` (what the inventory runs) and
:mod:`inventory` (``rules/observed/skypilot-<version>.json``). Shell entry point:
``python -m tests.skypilot {build,venvs,up,run,inventory}``. See docs/skypilot-lab.md.
"""
