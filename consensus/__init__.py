"""Tendermint-style BFT engine as a sans-I/O state machine, blocks, commits, evidence (DESIGN §6).

Pure: imports only wire; no I/O, clock, randomness, trio, libp2p or plyvel.
"""
