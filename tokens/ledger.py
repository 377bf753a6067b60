"""The working view of the state during one block: an Overlay plus typed accessors.

Rules (tokens/rules_*.py, tokens/settlement.py) read and change the state only
through a ``Ledger``; the Ledger changes only its overlay, which the caller keeps or
throws away as a whole.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.genesis import Genesis
from tokens.kv import KV, Overlay
from wire.units import Height

if TYPE_CHECKING:
    from tokens.ibc import HeaderVerifier

def encode_params(params: dict[str, Any]) -> str:
    """Canonical JSON text of the parameters: sorted keys, no spaces."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


@functools.lru_cache(maxsize=8)
def parse_params(text: bytes) -> dict[str, Any]:
    """The stored parameters, parsed once per distinct value: check_tx builds a Ledger
    per transaction. Callers never change the dict in place (set_params stores anew)."""
    return json.loads(text)


def is_registrar_at(record: list | None, height: int) -> bool:
    """A ``reg/`` record [since, until or 0] is in force at ``height`` if since <= height < until."""
    return record is not None and record[0] <= height and (record[1] == 0 or height < record[1])


class Ledger:
    """State access for one block (or one mempool check) at block time ``now_ms``."""

    __slots__ = ("ov", "genesis", "chain_id", "height", "now_ms", "now_s", "proposer", "_params",
                 "events", "version", "headers", "keys", "resalted")

    def __init__(self, kv: KV, genesis: Genesis, height: Height, now_ms: int, proposer: bytes = b"",
                 headers: HeaderVerifier | None = None, keys: Any = None) -> None:
        self.ov = Overlay(kv)
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.height = height
        self.now_ms = now_ms
        self.now_s = now_ms // 1000
        self.proposer = proposer
        self._params: dict[str, Any] | None = None
        self.events: list = []   # what happened, for the API (settlements, epochs ...)
        self.version = 1         # the protocol version of this block (tokens/upgrades.py)
        # Other chains' header rules (tokens.ibc.HeaderVerifier), for the light clients.
        self.headers = headers
        # docs/privacy.md: the commune data keys this node holds (tokens.sealing.Keyring),
        # and the committed entries whose leaf takes a salt in this block.
        self.keys = keys
        self.resalted: set[bytes] = set()

    # -- parameters -------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        if self._params is None:
            text = self.ov.get(L.META_PARAMS)
            self._params = parse_params(text) if text is not None else dict(self.genesis.params)
        return self._params

    def set_params(self, params: dict[str, Any]) -> None:
        self.ov.put(L.META_PARAMS, encode_params(params))
        self._params = None

    def get_credit_limit(self, cls: str) -> int:
        return self.params["credit_limit"][cls]

    # -- meta -------------------------------------------------------------------------

    def get_meta(self, key: bytes, default: Any) -> Any:
        value = self.ov.get(key)
        return default if value is None else value

    # -- who is who -------------------------------------------------------------------

    def is_registrar(self, key: bytes) -> bool:
        return is_registrar_at(self.ov.get(L.key_registrar(key)), self.height)

    def get_household(self, addr: bytes) -> list | None:
        return self.ov.get(L.HOUSEHOLD + addr)

    def require_household(self, addr: bytes, reason: str = "unknown_signer") -> list:
        hh = self.ov.get(L.HOUSEHOLD + addr)
        if hh is None:
            raise InvalidTx(reason, f"{addr.hex()[:16]}… is not a registered household")
        return hh

    def require_registrar(self, key: bytes) -> None:
        # DESIGN §3/§4: registrar transactions are signed by a registrar key of the state
        # (genesis, then RegistrarSetChange, DESIGN §12).
        if not self.is_registrar(key):
            raise InvalidTx("not_registrar", f"{key.hex()[:16]}… is not a registrar at height {self.height}")

    # -- accounts ---------------------------------------------------------------------

    def get_account(self, addr: bytes) -> list:
        """The account record [kwh, hour, nonce]; a fresh one is staged if absent and is
        written only when a rule changes it."""
        key = L.ACCOUNT + addr
        acct = self.ov.get(key)
        if acct is None:
            acct = [0, 0, 0]
            self.ov.stage(key, acct)
        return acct

    def process_nonce(self, addr: bytes, nonce: int) -> list:
        """Check and consume ``nonce``; returns the signer's account record."""
        acct = self.get_account(addr)
        # tokens/txs.py convention: strictly rising, gaps allowed.
        if nonce <= acct[L.A_NONCE]:
            raise InvalidTx("stale_nonce", f"nonce {nonce} is not above the last one, {acct[L.A_NONCE]}")
        self.check_not_ahead(nonce, "nonce_ahead", "nonce")
        acct[L.A_NONCE] = nonce
        self.ov.mark(L.ACCOUNT + addr)
        return acct

    def check_not_ahead(self, value_ms: int, reason: str, what: str) -> None:
        """A nonce or seq taken from a clock in ms may not run more than max_nonce_ahead_s
        past block time: one tx signed under a clock that jumped ahead would otherwise
        lock its signer out (strictly rising) until the chain caught up with it."""
        limit_s = self.params["max_nonce_ahead_s"]
        if value_ms > self.now_ms + limit_s * 1000:
            ahead_s = (value_ms - self.now_ms) // 1000
            raise InvalidTx(reason, f"{what} {value_ms} is {ahead_s} s ahead of the chain's clock "
                                    f"(at most {limit_s} s): the signer's clock is ahead")

    def check_spendable(self, addr: bytes, cls: str, amount: int) -> None:
        # DESIGN §4: voluntary spending may take a balance down to -credit_limit, no further.
        limit = self.get_credit_limit(cls)
        balance = self.get_balance(addr, cls)
        if balance - amount < -limit:
            raise InvalidTx("over_credit_limit",
                            f"{cls} balance {balance} - {amount} would pass the credit limit -{limit}")

    # -- balances by class name (docs/classes.md) -------------------------------------
    # kwh and hour live in the account record; a commune-defined class in its own
    # ``cbal/`` entry, written only once an account holds some of it.

    def get_balance(self, addr: bytes, cls: str) -> int:
        index = L.CLASS_INDEX.get(cls)
        if index is not None:
            return self.get_account(addr)[index]
        return self.ov.get(L.key_class_balance(addr, cls)) or 0

    def process_move(self, src: bytes, dst: bytes, cls: str, amount: int) -> None:
        """Move ``amount`` between two accounts (limits already checked)."""
        self.process_credit(src, cls, -amount)
        self.process_credit(dst, cls, amount)

    def process_credit(self, addr: bytes, cls: str, amount: int) -> None:
        index = L.CLASS_INDEX.get(cls)
        if index is None:
            key = L.key_class_balance(addr, cls)
            balance = (self.ov.get(key) or 0) + amount
            if balance:
                self.ov.put(key, balance)
            else:
                self.ov.delete(key)
            return
        acct = self.get_account(addr)
        acct[index] += amount
        self.ov.mark(L.ACCOUNT + addr)

    def get_treasury(self) -> list:
        t = self.ov.get(L.TREASURY)
        if t is None:
            t = [0, 0]
            self.ov.stage(L.TREASURY, t)
        return t

    def process_treasury(self, cls_index: int, amount: int) -> None:
        t = self.get_treasury()
        t[cls_index] += amount
        self.ov.mark(L.TREASURY)
