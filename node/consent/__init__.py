"""A household's own data and the consents it grants (issue 20): Data Connect-shaped curves,
household-signed requests, and the OAuth2 authorization-code flow (authlib) with its grant store.

Off-chain, in the node's home: nothing here is consensus state. It may import node.errors
and node.clock only; the HTTP handlers that use it live in node/api/consent.py.
"""
