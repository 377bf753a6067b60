"""Network errors, named for whose fault they are (as h11's Local/RemoteProtocolError)."""

from node.errors import OneLineError


class NetError(Exception):
    """Base of every error raised by node.net to its callers."""


class LocalProtocolError(NetError):
    """We asked for something the protocol does not allow (our fault)."""


class RemoteProtocolError(NetError):
    """The peer broke the protocol: bad frame, oversize, wrong answer (its fault)."""


class PeerUnavailable(NetError):
    """The peer could not be reached, refused the protocol, or was too slow."""


class BlocksPruned(NetError):
    """Raised by a node's block lookup: the block body asked for was pruned here. The
    sync server answers SyncFailure with this reason; the asker tries another peer."""


class StateUnavailable(NetError):
    """Raised by a node's state-sync responder: it has no such snapshot, chunk or header.
    The server answers SyncFailure with this reason; the joiner tries another peer."""


class NetSetupError(NetError, OneLineError):
    """The network cannot start: a bad address, a corrupt or foreign identity file, a
    port in use. The operator's to fix; the CLI prints it as one line."""
