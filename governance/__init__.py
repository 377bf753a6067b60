"""Liquid democracy: delegation resolution, weights, allocation rules, proposal tallies (DESIGN §5).

Pure: imports only wire; no I/O, clock, randomness, trio, libp2p or plyvel.
"""
