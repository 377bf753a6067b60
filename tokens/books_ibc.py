"""The books of one direction of transfers between communes, packet by packet
(docs/communes.md "Conservation"). Pure.

Each chain's entries are read in one snapshot (``get_book_entries``; GET /ibc/books/{chain}
serves them): the source S's at one height of S, the destination D's at one height of D. Each packet S sent is classified by its status on S (``ibc/out/``) and its receipt on
D (``ibc/rcpt/``), by the table below; the escrow read on S must be what the packets
still backed by it add up to, and the vouchers of S's class in circulation on D what the
packets minted there add up to. Then, exactly, escrow = vouchers + Σ in flight − Σ minted
and not yet acknowledged, and a packet lost (acknowledged, never received), refunded and
minted both, or minted without a send shows as a problem.

The two heights must be read *together*: every header of D that S's client holds is one
D's read already covers (a packet acknowledged or timed out on S was judged by a state of
D at or below D's height), and likewise every header of S that D's client holds. Read
otherwise, a packet acknowledged on S may look unreceived on D without being lost
(``is_read_together``: the caller reads again at later heights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokens import ibc as I
from tokens.kv import KV, decode_value

# A packet's state, from (status on the source, receipt on the destination).
IN_FLIGHT = "in flight"                         # committed on S, not received on D
MINTED = "minted, acknowledgement on the way"   # received on D, S still holds the commitment
REFUSED = "refused, refund on the way"          # D refused it (error receipt), S still holds it
DELIVERED = "delivered"
REFUNDED = "refunded"                           # error acknowledgement: S gave it back
TIMED_OUT = "timed out"                         # S gave it back, D never received it

# Receipt on D: None (none), True (ok: minted), False (an error: nothing minted).
PACKET_STATES: dict[tuple[str, bool | None], str] = {
    (I.STATUS_SENT, None): IN_FLIGHT,
    (I.STATUS_SENT, True): MINTED,
    (I.STATUS_SENT, False): REFUSED,
    (I.STATUS_DELIVERED, True): DELIVERED,
    (I.STATUS_REFUNDED, False): REFUNDED,
    (I.STATUS_TIMED_OUT, None): TIMED_OUT,
}
ESCROWED = (IN_FLIGHT, MINTED, REFUSED, DELIVERED)     # what S's escrow backs
VOUCHERED = (MINTED, DELIVERED)                         # what D minted
COMMITTED = (IN_FLIGHT, MINTED, REFUSED)                # S's packets in flight


def describe_receipt(receipt: bool | None) -> str:
    return {None: "no receipt", True: "an ok receipt (minted)", False: "an error receipt"}[receipt]


def get_book_prefixes(other: bytes) -> tuple[bytes, ...]:
    """The entries a chain's books with ``other`` are computed from, as sender and as
    receiver: the next sequence, the escrow and the vouchers of each class, the client of
    ``other``, every packet record to it and every receipt of a packet from it."""
    return (I.key_sequence(other), I.key_client(other), I.ESCROW + other, I.VOUCHER_SUPPLY + other,
            I.OUTGOING + other, I.RECEIPT + other)


def get_book_entries(kv: KV, other: bytes) -> dict[bytes, bytes]:
    """The entries of ``get_book_prefixes`` in ``kv`` (one snapshot), encoded."""
    return {key: raw for prefix in get_book_prefixes(other) for key, raw in kv.iter_prefix(prefix)}


@dataclass(frozen=True)
class ChainRead:
    """One chain's entries of its books with ``other``, read in one snapshot at ``height``:
    a key under the prefixes read and not in ``values`` is absent (None)."""

    height: int
    other: bytes
    values: Mapping[bytes, Any]

    @classmethod
    def decode(cls, height: int, other: bytes, entries: Mapping[bytes, bytes]) -> ChainRead:
        return cls(height, other, {key: decode_value(raw) for key, raw in entries.items()})

    def get(self, key: bytes) -> Any:
        if key in self.values:
            return self.values[key]
        if not any(key.startswith(prefix) for prefix in get_book_prefixes(self.other)):
            raise KeyError(f"entry {key!r} is not among the books read at height {self.height}")
        return None


def get_sent_count(src: ChainRead, dest: bytes) -> int:
    """How many packets the source had sent to ``dest`` at its height."""
    return (src.get(I.key_sequence(dest)) or 1) - 1


def get_client_latest(read: ChainRead, chain: bytes) -> int:
    client = read.get(I.key_client(chain))
    return 0 if client is None else client[I.C_LATEST]


def is_read_together(source: bytes, dest: bytes, src: ChainRead, dst: ChainRead) -> bool:
    """Each read covers every state of its chain the other chain's client can prove
    (a header of height h proves the state after h - 1)."""
    return (get_client_latest(src, dest) - 1 <= dst.height
            and get_client_latest(dst, source) - 1 <= src.height)


@dataclass
class DirectionBooks:
    heights: dict[str, int]
    escrow: int = 0                 # read on the source
    vouchers: int = 0               # read on the destination
    in_flight: int = 0              # Σ committed on the source, not acknowledged or refunded
    in_flight_packets: int = 0
    minted_not_acked: int = 0       # of those, Σ minted on the destination
    packets: dict[str, int] = field(default_factory=dict)     # state -> how many
    statuses: dict[str, int] = field(default_factory=dict)    # status on the source -> how many
    problems: list[str] = field(default_factory=list)

    @property
    def conserved(self) -> bool:
        return not self.problems and self.escrow == self.vouchers + self.in_flight - self.minted_not_acked

    def as_dict(self) -> dict[str, Any]:
        return {"heights": self.heights, "escrow": self.escrow, "vouchers": self.vouchers,
                "in_flight": self.in_flight, "in_flight_packets": self.in_flight_packets,
                "minted_not_acked": self.minted_not_acked, "conserved": self.conserved,
                "packets": self.packets, "statuses": self.statuses, "problems": self.problems}


def compute_books(source: bytes, dest: bytes, cls: str, src: ChainRead, dst: ChainRead,
                  names: tuple[str, str] = ("source", "destination")) -> DirectionBooks:
    """The books of packets of ``cls`` from ``source`` to ``dest``, packet by packet."""
    books = DirectionBooks(heights={names[0]: src.height, names[1]: dst.height},
                           escrow=src.get(I.key_escrow(dest, cls)) or 0,
                           vouchers=dst.get(I.key_voucher_supply(source, cls)) or 0)
    if not is_read_together(source, dest, src, dst):
        books.problems.append(f"read at heights {src.height} and {dst.height}, which do not cover what each "
                              "chain's client of the other proves: the books cannot be compared")
    sums = dict.fromkeys(PACKET_STATES.values(), 0)
    for seq in range(1, get_sent_count(src, dest) + 1):
        out = src.get(I.key_outgoing(dest, seq))
        receipt = dst.get(I.key_receipt(source, seq))
        ok = None if receipt is None else bool(receipt[0])
        if out is None:
            books.problems.append(f"packet {seq}: under the next sequence, but no record on the source")
            continue
        status = out[I.O_STATUS]
        books.statuses[status] = books.statuses.get(status, 0) + 1
        if out[I.O_DENOM] != cls:
            books.problems.append(f"packet {seq} carries {out[I.O_DENOM]}: only {cls} is accounted here")
            continue
        state = PACKET_STATES.get((status, ok))
        if state is None:
            books.problems.append(f"packet {seq} ({out[I.O_AMOUNT]} {cls}): {status} on the source, "
                                  f"{describe_receipt(ok)} on the destination")
            continue
        books.packets[state] = books.packets.get(state, 0) + 1
        sums[state] += out[I.O_AMOUNT]
    books.in_flight = sum(sums[s] for s in COMMITTED)
    books.in_flight_packets = sum(books.packets.get(s, 0) for s in COMMITTED)
    books.minted_not_acked = sums[MINTED]
    escrowed, vouchered = sum(sums[s] for s in ESCROWED), sum(sums[s] for s in VOUCHERED)
    if books.escrow != escrowed:
        books.problems.append(f"escrow {books.escrow} on the source, but its packets back {escrowed}")
    if books.vouchers != vouchered:
        books.problems.append(f"{books.vouchers} vouchers on the destination, but its receipts minted {vouchered}")
    return books
