"""The ledger's exception family (STYLE "Applying a block"): InvalidTx and InvalidLedgerBlock."""

from __future__ import annotations


class InvalidTx(Exception):
    """A transaction that breaks a rule. ``reason`` is a short stable code for APIs and
    metrics ("bad_signature", "stale_nonce", "over_credit_limit" ...); ``detail`` is one
    human-readable line. The fault is always the transaction's author."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail or reason


class InvalidLedgerBlock(Exception):
    """A block the ledger cannot apply: a bad header field or an invalid transaction.
    (A block that breaks a consensus rule raises consensus.errors.InvalidBlock.)

    ``reason`` is the code (the InvalidTx reason when a tx caused it), ``index`` the
    position of the offending tx (None for header problems)."""

    def __init__(self, reason: str, detail: str = "", index: int | None = None) -> None:
        where = f"tx {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}: {detail}" if detail else f"{where}{reason}")
        self.reason = reason
        self.detail = detail or reason
        self.index = index
