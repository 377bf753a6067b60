"""The one exception type of the wire layer."""


class DecodeError(ValueError):
    """Bytes that are not a valid message. The fault is always the sender's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
