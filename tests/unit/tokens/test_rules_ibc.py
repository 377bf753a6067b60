"""Transfers between communes (tokens/rules_ibc.py, docs/communes.md): light clients,
packets, acknowledgements, timeouts, vouchers going home, every refusal, conservation."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, expect_invalid, keypair
from tests.unit.tokens.test_properties import check_conservation
from tests.unit.tokens.twocommunes import FAR, Communes, make_commit, make_header, misbehaviour_tx, prove, update_tx
from tokens import InvalidLedgerBlock, apply_block, get_account
from tokens import ibc as I
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value
from tokens.queries_ibc import get_channel_view, get_ibc_view, get_in_flight, get_transfers, get_vouchers
from wire import DecodeError

NET_WH = 1351       # household 0 of A after the settlement of test_rules_euro.produce_and_settle


@pytest.fixture
def net() -> Communes:
    return Communes()


def kwh(chain, key) -> int:
    return get_account(chain.kv, key.public)["balances"]["kwh"]


def escrow(chain, dest: bytes, cls: str = "kwh") -> int:
    raw = chain.kv.get(I.key_escrow(dest, cls))
    return 0 if raw is None else decode_value(raw)


def supply(chain, origin: bytes, cls: str = "kwh") -> int:
    raw = chain.kv.get(I.key_voucher_supply(origin, cls))
    return 0 if raw is None else decode_value(raw)


def check_cross_conservation(net: Communes) -> None:
    """Σ escrowed on A = Σ vouchers of A's kWh on B + Σ in flight from A, exactly; and each
    chain's own books balance with escrow counted as held."""
    in_flight = sum(p.amount for p in get_in_flight(net.a.kv, net.id_b) if p.denom == "kwh"
                    and net.b.kv.get(I.key_receipt(net.id_a, p.seq)) is None)
    in_flight_back = sum(p.amount for p in get_in_flight(net.b.kv, net.id_a)
                         if net.a.kv.get(I.key_receipt(net.id_b, p.seq)) is None)
    assert escrow(net.a, net.id_b) == supply(net.b, net.id_a) + in_flight + in_flight_back
    holders = sum(decode_value(v) for k, v in net.b.kv.iter_prefix(I.VOUCHER + net.id_a))
    assert holders == supply(net.b, net.id_a)
    check_books(net.a)
    check_books(net.b)


def check_books(chain) -> None:
    """Σ balances + treasury + funds + escrow == minted − allocated (kwh), 0 (hour)."""
    accounts = [decode_value(v) for _, v in chain.kv.iter_prefix(L.ACCOUNT)]
    funds = [decode_value(v)[0] for _, v in chain.kv.iter_prefix(L.FUND)]
    treasury = decode_value(chain.kv.get(L.TREASURY))
    minted, allocated = decode_value(chain.kv.get(L.META_TOTALS))
    held = {cls: sum(decode_value(v) for k, v in chain.kv.iter_prefix(I.ESCROW) if k.endswith(cls.encode()))
            for cls in ("kwh", "hour")}
    assert sum(a[0] for a in accounts) + treasury[0] + sum(funds) + held["kwh"] == minted - allocated
    assert sum(a[1] for a in accounts) + treasury[1] + held["hour"] == 0


def test_a_transfer_escrows_on_a_mints_vouchers_on_b_and_is_acknowledged(net):
    sender, receiver = net.keys_a[0], net.keys_b[2]
    packet = net.transfer(sender, 500)
    assert kwh(net.a, sender) == NET_WH - 500 and escrow(net.a, net.id_b) == 500
    denom = I.compute_voucher_denom(net.id_a, "kwh")
    assert get_vouchers(net.b.kv, receiver.public) == {denom: 500} and supply(net.b, net.id_a) == 500
    # Acknowledged: the commitment is gone, the escrow stays behind the vouchers.
    assert net.a.kv.get(I.key_commitment(net.id_b, packet.seq)) is None
    out = get_transfers(net.a.kv)["outgoing"][0]
    assert out["status"] == I.STATUS_DELIVERED and out["amount"] == 500
    incoming = get_transfers(net.b.kv)["incoming"][0]
    assert incoming["ok"] and incoming["credited_as"] == denom
    check_cross_conservation(net)
    # The receiving commune's own books are untouched by vouchers; A's count the escrow.
    check_conservation(net.b.kv)
    assert get_channel_view(net.a.kv, net.id_b)["escrow"] == {"kwh": 500}


def test_vouchers_go_home_and_release_the_escrow(net):
    net.transfer(net.keys_a[0], 500)
    holder = net.keys_b[2]
    denom = I.compute_voucher_denom(net.id_a, "kwh")
    back = net.transfer(holder, 200, src=net.b, denom=denom, receiver=net.keys_a[3].public)
    assert back.denom == denom
    assert get_vouchers(net.b.kv, holder.public) == {denom: 300} and supply(net.b, net.id_a) == 300
    assert escrow(net.a, net.id_b) == 300 and kwh(net.a, net.keys_a[3]) == 200
    check_cross_conservation(net)


def test_an_error_acknowledgement_refunds_the_sender(net):
    sender = net.keys_a[0]
    packet = net.transfer(sender, 400, receiver=T.SOLIDARITY)
    assert decode_value(net.b.kv.get(I.key_receipt(net.id_a, packet.seq))) == [False, "bad_receiver"]
    assert supply(net.b, net.id_a) == 0
    assert kwh(net.a, sender) == NET_WH and escrow(net.a, net.id_b) == 0
    assert get_transfers(net.a.kv)["outgoing"][0]["status"] == I.STATUS_REFUNDED
    check_cross_conservation(net)


def test_a_timeout_refunds_with_a_proof_of_absence_at_a_later_destination_time(net):
    sender = net.keys_a[0]
    deadline = net.b.time_s + 5
    data, packet = net.send(sender, 300, timeout_s=deadline)
    net.a.block([data])
    assert kwh(net.a, sender) == NET_WH - 300
    height = net.relay_header(net.b)
    expect_invalid(net.a, net.timeout(packet, height), "not_expired")
    net.b.block(at=deadline + 10)
    late = net.relay_header(net.b)
    # The destination refuses the packet from its timeout on.
    expect_invalid(net.b, net.recv(packet, net.relay_header(net.a)), "expired")
    net.a.block([net.timeout(packet, late)])
    assert kwh(net.a, sender) == NET_WH and escrow(net.a, net.id_b) == 0
    assert get_transfers(net.a.kv)["outgoing"][0]["status"] == I.STATUS_TIMED_OUT
    expect_invalid(net.a, net.timeout(packet, late), "unknown_sequence")
    check_cross_conservation(net)


def test_invalid_timeout_of_a_packet_that_was_received(net):
    data, packet = net.send(net.keys_a[0], 300, timeout_s=net.b.time_s + 5)
    net.a.block([data])
    net.b.block([net.recv(packet, net.relay_header(net.a))])
    net.b.block(at=net.b.time_s + 10)
    # The receipt is there: a proof of its absence cannot be made.
    expect_invalid(net.a, net.timeout(packet, net.relay_header(net.b)), "bad_proof")


def test_invalid_packet_with_a_bad_proof_or_a_forged_amount(net):
    data, packet = net.send(net.keys_a[0], 100)
    net.a.block([data])
    height = net.relay_header(net.a)
    forged = dataclasses.replace(packet, amount=100_000)
    good = decode_value_tx(net.recv(packet, height))
    expect_invalid(net.b, T.RecvPacket(packet=forged, proof_height=height, proof=good.proof).encode(), "bad_proof")
    wrong_key = prove(net.a, I.key_outgoing(net.id_b, packet.seq), net.roots[(net.id_a, height)])
    expect_invalid(net.b, T.RecvPacket(packet=packet, proof_height=height, proof=wrong_key).encode(), "bad_proof")
    expect_invalid(net.b, T.RecvPacket(packet=packet, proof_height=height, proof=b"\x07junk").encode(), "bad_proof")
    assert supply(net.b, net.id_a) == 0


def decode_value_tx(data: bytes) -> T.Tx:
    return T.decode_tx(data)


def test_invalid_replayed_packet_mints_nothing_twice(net):
    data, packet = net.send(net.keys_a[0], 100)
    net.a.block([data])
    recv = net.recv(packet, net.relay_header(net.a))
    # Twice in one block: the second is refused, the block with both is invalid.
    with pytest.raises(InvalidLedgerBlock) as info:
        apply_block(net.b.kv, net.b.genesis, net.b.ctx(), [recv, recv])
    assert info.value.reason == "replayed" and info.value.index == 1
    net.b.block([recv])
    expect_invalid(net.b, recv, "replayed")
    assert supply(net.b, net.id_a) == 100


def test_invalid_packet_proven_against_an_unknown_client_or_height(net):
    data, packet = net.send(net.keys_a[0], 100)
    net.a.block([data])
    height = net.relay_header(net.a)
    recv = net.recv(packet, height)
    stranger = dataclasses.replace(packet, source=bytes(range(32)))
    expect_invalid(net.b, T.RecvPacket(packet=stranger, proof_height=height, proof=b"").encode(), "unknown_client")
    expect_invalid(net.b, T.RecvPacket(packet=packet, proof_height=height + 50, proof=b"").encode(),
                   "unknown_height")
    elsewhere = dataclasses.replace(packet, dest=bytes(range(32)))
    expect_invalid(net.b, T.RecvPacket(packet=elsewhere, proof_height=height, proof=b"").encode(), "wrong_chain")
    net.b.block([recv])


def test_invalid_packet_against_a_frozen_client_and_the_alert_reaches_both_councils(net):
    data, packet = net.send(net.keys_a[0], 100)
    net.a.block([data])
    update, header = net.update(net.a)
    net.b.block([update])
    # A's validators sign a second header at the same height: B's client of A freezes.
    twin = dataclasses.replace(header, tx_root=b"\x01" * 32)
    twin_commit = make_commit(twin, VALIDATORS[:4])
    net.b.block([update_tx(header=twin, commit=twin_commit).encode()])
    client = decode_value(net.b.kv.get(I.key_client(net.id_a)))
    assert client[I.C_FROZEN] == header.height
    view = get_ibc_view(net.b.kv)["clients"][0]
    assert view["frozen"] and view["evidence"]["height"] == header.height
    expect_invalid(net.b, net.recv(packet, header.height), "client_frozen")
    expect_invalid(net.b, net.update(net.a)[0], "client_frozen")
    # Relayed to A: its own validators' double header is recorded for its council.
    evidence = misbehaviour_tx(header_a=header, commit_a=make_commit(header, VALIDATORS[:4]), header_b=twin,
                              commit_b=twin_commit).encode()
    net.a.block([evidence])
    assert get_ibc_view(net.a.kv)["self_misbehaviour"][0]["height"] == header.height
    expect_invalid(net.a, evidence, "evidence_known")


def test_misbehaviour_tx_freezes_a_client_from_two_headers_never_relayed_before(net):
    h1, c1 = make_header(net.b, VALIDATORS[:3], salt=b"x")
    h2, c2 = make_header(net.b, VALIDATORS[:3], salt=b"y")
    net.a.block([misbehaviour_tx(header_a=h1, commit_a=c1, header_b=h2, commit_b=c2).encode()])
    assert decode_value(net.a.kv.get(I.key_client(net.id_b)))[I.C_FROZEN] == h1.height
    data, _ = net.send(net.keys_a[0], 10)
    expect_invalid(net.a, data, "client_frozen")


def test_invalid_misbehaviour_of_one_header_twice_or_different_heights(net):
    h1, c1 = make_header(net.b, VALIDATORS[:3])
    expect_invalid(net.a, misbehaviour_tx(header_a=h1, commit_a=c1, header_b=h1, commit_b=c1).encode(), "bad_evidence")
    h2 = dataclasses.replace(h1, height=h1.height + 1)
    expect_invalid(net.a, misbehaviour_tx(header_a=h1, commit_a=c1, header_b=h2,
                                         commit_b=make_commit(h2, VALIDATORS[:3])).encode(), "bad_evidence")


def test_invalid_acknowledgement_for_an_unknown_sequence_or_a_forged_outcome(net):
    data, packet = net.send(net.keys_a[0], 100)
    net.a.block([data])
    net.b.block([net.recv(packet, net.relay_header(net.a))])
    height = net.relay_header(net.b)
    # Claiming an error (a refund) when the destination minted is refused.
    expect_invalid(net.a, net.ack(packet, height, ok=False, reason="bad_receiver"), "bad_proof")
    unknown = dataclasses.replace(packet, seq=99)
    expect_invalid(net.a, T.Acknowledge(packet=unknown, ok=True, reason="ok", proof_height=height,
                                        proof=b"").encode(), "unknown_sequence")
    altered = dataclasses.replace(packet, receiver=net.keys_b[0].public)
    expect_invalid(net.a, T.Acknowledge(packet=altered, ok=True, reason="ok", proof_height=height,
                                        proof=b"").encode(), "packet_mismatch")
    net.a.block([net.ack(packet, height)])
    expect_invalid(net.a, net.ack(packet, height), "unknown_sequence")
    assert escrow(net.a, net.id_b) == 100


def test_invalid_sends(net):
    sender = net.keys_a[0]
    # A credit line never leaves the commune: only what is held is sent.
    data, _ = net.send(sender, NET_WH + 1)
    expect_invalid(net.a, data, "insufficient_balance")
    data, _ = net.send(net.keys_a[2], 1)     # household 2 is in debt
    expect_invalid(net.a, data, "insufficient_balance")
    data, _ = net.send(sender, 0)
    expect_invalid(net.a, data, "zero_amount")
    data, _ = net.send(sender, 10, timeout_s=net.a.time_s)
    expect_invalid(net.a, data, "timeout_passed")
    data, _ = net.send(sender, 10, denom="gold")
    expect_invalid(net.a, data, "unknown_class")
    data, _ = net.send(sender, 10, denom="ibc/0000000000000000/kwh")
    expect_invalid(net.a, data, "not_origin")
    data, _ = net.send(sender, 10, denom="IBC/x")
    expect_invalid(net.a, data, "bad_denom")
    stray = net.a.tx(T.SendToCommune, sender, dest=bytes(range(32)), receiver=sender.public, denom="kwh", amount=1,
                     timeout_s=FAR)
    expect_invalid(net.a, stray, "unknown_client")
    own = net.a.tx(T.SendToCommune, sender, dest=net.id_a, receiver=sender.public, denom="kwh", amount=1,
                   timeout_s=FAR)
    expect_invalid(net.a, own, "own_chain")


def test_invalid_create_client(net):
    expect_invalid(net.a, net.create_client(net.a, net.b), "client_exists")
    expect_invalid(net.a, net.create_client(net.a, net.b, by=net.keys_a[0]), "not_registrar")
    own = net.a.tx(T.CreateClient, REGISTRAR, chain_id=net.id_a, name="self", validators=(b"\x01" * 32,),
                   from_height=1)
    expect_invalid(net.a, own, "own_chain")
    twice = net.a.tx(T.CreateClient, REGISTRAR, chain_id=bytes(range(32)), name="c",
                     validators=(b"\x01" * 32, b"\x01" * 32), from_height=1)
    expect_invalid(net.a, twice, "bad_set")


def test_update_client_refusals(net):
    update, header = net.update(net.b)
    net.a.block([update])
    expect_invalid(net.a, update, "header_known")
    # Signed by validators the client does not trust.
    outsiders = [keypair("outsider", i) for i in range(3)]
    forged, _ = make_header(net.b, VALIDATORS[:3], dt_s=2)
    bad = update_tx(header=forged, commit=make_commit(forged, outsiders), next_validators=())
    expect_invalid(net.a, bad.encode(), "bad_header")
    # One signature of three is short of the quorum.
    short = update_tx(header=forged, commit=make_commit(forged, VALIDATORS[:1]), next_validators=())
    expect_invalid(net.a, short.encode(), "bad_header")
    unknown = dataclasses.replace(forged, chain_id=bytes(range(32)))
    expect_invalid(net.a, update_tx(header=unknown, commit=make_commit(unknown, VALIDATORS[:3]),
                                         next_validators=()).encode(), "unknown_client")


def test_update_client_follows_a_validator_set_change(net):
    new_set = [VALIDATORS[1], VALIDATORS[2], keypair("new-validator")]
    header, commit = make_header(net.b, VALIDATORS[:3], next_set=new_set)
    without = update_tx(header=header, commit=commit, next_validators=())
    expect_invalid(net.a, without.encode(), "bad_set")
    wrong = update_tx(header=header, commit=commit, next_validators=(VALIDATORS[0].public,))
    expect_invalid(net.a, wrong.encode(), "bad_set")
    net.a.block([update_tx(header=header, commit=commit,
                                next_validators=tuple(k.public for k in new_set)).encode()])
    net.b.block()
    sets = get_ibc_view(net.a.kv)["clients"][0]["validator_sets"]
    assert [s["from_height"] for s in sets] == [1, header.height + 1]
    # The next header must be signed by the new set; the old one alone no longer will do.
    after, _ = make_header(net.b, new_set)
    old_only = update_tx(header=after, commit=make_commit(after, [VALIDATORS[0]] + VALIDATORS[1:2]),
                              next_validators=())
    expect_invalid(net.a, old_only.encode(), "bad_header")
    net.a.block([update_tx(header=after, commit=make_commit(after, new_set), next_validators=()).encode()])
    assert get_ibc_view(net.a.kv)["clients"][0]["latest_height"] == after.height


def test_packets_and_txs_round_trip_and_reject_an_oversized_proof(net):
    data, packet = net.send(net.keys_a[0], 100)
    assert T.decode_tx(data) == T.decode_tx(T.decode_tx(data).encode())
    assert T.decode_tx(T.RecvPacket(packet=packet, proof_height=1, proof=b"").encode()).packet == packet
    with pytest.raises(DecodeError):
        T.decode_tx(T.RecvPacket(packet=packet, proof_height=1, proof=b"x" * (T.MAX_IBC_PROOF_BYTES + 1)).encode())


def test_invalid_update_of_bytes_that_are_no_header_or_no_commit(net):
    header, commit = make_header(net.b, VALIDATORS[:3])
    junk = T.UpdateClient(header=b"\x93not a header", commit=commit.encode(), next_validators=())
    expect_invalid(net.a, junk.encode(), "bad_header")
    no_commit = T.UpdateClient(header=header.encode(), commit=b"\xc0", next_validators=())
    expect_invalid(net.a, no_commit.encode(), "bad_header")
    with pytest.raises(DecodeError):
        T.decode_tx(T.UpdateClient(header=b"h" * 513, commit=b"", next_validators=()).encode())


def test_a_ledger_without_header_rules_fails_loudly_not_as_an_invalid_tx(net):
    # DESIGN §1: the ledger judges headers by the rules node/ gives it; forgetting them is
    # a wiring bug that must crash, never a refusal a proposer would silently drop.
    update, _ = net.update(net.b)
    with pytest.raises(RuntimeError, match="header rules"):
        apply_block(net.a.kv, net.a.genesis, net.a.ctx(), [update])
    data, _ = net.send(net.keys_a[0], 10)
    assert apply_block(net.a.kv, net.a.genesis, net.a.ctx(), [data]).tx_ids     # other txs need none


def test_many_transfers_both_ways_keep_both_chains_exact(net):
    denom = I.compute_voucher_denom(net.id_a, "kwh")
    for amount in (50, 70, 90):
        net.transfer(net.keys_a[0], amount)
    net.transfer(net.keys_b[2], 60, src=net.b, denom=denom, receiver=net.keys_a[1].public)
    net.transfer(net.keys_a[0], 30, receiver=T.SOLIDARITY)      # refunded
    assert escrow(net.a, net.id_b) == 150 == supply(net.b, net.id_a)
    check_cross_conservation(net)
    check_conservation(net.b.kv)
    assert net.a.state_hash() == net.a.full_hash() and net.b.state_hash() == net.b.full_hash()
