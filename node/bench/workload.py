"""A deterministic, valid workload for ``voisinage bench apply``.

A commune of ``households`` registered in genesis; every household sends, round
after round, one meter reading (seq and t rising, deltas under the physics cap)
and one kwh transfer to a neighbour (well within the credit limit). Keys come from
fixed seeds, so every run signs the same bytes. Blocks hold up to ``block_max``
txs, and each block's time keeps every reading in it valid: t <= block time + 60 s,
and no reading falls in an interval that has already settled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tokens.genesis import Genesis, parse_genesis
from tokens.txs import MeterReading, Transfer, Tx
from wire import Keypair, sign_message, signing_bytes

INTERVAL_S = 1800
ANCHOR = 1_750_000_000 - 1_750_000_000 % INTERVAL_S  # a settlement interval boundary
FIRST_READING = ANCHOR + 1500   # so interval [ANCHOR, +1800) settles within 20 000 txs
ROUND_S = 120                   # t step between a household's readings
TXS_PER_HOUSEHOLD_ROUND = 2     # one reading, one transfer


@dataclass(frozen=True)
class Signed:
    """One signed tx as it arrives: raw bytes, plus what a raw Ed25519 check needs."""

    raw: bytes
    public: bytes
    data: bytes     # the exact signing bytes
    sig: bytes
    reading_t: int  # a meter reading's t; 0 for other txs


@dataclass(frozen=True)
class BenchBlock:
    height: int
    time_ms: int
    txs: tuple[bytes, ...]
    signed: tuple[Signed, ...]  # the same txs, with their signing bytes


@dataclass(frozen=True)
class Workload:
    genesis: Genesis
    txs: tuple[Signed, ...]
    blocks: tuple[BenchBlock, ...]


def compute_seed(role: str, index: int) -> bytes:
    return hashlib.sha256(b"voisinage-bench/%s/%d" % (role.encode(), index)).digest()


def is_producer(index: int) -> bool:
    # About 30 % of households produce, as in node/home/homedir.py's example commune.
    return index % 10 < 3


def make_genesis(keys: list[Keypair], sealing: dict[str, Any] | None = None) -> Genesis:
    """A genesis document with one household per key, parsed as a node would parse it
    (with ``sealing``, a genesis "sealing" section: the chain seals payloads)."""
    validator, registrar = Keypair(compute_seed("validator", 0)), Keypair(compute_seed("registrar", 0))
    doc: dict[str, Any] = {
        "commune": {"name": "Benchville", "insee": "99999"},
        "genesis_time": ANCHOR,
        "validators": [{"name": "validator-0", "key": validator.public.hex(), "addr": "/ip4/127.0.0.1/tcp/26656"}],
        "registrars": [registrar.public.hex()],
        "households": [
            {"key": key.public.hex(), "meter": f"0214{i:08d}", "prm": f"300000{i:08d}",
             "label": f"Foyer {i}", "kva": 9 if is_producer(i) else 6,
             "peak_w": 6000 if is_producer(i) else 0}
            for i, key in enumerate(keys)
        ],
        "params": {"settlement_interval_s": INTERVAL_S},
    }
    if sealing is not None:
        doc["sealing"] = sealing
    return parse_genesis(json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")


def make_reading(index: int, key: Keypair, rnd: int) -> MeterReading:
    """Round ``rnd``'s reading: import 100-149 Wh (cap 200 Wh at 6 kVA over 120 s), export
    150-189 Wh for producers (cap 200 Wh at 6 kW)."""
    imported = 1_000_000 + index * 1000 + rnd * (100 + index % 50)
    exported = rnd * (150 + index % 40) if is_producer(index) else 0
    return MeterReading(signer=key.public, meter=f"0214{index:08d}", seq=rnd + 1,
                        t=FIRST_READING + ROUND_S * rnd, import_wh=imported, export_wh=exported,
                        sig=bytes(64))


def make_transfer(index: int, keys: list[Keypair], rnd: int) -> Transfer:
    # At most 31 Wh a round each way: far inside the 50 000 Wh credit limit.
    to = keys[(index + 1 + rnd) % len(keys)].public
    if to == keys[index].public:
        to = keys[(index + 1) % len(keys)].public
    return Transfer(signer=keys[index].public, nonce=rnd + 1, to=to, cls="kwh",
                    amount=25 + index % 7, memo="", sig=bytes(64))


def sign_all(msgs: list[tuple[Tx, Keypair]], chain_id: bytes) -> list[Signed]:
    out = []
    for msg, key in msgs:
        signed = sign_message(msg, chain_id, key)
        t = signed.t if isinstance(signed, MeterReading) else 0
        out.append(Signed(signed.encode(), key.public, signing_bytes(chain_id, signed), signed.sig, t))
    return out


def make_txs(n: int, keys: list[Keypair], chain_id: bytes,
             progress: Callable[[int], None] = lambda done: None) -> list[Signed]:
    """``n`` signed txs, round by round: each household's reading, then its transfer."""
    msgs: list[tuple[Tx, Keypair]] = []
    rnd = 0
    while len(msgs) < n:
        for index, key in enumerate(keys):
            msgs.append((make_reading(index, key, rnd), key))
            msgs.append((make_transfer(index, keys, rnd), key))
        rnd += 1
    msgs = msgs[:n]
    signed: list[Signed] = []
    for start in range(0, n, 1000):
        signed.extend(sign_all(msgs[start:start + 1000], chain_id))
        progress(len(signed))
    return signed


def compute_block_time_ms(txs: list[Signed], parent_ms: int) -> int:
    """The latest reading's t, so every reading is at most 60 s ahead of the block; a
    block spans at most three rounds (240 s), less than the 300 s settlement grace,
    so none of its readings falls in an interval the block itself settles."""
    return max(parent_ms + 1000, max(s.reading_t for s in txs) * 1000)


def make_blocks(txs: list[Signed], block_max: int) -> list[BenchBlock]:
    blocks: list[BenchBlock] = []
    parent_ms = FIRST_READING * 1000 - 1000
    for start in range(0, len(txs), block_max):
        chunk = txs[start:start + block_max]
        parent_ms = compute_block_time_ms(chunk, parent_ms)
        blocks.append(BenchBlock(len(blocks) + 1, parent_ms, tuple(s.raw for s in chunk), tuple(chunk)))
    return blocks


def make_workload(n: int, households: int = 1000, block_max: int = 5000,
                  progress: Callable[[int], None] = lambda done: None) -> Workload:
    keys = [Keypair(compute_seed("household", i)) for i in range(households)]
    genesis = make_genesis(keys)
    txs = make_txs(n, keys, genesis.chain_id, progress)
    return Workload(genesis, tuple(txs), tuple(make_blocks(txs, block_max)))
