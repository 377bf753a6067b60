"""The relayer between two communes (docs/communes.md): reads both nodes' HTTP APIs and
posts the proof-carrying txs. Imports tokens/wire and node.errors; no service code."""
