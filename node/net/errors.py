"""Network errors, named for whose fault they are (as h11's Local/RemoteProtocolError)."""


class NetError(Exception):
    """Base of every error raised by node.net to its callers."""


class LocalProtocolError(NetError):
    """We asked for something the protocol does not allow (our fault)."""


class RemoteProtocolError(NetError):
    """The peer broke the protocol: bad frame, oversize, wrong answer (its fault)."""


class PeerUnavailable(NetError):
    """The peer could not be reached, refused the protocol, or was too slow."""
