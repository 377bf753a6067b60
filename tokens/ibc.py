"""Transfers between communes: the state keys, denominations, packet commitments and
the light client of another commune's chain (docs/communes.md). Pure.

A commune keeps, for each chain its registrars linked (``CreateClient``), a light
client: the chain's validator sets from a trusted height on, and the headers a relayer
brought it (``UpdateClient``): >= quorum of the set in force at its height signed its
commit, and a header that changes the set carries the new keys, which must hash to what
it commits to. A header's ``state_hash`` is the chain's state root after the previous
height, against which packet commitments, receipts and acknowledgements are proven
(wire/merkle.py).

Headers and commits travel in the txs as opaque bytes: what they are and when a commit
makes a header final are consensus's rules, which the ledger does not import (DESIGN §1).
It asks a ``HeaderVerifier`` that node/ passes to every ledger it builds
(consensus.lightsync.HEADER_RULES): pure and deterministic, so every node judges a
relayed header alike.

State keys (values are msgpack objects, tokens/kv.py); ``chain`` is a 32-byte chain id:

==================================  =========================================================
``ibc/client/`` chain               [name, latest height, frozen height or 0, created height,
                                    evidence or None: [height, block id, other block id, the
                                    other header, its commit] (encoded)]
``ibc/cset/`` chain ‖ from          [keys...]: its validator set from that height on
``ibc/cons/`` chain ‖ height        [block id, state root, time ms]: its verified header
``ibc/seq/`` dest                   the next sequence of packets sent to ``dest``
``ibc/commit/`` dest ‖ seq          sha256 of the packet: proven to ``dest`` (sent, not done)
``ibc/out/`` dest ‖ seq             [sender, receiver, denom, amount, timeout s, height, time s,
                                    status]: a packet sent, for the dashboard and the relayer
``ibc/escrow/`` dest ‖ class        what this chain's own class holds in escrow for ``dest``
``ibc/rcpt/`` source ‖ seq          [ok, reason]: the receipt and acknowledgement, proven to
                                    ``source`` (its absence proves a timeout)
``ibc/in/`` source ‖ seq            [sender, receiver, denom, amount, height, time s, ok, reason]
``ibc/vch/`` origin ‖ key ‖ class   a voucher balance: ``class`` of chain ``origin``, held here
``ibc/vsup/`` origin ‖ class        the vouchers of that class in circulation here
``ibc/self/`` height                [block id, other block id]: this chain's own validators
                                    signed two headers at that height (relayed evidence)
==================================  =========================================================

Sequences and heights in keys are 8-byte big-endian.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tokens.errors import InvalidTx
from tokens.kv import Overlay
from tokens.layout import from_u64, u64
from tokens.rules_validators import get_set_at
from tokens.txs import Packet

CLIENT = b"ibc/client/"
CLIENT_SET = b"ibc/cset/"
CONSENSUS = b"ibc/cons/"
SEQUENCE = b"ibc/seq/"
COMMITMENT = b"ibc/commit/"
OUTGOING = b"ibc/out/"
ESCROW = b"ibc/escrow/"
RECEIPT = b"ibc/rcpt/"
INCOMING = b"ibc/in/"
VOUCHER = b"ibc/vch/"
VOUCHER_SUPPLY = b"ibc/vsup/"
SELF_MISBEHAVIOUR = b"ibc/self/"

# ``ibc/client/`` fields.
C_NAME, C_LATEST, C_FROZEN, C_CREATED, C_EVIDENCE = range(5)
# ``ibc/cons/`` fields.
CS_BLOCK_ID, CS_ROOT, CS_TIME_MS = range(3)
# ``ibc/out/`` fields.
O_SENDER, O_RECEIVER, O_DENOM, O_AMOUNT, O_TIMEOUT, O_HEIGHT, O_TIME, O_STATUS = range(8)
# ``ibc/in/`` fields.
I_SENDER, I_RECEIVER, I_DENOM, I_AMOUNT, I_HEIGHT, I_TIME, I_OK, I_REASON = range(8)

STATUS_SENT, STATUS_DELIVERED, STATUS_REFUNDED, STATUS_TIMED_OUT = "sent", "delivered", "refunded", "timed-out"
ACK_OK = "ok"
VOUCHER_PREFIX = "ibc/"
SHORT_ID_BYTES = 8          # 16 hex digits name a chain in a voucher: no collision among 36,000 communes
CLASS_RE = re.compile(r"[a-z][a-z0-9_-]{0,7}")
VOUCHER_RE = re.compile(r"ibc/([0-9a-f]{16})/([a-z][a-z0-9_-]{0,7})")


def key_client(chain: bytes) -> bytes:
    return CLIENT + chain


def key_client_set(chain: bytes, from_height: int) -> bytes:
    return CLIENT_SET + chain + u64(from_height)


def key_consensus(chain: bytes, height: int) -> bytes:
    return CONSENSUS + chain + u64(height)


def key_sequence(dest: bytes) -> bytes:
    return SEQUENCE + dest


def key_commitment(dest: bytes, seq: int) -> bytes:
    return COMMITMENT + dest + u64(seq)


def key_outgoing(dest: bytes, seq: int) -> bytes:
    return OUTGOING + dest + u64(seq)


def key_escrow(dest: bytes, cls: str) -> bytes:
    return ESCROW + dest + cls.encode()


def key_receipt(source: bytes, seq: int) -> bytes:
    return RECEIPT + source + u64(seq)


def key_incoming(source: bytes, seq: int) -> bytes:
    return INCOMING + source + u64(seq)


def key_voucher(origin: bytes, holder: bytes, cls: str) -> bytes:
    return VOUCHER + origin + holder + cls.encode()


def key_voucher_supply(origin: bytes, cls: str) -> bytes:
    return VOUCHER_SUPPLY + origin + cls.encode()


def key_self_misbehaviour(height: int) -> bytes:
    return SELF_MISBEHAVIOUR + u64(height)


def split_chain_seq(key: bytes, prefix: bytes) -> tuple[bytes, int]:
    """(chain id, sequence) of an ``ibc/commit/``, ``ibc/out/``, ``ibc/rcpt/`` or ``ibc/in/`` key."""
    rest = key[len(prefix):]
    return rest[:32], from_u64(rest[32:40])


# -- denominations --------------------------------------------------------------------

def compute_short_id(chain: bytes) -> str:
    """The 16 hex digits that name a chain in its vouchers' denominations."""
    return chain[:SHORT_ID_BYTES].hex()


def compute_voucher_denom(origin: bytes, cls: str) -> str:
    """The name of ``cls`` of chain ``origin`` as a voucher elsewhere: ibc/<short id>/<class>."""
    return f"{VOUCHER_PREFIX}{compute_short_id(origin)}/{cls}"


@dataclass(frozen=True)
class Denom:
    """A parsed denomination: a class of chain ``origin`` (a chain's own class: origin is it)."""

    cls: str
    short_origin: str | None        # None: the sending chain's own class


def parse_denom(denom: str) -> Denom:
    match = VOUCHER_RE.fullmatch(denom)
    if match:
        return Denom(match.group(2), match.group(1))
    if CLASS_RE.fullmatch(denom):
        return Denom(denom, None)
    raise InvalidTx("bad_denom", f"{denom[:40]!r} is neither a class name nor a voucher ibc/<16 hex>/<class>")


def compute_packet_commitment(packet: Packet) -> bytes:
    """The value kept under the packet's commitment key: sha256 of the encoded packet."""
    return hashlib.sha256(packet.encode()).digest()


# -- light clients --------------------------------------------------------------------

def get_client(ov: Overlay, chain: bytes) -> list | None:
    return ov.get(key_client(chain))


def require_client(ov: Overlay, chain: bytes) -> list:
    """The light client of ``chain``: it exists and is not frozen."""
    client = ov.get(key_client(chain))
    if client is None:
        raise InvalidTx("unknown_client", f"this commune has no light client of chain {chain.hex()[:16]}… "
                                          "(its registrars link it with CreateClient)")
    if client[C_FROZEN]:
        raise InvalidTx("client_frozen", f"the light client of chain {chain.hex()[:16]}… is frozen since "
                                         f"misbehaviour at height {client[C_FROZEN]}")
    return client


def get_client_sets(ov: Overlay, chain: bytes) -> list[tuple[bytes, list]]:
    """The client's validator sets, (``ibc/cset/`` key, keys) in height order."""
    return list(ov.iter_prefix(CLIENT_SET + chain))


def get_client_set_at(sets: list[tuple[bytes, list]], chain: bytes, height: int) -> list[bytes]:
    """The set the client follows at ``height``: the last one starting at or below it."""
    return get_set_at(sets, height, CLIENT_SET + chain)


def get_consensus(ov: Overlay, chain: bytes, height: int) -> list | None:
    return ov.get(key_consensus(chain, height))


def require_consensus(ov: Overlay, chain: bytes, height: int) -> list:
    state = ov.get(key_consensus(chain, height))
    if state is None:
        raise InvalidTx("unknown_height", f"the light client of chain {chain.hex()[:16]}… has no verified header "
                                          f"at height {height} (a relayer sends it with UpdateClient first)")
    return state


# -- headers: consensus's rules, behind an interface ----------------------------------

class HeaderView(Protocol):
    """What a ledger reads of a decoded header (consensus.block.Header is one)."""

    @property
    def chain_id(self) -> bytes: ...
    @property
    def height(self) -> int: ...
    @property
    def time_ms(self) -> int: ...
    @property
    def state_hash(self) -> bytes: ...        # the chain's state root after height - 1
    @property
    def next_validators(self) -> bytes: ...   # the hash of the set that signs height + 1


class HeaderVerifier(Protocol):
    """A chain's header rules: how a header decodes, when a commit makes it final, and the
    hash a header commits to for a validator set. Pure and deterministic. Each method
    raises ValueError (with a one-line reason) on bad input."""

    def decode_header(self, data: bytes) -> HeaderView:
        """The header encoded in ``data``."""

    def verify_commit(self, header: HeaderView, commit: bytes, validators: Sequence[bytes]) -> bytes:
        """The block id of ``header``, whose ``commit`` >= quorum of ``validators`` signed."""

    def compute_validators_hash(self, validators: Sequence[bytes]) -> bytes:
        """What a header's ``next_validators`` holds for ``validators``."""


def decode_header(rules: HeaderVerifier, data: bytes) -> HeaderView:
    try:
        return rules.decode_header(data)
    except ValueError as exc:
        raise InvalidTx("bad_header", f"not a header: {exc}") from None


def verify_header(rules: HeaderVerifier, header: HeaderView, commit: bytes, validators: Sequence[bytes]) -> bytes:
    """The block id of ``header``, signed by >= quorum of ``validators``. Raises InvalidTx ``bad_header``."""
    if not validators:
        raise InvalidTx("bad_header", f"no validator set is known for height {header.height}")
    try:
        return rules.verify_commit(header, commit, validators)
    except ValueError as exc:
        raise InvalidTx("bad_header", f"header {header.height}: {exc}") from None


def verify_client_header(rules: HeaderVerifier, chain: bytes, sets: list[tuple[bytes, list]], header: HeaderView,
                         commit: bytes) -> bytes:
    """The block id of ``header``, a header of ``chain`` whose commit >= quorum of the set
    the client follows at its height signed (Tendermint light client, sequential step).
    Raises InvalidTx ``bad_header``."""
    if header.chain_id != chain:
        raise InvalidTx("bad_header", "the header is of another chain")
    return verify_header(rules, header, commit, get_client_set_at(sets, chain, header.height))


def compute_next_set(rules: HeaderVerifier, chain: bytes, sets: list[tuple[bytes, list]], header: HeaderView,
                     next_validators: tuple[bytes, ...], latest: int) -> tuple[int, tuple[bytes, ...]] | None:
    """The set change ``header`` makes, (from height, keys) (None: it makes none), checked
    against what the client knows. Raises InvalidTx ``set_mismatch`` / ``bad_set``."""
    known = get_client_set_at(sets, chain, header.height + 1)
    if header.next_validators == rules.compute_validators_hash(known):
        return None
    if header.height + 1 <= from_u64(sets[-1][0][len(CLIENT_SET) + len(chain):]):
        raise InvalidTx("set_mismatch", f"header {header.height} commits to a next set other than the one the "
                                        "client already follows there")
    if header.height < latest:
        raise InvalidTx("set_change_behind", f"header {header.height} changes the set, but the client already "
                                             f"holds header {latest}: set changes are relayed in order")
    if not next_validators or len(set(next_validators)) != len(next_validators):
        raise InvalidTx("bad_set", f"header {header.height} changes the validator set: the update must carry "
                                   "the new keys, each once")
    if rules.compute_validators_hash(next_validators) != header.next_validators:
        raise InvalidTx("bad_set", f"the keys carried do not hash to header {header.height}'s next validators")
    return header.height + 1, tuple(next_validators)
