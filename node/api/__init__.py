"""The node's HTTP API (DESIGN §9): JSON over Starlette, served by Hypercorn under trio.

Reads only what the node exposes through ``NodeAPI``; holds no keys.
"""
