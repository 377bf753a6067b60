"""Everything with I/O: libp2p host, gossip, sync, LevelDB store, HTTP API, CLI, meters, localnet.

May import every package of ours; nothing of ours may import node.
"""
