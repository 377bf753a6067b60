"""The books of transfers between communes, packet by packet (tokens/books_ibc.py), read
from two real ledgers (tests/unit/tokens/twocommunes.py): every packet state balances
exactly; a lost packet, a refund with a mint, a mint without a send, or two reads not
taken together show as problems."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.twocommunes import Communes
from tokens import books_ibc as B
from tokens import ibc as I
from tokens import txs as T


@pytest.fixture
def net() -> Communes:
    return Communes()


def read_now(here, there) -> B.ChainRead:
    """``here``'s books with ``there`` at its current height, as GET /ibc/books serves them."""
    other = there.genesis.chain_id
    return B.ChainRead.decode(here.height, other, B.get_book_entries(here.kv, other))


def books(net: Communes, src=None, dst=None) -> B.DirectionBooks:
    src_read, dst_read = src or read_now(net.a, net.b), dst or read_now(net.b, net.a)
    return B.compute_books(net.id_a, net.id_b, "kwh", src_read, dst_read, ("A", "B"))


def every_state(net: Communes) -> dict[str, T.Packet]:
    """One packet from A to B in each state, of distinct amounts."""
    sender = net.keys_a[0]
    deadline = net.b.time_s + 5
    data, timed_out = net.send(sender, 1, timeout_s=deadline)
    net.a.block([data])
    net.b.block(at=deadline + 10)
    net.a.block([net.timeout(timed_out, net.relay_header(net.b))])
    packets = {B.TIMED_OUT: timed_out, B.DELIVERED: net.transfer(sender, 2),
               B.REFUNDED: net.transfer(sender, 4, receiver=T.SOLIDARITY)}
    data, packets[B.IN_FLIGHT] = net.send(sender, 8)
    net.a.block([data])
    for state, receiver in ((B.MINTED, None), (B.REFUSED, T.SOLIDARITY)):
        data, packets[state] = net.send(sender, 16 if state == B.MINTED else 32, receiver=receiver)
        net.a.block([data])
        net.b.block([net.recv(packets[state], net.relay_header(net.a))])
    net.relay_header(net.b)         # A's client follows B past both receipts
    return packets


def test_every_packet_state_balances_exactly(net):
    packets = every_state(net)
    got = books(net)
    assert got.problems == [] and got.conserved
    assert got.packets == {state: 1 for state in packets}
    assert got.escrow == 2 + 8 + 16 + 32 and got.vouchers == 2 + 16
    assert got.in_flight == 8 + 16 + 32 and got.in_flight_packets == 3 and got.minted_not_acked == 16
    assert got.escrow == got.vouchers + got.in_flight - got.minted_not_acked
    assert got.statuses == {I.STATUS_TIMED_OUT: 1, I.STATUS_DELIVERED: 1, I.STATUS_REFUNDED: 1, I.STATUS_SENT: 3}
    assert got.as_dict()["heights"] == {"A": net.a.height, "B": net.b.height}
    with pytest.raises(KeyError, match="not among the books"):
        read_now(net.a, net.b).get(I.key_client(net.id_a))      # a key of the books with another chain


def tampered(read: B.ChainRead, key: bytes, value) -> B.ChainRead:
    return dataclasses.replace(read, values={**read.values, key: value})


def test_invalid_books_of_a_packet_acknowledged_and_never_received(net):
    packets = every_state(net)
    dst = tampered(read_now(net.b, net.a), I.key_receipt(net.id_a, packets[B.DELIVERED].seq), None)
    got = books(net, dst=dst)
    assert not got.conserved
    assert any(f"packet {packets[B.DELIVERED].seq} (2 kwh): delivered on the source, no receipt" in p
               for p in got.problems)


def test_invalid_books_of_a_packet_refunded_and_minted(net):
    packets = every_state(net)
    seq = packets[B.TIMED_OUT].seq
    dst = read_now(net.b, net.a)
    dst = tampered(dst, I.key_receipt(net.id_a, seq), [True, I.ACK_OK])
    dst = tampered(dst, I.key_voucher_supply(net.id_a, "kwh"), dst.get(I.key_voucher_supply(net.id_a, "kwh")) + 1)
    got = books(net, dst=dst)
    assert not got.conserved
    assert any(f"packet {seq} (1 kwh): timed-out on the source, an ok receipt" in p for p in got.problems)


@pytest.mark.parametrize("side, key_of, delta, words", [
    ("dst", lambda net: I.key_voucher_supply(net.id_a, "kwh"), 5, "23 vouchers on the destination, but its "
                                                                  "receipts minted 18"),
    ("src", lambda net: I.key_escrow(net.id_b, "kwh"), -1, "escrow 57 on the source, but its packets back 58"),
], ids=["vouchers-minted", "escrow-released"])
def test_invalid_books_of_vouchers_minted_or_escrow_released_without_a_packet(net, side, key_of, delta, words):
    every_state(net)
    reads = {"src": read_now(net.a, net.b), "dst": read_now(net.b, net.a)}
    reads[side] = tampered(reads[side], key_of(net), reads[side].get(key_of(net)) + delta)
    got = books(net, reads["src"], reads["dst"])
    assert not got.conserved and got.problems == [words]


def test_invalid_reads_not_taken_together_are_not_compared(net):
    # B read before it received the packet, A after it was acknowledged: the packet would
    # look lost. A's client of B proves a state B's read does not cover: not compared.
    data, packet = net.send(net.keys_a[0], 5)
    net.a.block([data])
    early_b = read_now(net.b, net.a)
    net.b.block([net.recv(packet, net.relay_header(net.a))])
    net.a.block([net.ack(packet, net.relay_header(net.b))])
    late_a = read_now(net.a, net.b)
    assert not B.is_read_together(net.id_a, net.id_b, late_a, early_b)
    got = books(net, src=late_a, dst=early_b)
    assert not got.conserved and "cannot be compared" in got.problems[0]
    # Read together, the same packet is delivered and the books balance.
    assert books(net).conserved and books(net).packets == {B.DELIVERED: 1}


def test_invalid_packet_of_another_denomination_is_not_counted_silently(net):
    net.transfer(net.keys_a[0], 500)
    denom = I.compute_voucher_denom(net.id_a, "kwh")
    net.transfer(net.keys_b[2], 200, src=net.b, denom=denom, receiver=net.keys_a[3].public)
    got = B.compute_books(net.id_b, net.id_a, "kwh", read_now(net.b, net.a), read_now(net.a, net.b))
    assert not got.conserved and got.problems == [f"packet 1 carries {denom}: only kwh is accounted here"]
