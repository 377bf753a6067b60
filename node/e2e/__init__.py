"""End-to-end fault injection on real node processes: manifests, load, perturbations, checks, hostile peer.

Drives nodes through their CLI and HTTP API (and, once stopped, their stores), on the
localnet's process cluster. Only node/commands and node/cli.py import it; it must not
import service, api or commands.
"""
