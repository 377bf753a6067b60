"""The ledger: accounts, transactions, half-hourly settlement, treasury epochs, state hash (DESIGN §4).

Pure: imports only wire and governance; no I/O, clock, randomness, trio, libp2p or plyvel.
"""
