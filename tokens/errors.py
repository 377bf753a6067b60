"""The ledger's exception family (STYLE "Applying a block"): InvalidTx and InvalidBlock."""

from __future__ import annotations


class InvalidTx(Exception):
    """A transaction that breaks a rule. ``reason`` is a short stable code for APIs and
    metrics ("bad_signature", "stale_nonce", "over_credit_limit" ...); ``detail`` is one
    human-readable line. The fault is always the transaction's author."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail or reason


class InvalidBlock(Exception):
    """A block that cannot be applied: a bad header field or an invalid transaction.

    ``reason`` is the code (the InvalidTx reason when a tx caused it), ``index`` the
    position of the offending tx (None for header problems)."""

    def __init__(self, reason: str, detail: str = "", index: int | None = None) -> None:
        where = f"tx {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}: {detail}" if detail else f"{where}{reason}")
        self.reason = reason
        self.detail = detail or reason
        self.index = index
