"""End-to-end fault injection on real node processes: manifests, perturbations, checks.

Drives nodes only through their CLI and HTTP API (and, once stopped, their stores).
Part of ``node``: it may import anything; nothing outside ``node`` imports it.
"""
