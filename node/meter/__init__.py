"""Linky meter ingestion (DESIGN §10): TIC parsing, frame-to-reading mapping, serial/file
sources, and the agent that signs cumulative readings and submits them to a node.

It may use pyserial, httpx and trio, and of node/ only errors and api.status (the GET
/status parser); only node/commands imports it.
"""
