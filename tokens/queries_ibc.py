"""Read-only views of transfers between communes (docs/communes.md): linked chains and
their light clients, channels with their escrow and packets in flight, vouchers, and
the transfers sent and received, for the API, the relayer and the dashboard."""

from __future__ import annotations

from typing import Any

from tokens import ibc as I
from tokens.kv import KV, decode_value
from tokens.layout import META_CHAIN, VALIDATOR_SET, from_u64
from tokens.txs import Packet


def _scan(kv: KV, prefix: bytes):
    for key, raw in kv.iter_prefix(prefix):
        yield key, decode_value(raw)


def get_client_view(kv: KV, chain: bytes, client: list) -> dict[str, Any]:
    latest = client[I.C_LATEST]
    state = decode_value(kv.get(I.key_consensus(chain, latest))) if latest else None
    sets = [{"from_height": from_u64(key[len(I.CLIENT_SET) + 32:]), "validators": [k.hex() for k in keys]}
            for key, keys in _scan(kv, I.CLIENT_SET + chain)]
    evidence = client[I.C_EVIDENCE]
    return {
        "chain_id": chain.hex(), "short_id": I.compute_short_id(chain), "name": client[I.C_NAME],
        "latest_height": latest, "latest_time_ms": state[I.CS_TIME_MS] if state else None,
        "frozen": bool(client[I.C_FROZEN]), "frozen_height": client[I.C_FROZEN] or None,
        "evidence": None if evidence is None else {"height": evidence[0], "block_id": evidence[1].hex(),
                                                   "other_block_id": evidence[2].hex(),
                                                   "other_header": evidence[3].hex(),
                                                   "other_commit": evidence[4].hex()},
        "created_height": client[I.C_CREATED], "validator_sets": sets,
    }


def get_packet(kv: KV, dest: bytes, seq: int, own: bytes | None = None) -> Packet | None:
    """The packet sent to ``dest`` under ``seq`` (rebuilt from its ``ibc/out/`` record)."""
    raw = kv.get(I.key_outgoing(dest, seq))
    if raw is None:
        return None
    out = decode_value(raw)
    source = own if own is not None else decode_value(kv.get(META_CHAIN))
    return Packet(source=source, dest=dest, seq=seq, sender=out[I.O_SENDER], receiver=out[I.O_RECEIVER],
                  denom=out[I.O_DENOM], amount=out[I.O_AMOUNT], timeout_s=out[I.O_TIMEOUT])


def get_in_flight(kv: KV, dest: bytes, limit: int = 1000) -> list[Packet]:
    """Packets sent to ``dest`` and not yet acknowledged or refunded, oldest first."""
    own = decode_value(kv.get(META_CHAIN))
    found = []
    for key, _ in kv.iter_prefix(I.COMMITMENT + dest):
        if len(found) >= limit:
            break
        found.append(get_packet(kv, dest, from_u64(key[len(I.COMMITMENT) + 32:]), own))
    return found


def encode_packet_json(packet: Packet) -> dict[str, Any]:
    return {"source": packet.source.hex(), "dest": packet.dest.hex(), "seq": packet.seq,
            "sender": packet.sender.hex(), "receiver": packet.receiver.hex(), "denom": packet.denom,
            "amount": packet.amount, "timeout_s": packet.timeout_s}


def decode_packet_json(doc: dict[str, Any]) -> Packet:
    return Packet(source=bytes.fromhex(doc["source"]), dest=bytes.fromhex(doc["dest"]), seq=int(doc["seq"]),
                  sender=bytes.fromhex(doc["sender"]), receiver=bytes.fromhex(doc["receiver"]),
                  denom=str(doc["denom"]), amount=int(doc["amount"]), timeout_s=int(doc["timeout_s"]))


def get_channel_view(kv: KV, dest: bytes) -> dict[str, Any]:
    escrow = {key[len(I.ESCROW) + 32:].decode(): amount for key, amount in _scan(kv, I.ESCROW + dest)}
    flight = get_in_flight(kv, dest, limit=1 << 30)
    in_flight: dict[str, int] = {}
    for packet in flight:
        in_flight[packet.denom] = in_flight.get(packet.denom, 0) + packet.amount
    next_seq = kv.get(I.key_sequence(dest))
    return {"dest": dest.hex(), "next_seq": 1 if next_seq is None else decode_value(next_seq),
            "escrow": escrow, "in_flight_packets": len(flight), "in_flight": in_flight}


def get_voucher_supply(kv: KV) -> list[dict[str, Any]]:
    return [{"origin": key[len(I.VOUCHER_SUPPLY):len(I.VOUCHER_SUPPLY) + 32].hex(),
             "class": key[len(I.VOUCHER_SUPPLY) + 32:].decode(),
             "denom": I.compute_voucher_denom(key[len(I.VOUCHER_SUPPLY):len(I.VOUCHER_SUPPLY) + 32],
                                              key[len(I.VOUCHER_SUPPLY) + 32:].decode()),
             "supply": supply} for key, supply in _scan(kv, I.VOUCHER_SUPPLY)]


def get_vouchers(kv: KV, holder: bytes) -> dict[str, int]:
    """The vouchers ``holder`` holds, by denomination."""
    held = {}
    for key, amount in _scan(kv, I.VOUCHER):
        rest = key[len(I.VOUCHER):]
        if rest[32:64] == holder:
            held[I.compute_voucher_denom(rest[:32], rest[64:].decode())] = amount
    return held


def get_ibc_view(kv: KV) -> dict[str, Any]:
    """Linked chains, channels, vouchers in circulation, and our own validators' relayed misbehaviour."""
    clients = [get_client_view(kv, key[len(I.CLIENT):], client) for key, client in _scan(kv, I.CLIENT)]
    dests = sorted({key[len(I.SEQUENCE):] for key, _ in kv.iter_prefix(I.SEQUENCE)})
    own = kv.get(META_CHAIN)
    return {
        "chain_id": decode_value(own).hex() if own is not None else None,
        "short_id": I.compute_short_id(decode_value(own)) if own is not None else None,
        "clients": clients,
        "channels": [get_channel_view(kv, dest) for dest in dests],
        "vouchers": get_voucher_supply(kv),
        "set_change_heights": [from_u64(key[len(VALIDATOR_SET):]) - 1 for key, _ in kv.iter_prefix(VALIDATOR_SET)
                               if from_u64(key[len(VALIDATOR_SET):]) >= 2],
        "self_misbehaviour": [{"height": from_u64(key[len(I.SELF_MISBEHAVIOUR):]),
                               "block_ids": [b.hex() for b in ids]}
                              for key, ids in _scan(kv, I.SELF_MISBEHAVIOUR)],
    }


def get_transfers(kv: KV, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
    """The last ``limit`` transfers sent and received, newest first."""
    outgoing = []
    for key, out in _scan(kv, I.OUTGOING):
        dest, seq = I.split_chain_seq(key, I.OUTGOING)
        outgoing.append({"dest": dest.hex(), "seq": seq, "sender": out[I.O_SENDER].hex(),
                         "receiver": out[I.O_RECEIVER].hex(), "denom": out[I.O_DENOM], "amount": out[I.O_AMOUNT],
                         "timeout_s": out[I.O_TIMEOUT], "height": out[I.O_HEIGHT], "time_s": out[I.O_TIME],
                         "status": out[I.O_STATUS]})
    incoming = []
    for key, rec in _scan(kv, I.INCOMING):
        source, seq = I.split_chain_seq(key, I.INCOMING)
        denom = rec[I.I_DENOM]
        parsed_origin = source if "/" not in denom else None
        incoming.append({"source": source.hex(), "seq": seq, "sender": rec[I.I_SENDER].hex(),
                         "receiver": rec[I.I_RECEIVER].hex(), "denom": denom,
                         "credited_as": I.compute_voucher_denom(parsed_origin, denom) if parsed_origin else
                         denom.rsplit("/", 1)[-1],
                         "amount": rec[I.I_AMOUNT], "height": rec[I.I_HEIGHT], "time_s": rec[I.I_TIME],
                         "ok": rec[I.I_OK], "reason": rec[I.I_REASON]})
    outgoing.sort(key=lambda t: (t["height"], t["seq"]), reverse=True)
    incoming.sort(key=lambda t: (t["height"], t["seq"]), reverse=True)
    return {"outgoing": outgoing[:limit], "incoming": incoming[:limit]}
