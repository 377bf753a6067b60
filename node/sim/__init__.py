"""Simulations in one process: the seeded consensus simulator, byzantine actors, the ledger day, household profiles.

No sockets and no disk: it drives the pure cores under a virtual clock; it must not import net, store, api or service.
"""
