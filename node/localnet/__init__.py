"""Local multi-node test networks: the launcher and the simulated meters it feeds (DESIGN §9).

Part of node/, so it may do I/O and import every package of ours; nothing of ours imports it.
"""
