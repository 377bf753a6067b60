"""Transfers between communes (docs/communes.md; anchors: IBC ICS-07, ICS-20, IBC v2 packets).

- ``CreateClient`` (registrar): the commune's council consents to trust a chain, from
  a validator set it names (the other commune's genesis validators, or a later set).
- ``UpdateClient`` / ``Misbehaviour`` (anyone): headers of that chain, verified by its
  validators' commits; two valid headers at one height freeze the client.
- ``SendToCommune`` (a holder): escrows a class of this chain (or burns a voucher going
  home) and commits the packet under ``ibc/commit/``.
- ``RecvPacket`` (anyone, on the destination): the commitment proven against the
  source's state root; vouchers are minted (or escrow released for one coming home);
  the receipt ``ibc/rcpt/`` is the acknowledgement, ``[ok, reason]``.
- ``Acknowledge`` / ``Timeout`` (anyone, on the source): the receipt proven (present,
  or absent at a destination height whose time is past the timeout); an error or a
  timeout refunds, success leaves the escrow backing the vouchers.

Conservation, per (source A, destination B, class): escrow on A = vouchers of A's class
in circulation on B + Σ amounts of packets committed on A and not minted on B.
Every check comes before the first write (STYLE "Applying a block").
"""

from __future__ import annotations

from tokens import ibc as I
from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.kv import encode_value
from tokens.ledger import Ledger
from tokens.rules_erasure import get_erasure
from tokens.rules_membership import get_key_status
from tokens.rules_validators import get_set_at
from tokens.txs import (
    SOLIDARITY, Acknowledge, CreateClient, Misbehaviour, Packet, RecvPacket, SendToCommune, Timeout, UpdateClient,
)
from wire.merkle import verify_proof


# -- clients --------------------------------------------------------------------------

def check_set(validators: tuple[bytes, ...]) -> None:
    if not validators or len(set(validators)) != len(validators):
        raise InvalidTx("bad_set", "a validator set lists at least one key, each once")


def process_create_client(lg: Ledger, tx: CreateClient, tx_id: bytes) -> None:
    # A commune trusts another chain only with its council's consent: a registrar signs.
    lg.require_registrar(tx.signer)
    if tx.chain_id == lg.chain_id:
        raise InvalidTx("own_chain", "a commune needs no light client of its own chain")
    if I.get_client(lg.ov, tx.chain_id) is not None:
        raise InvalidTx("client_exists", f"chain {tx.chain_id.hex()[:16]}… is already linked")
    check_set(tx.validators)
    if tx.from_height < 1:
        raise InvalidTx("bad_height", "a validator set signs from height 1 on")
    if not tx.name.strip():
        raise InvalidTx("bad_name", "a linked commune has a name")
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(I.key_client(tx.chain_id), [tx.name, 0, 0, lg.height, None])
    lg.ov.put(I.key_client_set(tx.chain_id, tx.from_height), list(tx.validators))


def get_header_rules(lg: Ledger) -> I.HeaderVerifier:
    """The header rules node/ gave this ledger. A ledger built without them cannot judge a
    header: that is a wiring bug of the node, and it must not pass as an invalid tx."""
    if lg.headers is None:
        raise RuntimeError("this ledger was built without header rules (apply_block(..., headers=)); "
                           "it cannot judge UpdateClient or Misbehaviour")
    return lg.headers


def process_freeze(lg: Ledger, chain: bytes, client: list, height: int, first: bytes, second: bytes,
                   header: bytes, commit: bytes) -> None:
    """Freeze the client; the evidence keeps the second header whole, so that a relayer can
    show it, with the chain's own header, to that chain's council (process_misbehaviour)."""
    client = list(client)
    client[I.C_FROZEN] = height
    client[I.C_EVIDENCE] = [height, first, second, header, commit]
    lg.ov.put(I.key_client(chain), client)


def process_update_client(lg: Ledger, tx: UpdateClient, tx_id: bytes) -> None:
    # ICS-07: a header is trusted when >= quorum of the set in force at its height signed it.
    rules = get_header_rules(lg)
    header = I.decode_header(rules, tx.header)
    chain = header.chain_id
    client = I.require_client(lg.ov, chain)
    sets = I.get_client_sets(lg.ov, chain)
    block_id = I.verify_client_header(rules, chain, sets, header, tx.commit)
    known = I.get_consensus(lg.ov, chain, header.height)
    if known is not None:
        if known[I.CS_BLOCK_ID] == block_id:
            raise InvalidTx("header_known", f"header {header.height} is already verified")
        # Two valid headers at one height: the chain's validators equivocated. Freeze.
        process_freeze(lg, chain, client, header.height, known[I.CS_BLOCK_ID], block_id, tx.header, tx.commit)
        return
    change = I.compute_next_set(rules, chain, sets, header, tx.next_validators, client[I.C_LATEST])
    lg.ov.put(I.key_consensus(chain, header.height), [block_id, header.state_hash, header.time_ms])
    if change is not None:
        lg.ov.put(I.key_client_set(chain, change[0]), list(change[1]))
    if header.height > client[I.C_LATEST]:
        client = list(client)
        client[I.C_LATEST] = header.height
        lg.ov.put(I.key_client(chain), client)


def verify_evidence_pair(a: I.HeaderView, b: I.HeaderView) -> None:
    if a.chain_id != b.chain_id or a.height != b.height:
        raise InvalidTx("bad_evidence", "misbehaviour is two headers of one chain at one height")


def verify_own_commit(lg: Ledger, rules: I.HeaderVerifier, header: I.HeaderView, commit: bytes) -> bytes:
    entries = list(lg.ov.iter_prefix(L.VALIDATOR_SET))
    return I.verify_header(rules, header, commit, get_set_at(entries, header.height))


def process_misbehaviour(lg: Ledger, tx: Misbehaviour, tx_id: bytes) -> None:
    # ICS-07 misbehaviour: two headers at one height, each committed by its set.
    rules = get_header_rules(lg)
    header_a, header_b = I.decode_header(rules, tx.header_a), I.decode_header(rules, tx.header_b)
    verify_evidence_pair(header_a, header_b)
    chain, height = header_a.chain_id, header_a.height
    if chain == lg.chain_id:
        # Relayed back from a commune that froze its client: our own council is alerted.
        first = verify_own_commit(lg, rules, header_a, tx.commit_a)
        second = verify_own_commit(lg, rules, header_b, tx.commit_b)
        if first == second:
            raise InvalidTx("bad_evidence", "the two headers are the same block")
        if lg.ov.get(I.key_self_misbehaviour(height)) is not None:
            raise InvalidTx("evidence_known", f"misbehaviour at height {height} is already recorded")
        lg.ov.put(I.key_self_misbehaviour(height), sorted([first, second]))
        return
    client = I.require_client(lg.ov, chain)
    sets = I.get_client_sets(lg.ov, chain)
    first = I.verify_client_header(rules, chain, sets, header_a, tx.commit_a)
    second = I.verify_client_header(rules, chain, sets, header_b, tx.commit_b)
    if first == second:
        raise InvalidTx("bad_evidence", "the two headers are the same block")
    process_freeze(lg, chain, client, height, first, second, tx.header_b, tx.commit_b)


# -- packets: the source side ---------------------------------------------------------

def get_voucher(lg: Ledger, origin: bytes, holder: bytes, cls: str) -> int:
    return lg.ov.get(I.key_voucher(origin, holder, cls)) or 0


def process_voucher(lg: Ledger, origin: bytes, holder: bytes, cls: str, delta: int) -> None:
    """Mint (delta > 0) or burn vouchers of ``cls`` of ``origin``; the supply follows."""
    balance = get_voucher(lg, origin, holder, cls) + delta
    key = I.key_voucher(origin, holder, cls)
    if balance:
        lg.ov.put(key, balance)
    else:
        lg.ov.delete(key)
    supply = (lg.ov.get(I.key_voucher_supply(origin, cls)) or 0) + delta
    lg.ov.put(I.key_voucher_supply(origin, cls), supply)


def process_escrow(lg: Ledger, dest: bytes, cls: str, delta: int) -> None:
    key = I.key_escrow(dest, cls)
    lg.ov.put(key, (lg.ov.get(key) or 0) + delta)


def check_timeout_ahead(lg: Ledger, dest: bytes, client: list, timeout_s: int) -> None:
    # The destination's clock decides: a timeout its last verified header already passed
    # would only ever refund (before any header, this chain's own time stands in).
    latest = I.get_consensus(lg.ov, dest, client[I.C_LATEST]) if client[I.C_LATEST] else None
    now_ms = latest[I.CS_TIME_MS] if latest else lg.now_ms
    if timeout_s * 1000 <= now_ms:
        raise InvalidTx("timeout_passed", f"timeout {timeout_s} is not after the destination's known time "
                                          f"{now_ms // 1000}")


def check_sendable(lg: Ledger, tx: SendToCommune, denom: I.Denom) -> None:
    """The signer holds what it sends: no credit line leaves the commune."""
    if denom.short_origin is None:
        if denom.cls not in lg.genesis.class_names:
            raise InvalidTx("unknown_class", f"no token class {denom.cls!r} here")
        held = lg.get_balance(tx.signer, denom.cls)
    else:
        # No multi-hop: a voucher goes back only to the chain it came from (ICS-20 unwinding).
        if denom.short_origin != I.compute_short_id(tx.dest):
            raise InvalidTx("not_origin", f"{tx.denom} can only be sent back to the commune it came from")
        held = get_voucher(lg, tx.dest, tx.signer, denom.cls)
    if held < tx.amount:
        raise InvalidTx("insufficient_balance", f"the signer holds {held} {tx.denom}, less than {tx.amount}")


def process_send_to_commune(lg: Ledger, tx: SendToCommune, tx_id: bytes) -> None:
    # ICS-20 send: escrow a class of ours, or burn a voucher going home; commit the packet.
    if tx.dest == lg.chain_id:
        raise InvalidTx("own_chain", "a transfer within the commune is a Transfer")
    client = I.require_client(lg.ov, tx.dest)
    if tx.amount <= 0:
        raise InvalidTx("zero_amount", "amount must be positive")
    denom = I.parse_denom(tx.denom)
    check_timeout_ahead(lg, tx.dest, client, tx.timeout_s)
    check_sendable(lg, tx, denom)
    lg.process_nonce(tx.signer, tx.nonce)
    seq = lg.ov.get(I.key_sequence(tx.dest)) or 1
    packet = Packet(source=lg.chain_id, dest=tx.dest, seq=seq, sender=tx.signer, receiver=tx.receiver,
                    denom=tx.denom, amount=tx.amount, timeout_s=tx.timeout_s)
    if denom.short_origin is None:
        lg.process_credit(tx.signer, denom.cls, -tx.amount)
        process_escrow(lg, tx.dest, denom.cls, tx.amount)
    else:
        process_voucher(lg, tx.dest, tx.signer, denom.cls, -tx.amount)
    lg.ov.put(I.key_sequence(tx.dest), seq + 1)
    lg.ov.put(I.key_commitment(tx.dest, seq), I.compute_packet_commitment(packet))
    lg.ov.put(I.key_outgoing(tx.dest, seq), [tx.signer, tx.receiver, tx.denom, tx.amount, tx.timeout_s,
                                             lg.height, lg.now_s, I.STATUS_SENT])


def require_commitment(lg: Ledger, packet: Packet) -> None:
    if packet.source != lg.chain_id:
        raise InvalidTx("wrong_chain", "the packet was not sent from this chain")
    stored = lg.ov.get(I.key_commitment(packet.dest, packet.seq))
    if stored is None:
        raise InvalidTx("unknown_sequence", f"no packet {packet.seq} to chain {packet.dest.hex()[:16]}… is "
                                            "in flight (never sent, or already acknowledged or refunded)")
    if stored != I.compute_packet_commitment(packet):
        raise InvalidTx("packet_mismatch", f"packet {packet.seq} differs from the one this chain committed")


def process_refund(lg: Ledger, packet: Packet, status: str) -> None:
    denom = I.parse_denom(packet.denom)
    if denom.short_origin is None:
        process_escrow(lg, packet.dest, denom.cls, -packet.amount)
        lg.process_credit(packet.sender, denom.cls, packet.amount)
    else:
        process_voucher(lg, packet.dest, packet.sender, denom.cls, packet.amount)
    process_done(lg, packet, status)


def process_done(lg: Ledger, packet: Packet, status: str) -> None:
    lg.ov.delete(I.key_commitment(packet.dest, packet.seq))
    out = list(lg.ov.get(I.key_outgoing(packet.dest, packet.seq)))
    out[I.O_STATUS] = status
    lg.ov.put(I.key_outgoing(packet.dest, packet.seq), out)


def process_acknowledge(lg: Ledger, tx: Acknowledge, tx_id: bytes) -> None:
    # ICS-20 acknowledgement: success leaves the escrow backing the vouchers; an error refunds.
    packet = tx.packet
    require_commitment(lg, packet)
    I.require_client(lg.ov, packet.dest)
    state = I.require_consensus(lg.ov, packet.dest, tx.proof_height)
    ack = encode_value([tx.ok, tx.reason])
    if not verify_proof(state[I.CS_ROOT], I.key_receipt(lg.chain_id, packet.seq), ack, tx.proof):
        raise InvalidTx("bad_proof", f"the proof does not show that acknowledgement of packet {packet.seq} "
                                     f"in the destination's state of height {tx.proof_height - 1}")
    if tx.ok:
        process_done(lg, packet, I.STATUS_DELIVERED)
    else:
        process_refund(lg, packet, I.STATUS_REFUNDED)


def process_timeout(lg: Ledger, tx: Timeout, tx_id: bytes) -> None:
    # IBC timeout: the destination's state at a height whose header time is at or past the
    # timeout holds no receipt; blocks from then on refuse the packet, so it never lands.
    packet = tx.packet
    require_commitment(lg, packet)
    I.require_client(lg.ov, packet.dest)
    state = I.require_consensus(lg.ov, packet.dest, tx.proof_height)
    if state[I.CS_TIME_MS] < packet.timeout_s * 1000:
        raise InvalidTx("not_expired", f"the destination's header {tx.proof_height} is at "
                                       f"{state[I.CS_TIME_MS] // 1000}, before the timeout {packet.timeout_s}")
    if not verify_proof(state[I.CS_ROOT], I.key_receipt(lg.chain_id, packet.seq), None, tx.proof):
        raise InvalidTx("bad_proof", f"the proof does not show packet {packet.seq} unreceived in the "
                                     f"destination's state of height {tx.proof_height - 1}")
    process_refund(lg, packet, I.STATUS_TIMED_OUT)


# -- packets: the destination side ----------------------------------------------------

def compute_receive(lg: Ledger, packet: Packet) -> tuple[bool, str]:
    """Whether the packet can land here, and the error otherwise (acknowledged, refunded)."""
    try:
        denom = I.parse_denom(packet.denom)
    except InvalidTx:
        return False, "bad_denom"
    if packet.receiver == SOLIDARITY:
        return False, "bad_receiver"
    status = get_key_status(lg, packet.receiver)
    if status is not None and status[0] == L.KS_ROTATED:
        return False, "receiver_moved"
    if get_erasure(lg, packet.receiver) is not None:
        return False, "receiver_erased"     # docs/privacy.md "Erasure": no account comes back
    if denom.short_origin is None:
        return True, I.ACK_OK
    if denom.short_origin != I.compute_short_id(lg.chain_id) or denom.cls not in lg.genesis.class_names:
        return False, "unsupported_denom"
    if (lg.ov.get(I.key_escrow(packet.source, denom.cls)) or 0) < packet.amount:
        return False, "escrow_short"
    return True, I.ACK_OK


def process_recv_packet(lg: Ledger, tx: RecvPacket, tx_id: bytes) -> None:
    # ICS-20 receive: the commitment proven against the source's root; mint or release.
    packet = tx.packet
    if packet.dest != lg.chain_id:
        raise InvalidTx("wrong_chain", "the packet is for another chain")
    I.require_client(lg.ov, packet.source)
    state = I.require_consensus(lg.ov, packet.source, tx.proof_height)
    if lg.ov.get(I.key_receipt(packet.source, packet.seq)) is not None:
        raise InvalidTx("replayed", f"packet {packet.seq} from chain {packet.source.hex()[:16]}… was received")
    if lg.now_ms >= packet.timeout_s * 1000:
        raise InvalidTx("expired", f"packet {packet.seq} timed out at {packet.timeout_s}; its sender is refunded")
    commitment = encode_value(I.compute_packet_commitment(packet))
    if not verify_proof(state[I.CS_ROOT], I.key_commitment(packet.dest, packet.seq), commitment, tx.proof):
        raise InvalidTx("bad_proof", f"the proof does not show packet {packet.seq} committed in the source's "
                                     f"state of height {tx.proof_height - 1}")
    ok, reason = compute_receive(lg, packet)
    if ok:
        denom = I.parse_denom(packet.denom)
        if denom.short_origin is None:
            process_voucher(lg, packet.source, packet.receiver, denom.cls, packet.amount)
        else:
            process_escrow(lg, packet.source, denom.cls, -packet.amount)
            lg.process_credit(packet.receiver, denom.cls, packet.amount)
    lg.ov.put(I.key_receipt(packet.source, packet.seq), [ok, reason])
    lg.ov.put(I.key_incoming(packet.source, packet.seq), [packet.sender, packet.receiver, packet.denom,
                                                          packet.amount, lg.height, lg.now_s, ok, reason])
