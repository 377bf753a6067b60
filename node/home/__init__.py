"""Home directories and key files: genesis, config and the node's Ed25519 key on disk (DESIGN §3).

Plain file I/O; it imports wire and tokens' genesis reader, never the network, store, API or CLI.
"""
