"""Linky meter ingestion (DESIGN §10): TIC parsing, frame-to-reading mapping, serial/file
sources, and the agent that signs cumulative readings and submits them to a node.

Part of node/: it may use pyserial, httpx and trio; nothing of ours may import it except node/.
"""
