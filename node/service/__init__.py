"""The node process: ledger application, consensus driver, gossip handlers, block sync, HTTP.

Part of node/: it does I/O and wires the pure cores together; nothing imports it but node/.
"""
