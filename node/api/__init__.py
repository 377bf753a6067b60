"""The node's HTTP API and dashboard (DESIGN §9): JSON over Starlette, served by Hypercorn under trio.

Reads committed state through store snapshots and tokens.queries; holds no keys.
Imported only by node/service (the runner); it must not import node.service's runner.
"""
