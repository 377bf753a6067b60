"""The running node: wiring (runner), consensus driver, gossip handlers, mempool, metrics, sign state, audit.

It does I/O and wires the pure cores together over home, net, store and api; it must
not import commands, e2e, localnet, bench or sim (test behaviour is passed in by commands).
"""
