"""``voisinage bench relay``: transfers between two communes through the real ledger,
store and relayer, against a plain local transfer measured in the same run.

No network: each commune is a real LevelDB store built as ``bench year`` builds a chain.
A tx is admitted to a mempool by ``tokens.check_tx`` (with the header rules a node
passes), the proposer's ``LedgerApp.propose`` selects and applies a block, the
validators sign a precommit each and ``LedgerApp.commit`` persists it. The relayer is
the relayer's own ``relay_pass`` (node/relay/relayer.py) over two in-process sides that
read each store as the HTTP API does (``/ibc``, packets in flight, a header with its
commit, proofs) and post into its mempool; while it waits for its client updates to be
committed, and after each pass, both communes commit one block (a round).

Measured, in this order:
1. baseline: ``n`` plain ``Transfer``s on A, admitted and committed in blocks;
2. send: ``n`` ``SendToCommune`` on A, the same way (escrow, packet commitments);
3. relay: passes and rounds until A has no packet in flight: the relayer's reads and
   proofs, client updates both ways, ``RecvPacket`` on B (vouchers minted),
   ``Acknowledge`` on A, every block of both chains;
4. the light-client update cost: the mempool check of each ``UpdateClient`` (decode,
   a quorum of Ed25519 commit signatures, the set rules) against a ``Transfer``'s.
Proof bytes are those of each ``RecvPacket`` and ``Acknowledge`` the relayer posted.
At the end conservation is checked exactly: escrow on A = vouchers of A's kWh on B =
Σ sent, every packet delivered, none in flight.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.block import Block, Commit
from consensus.lightsync import HEADER_RULES
from node.bench.year import init_store, make_commit
from node.relay.relayer import MAX_PACKETS_PER_PASS, PassReport, RelayError, Side, relay_pass
from node.service.ledger_app import LedgerApp
from node.service.mempool import Duplicate, Mempool, MempoolFull
from node.sim.ledger_day import DemoCommune, build_commune, compute_seed_key
from node.store.store import Store
from tokens import InvalidTx, check_tx, get_validator_set
from tokens import ibc as I
from tokens.kv import decode_value
from tokens.queries_ibc import get_ibc_view, get_in_flight, get_transfers
from tokens.statetree import compute_proof
from tokens.txs import Acknowledge, CreateClient, RecvPacket, SendToCommune, Transfer, Tx, UpdateClient
from wire import MAX_BLOCK_BYTES, DecodeError, Keypair, decode
from wire.merkle import encode_proof

AMOUNT_WH = 10
BLOCK_MS = 1000             # each commune commits a block a second of its time
TIMEOUT_S = 10 * 86_400     # far past the run: no packet times out
MAX_ROUNDS_PER_PACKET = 4   # a bug, not slowness, if the relay needs more


class RelayBenchFailed(Exception):
    """The benchmark's own txs were refused or its books do not balance: a bug, reported loudly."""


@dataclass
class Checks:
    """Mempool admission seconds and counts by tx type, and what the relayer posted."""

    seconds: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    proof_bytes: Counter = field(default_factory=Counter)
    tx_bytes: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)

    def mean_us(self, tag: str) -> float:
        return round(self.seconds[tag] / self.counts[tag] * 1e6, 1) if self.counts[tag] else 0.0


class Commune:
    """One commune's validator: a real store, a mempool, the service's LedgerApp, a clock."""

    def __init__(self, c: DemoCommune, seed: int, validators: int, path: Path, checks: Checks) -> None:
        self.c, self.checks = c, checks
        self.keys = [compute_seed_key(seed, "validator", i) for i in range(validators)]
        self.store = Store.open(path, chain_id=c.genesis.chain_id, sync=False)
        init_store(self.store, c)
        self.now_ms = c.genesis.genesis_time * 1000
        self.mempool = Mempool(max_txs=1 << 20)
        self.app = LedgerApp(c.genesis, self.store, self.mempool, self.keys[0], lambda: self.now_ms)
        self.last_commit: Commit | None = None
        self.roots = {0: self.store.state_hash()}       # state root after each height
        self.blocks = 0

    @property
    def chain_id(self) -> bytes:
        return self.c.genesis.chain_id

    def admit(self, data: bytes) -> Tx:
        """``check_tx`` as the node's mempool runs it, timed by tx type."""
        def check(d: bytes) -> Tx:
            started = time.perf_counter()
            tx = check_tx(self.store.state, self.c.genesis, d, self.now_ms, headers=HEADER_RULES)
            self.checks.seconds[tx.TAG] += time.perf_counter() - started
            self.checks.counts[tx.TAG] += 1
            return tx
        return self.mempool.add(data, check).tx

    def submit(self, data: bytes) -> None:
        try:
            self.admit(data)
        except (InvalidTx, DecodeError, Duplicate, MempoolFull) as exc:
            raise RelayBenchFailed(f"the benchmark's own tx was refused: {exc}") from None

    def produce(self) -> int:
        """Commit one block of what the mempool holds; its tx count."""
        self.now_ms += BLOCK_MS
        height = self.store.height() + 1
        block = self.app.propose(height, 0, self.last_commit, ())
        self.last_commit = make_commit(self.c, self.keys, block)
        committed = self.app.commit(block, self.last_commit, ())
        self.mempool.remove(committed.result.tx_ids)
        self.roots[height] = committed.result.state_hash
        self.blocks += 1
        return len(block.txs)

    def drain(self) -> int:
        """Blocks until the mempool is empty; how many."""
        blocks = 0
        while len(self.mempool):
            if not self.produce():
                raise RelayBenchFailed(f"{len(self.mempool)} txs stay in the mempool and none is proposed")
            blocks += 1
        return blocks

    def close(self) -> None:
        self.store.close()


class LocalSide(Side):
    """A relayer's side read from a commune's store in this process, as the HTTP API
    answers (node/api/ibc.py, node/api/proofs.py), posting into its mempool."""

    def __init__(self, commune: Commune, name: str) -> None:     # no HTTP client: nothing to call
        self.commune, self.url, self.token = commune, name, None
        self.chain_id = commune.chain_id

    def height(self) -> int:
        return self.commune.store.height()

    def ibc(self) -> dict[str, Any]:
        return get_ibc_view(self.commune.store.state)

    def packets(self, dest: bytes) -> list:
        return get_in_flight(self.commune.store.state, dest, MAX_PACKETS_PER_PASS)

    def signed_header(self, height: int) -> tuple[bytes, bytes, tuple[bytes, ...]]:
        store = self.commune.store
        raw_block, raw_commit = store.block(height), store.commit(height)
        if raw_block is None or raw_commit is None:
            raise RelayError(f"{self.url}: no header and commit of height {height}")
        header = decode(raw_block, Block, MAX_BLOCK_BYTES).header
        return header.encode(), raw_commit, tuple(get_validator_set(store.state, height + 1))

    def proof(self, key: bytes, height: int) -> tuple[bytes | None, bytes]:
        # The state of ``height`` is provable once block height+1 carries its root.
        if not 0 <= height < self.commune.store.height():
            raise RelayError(f"{self.url}: no committed header carries the state root of height {height}")
        value, proof = compute_proof(self.commune.store.state, self.commune.roots[height], key)
        return value, encode_proof(proof)

    def post(self, tx: Tx) -> str | None:
        checks = self.commune.checks
        try:
            self.commune.admit(tx.encode())
        except (InvalidTx, DecodeError) as exc:
            reason = getattr(exc, "reason", "malformed")
            checks.refused[f"{tx.TAG} {reason}"] += 1
            return f"{reason}: {exc}"
        except Duplicate:
            checks.refused[f"{tx.TAG} duplicate"] += 1
            return "duplicate: already in the mempool"
        if isinstance(tx, (RecvPacket, Acknowledge)):
            checks.proof_bytes[tx.TAG] += len(tx.proof)
        checks.tx_bytes[tx.TAG] += len(tx.encode())
        return None


def link(a: Commune, b: Commune) -> None:
    """Each commune's registrar trusts the other's genesis validators (voisinage commune link)."""
    for here, there in ((a, b), (b, a)):
        here.submit(here.c.tx(CreateClient, here.c.registrar, chain_id=there.chain_id, name="bench",
                              validators=tuple(k.public for k in there.keys), from_height=1))
        here.drain()


def timed_batch(commune: Commune, txs: list[bytes]) -> tuple[float, int]:
    """Admit ``txs`` and commit them: seconds and blocks."""
    started = time.perf_counter()
    for data in txs:
        commune.submit(data)
    blocks = commune.drain()
    return time.perf_counter() - started, blocks


def make_transfers(c: DemoCommune, n: int) -> list[bytes]:
    """The baseline: the second half of the households each pay the first half (within
    their credit line), which then hold the kWh they send to the other commune."""
    half = len(c.keys) // 2
    return [c.tx(Transfer, c.keys[half + k % half], to=c.keys[k % half].public, cls="kwh", amount=AMOUNT_WH,
                 memo="") for k in range(n)]


def make_sends(a: Commune, b: Commune, n: int) -> list[bytes]:
    half = len(a.c.keys) // 2
    timeout = a.c.genesis.genesis_time + TIMEOUT_S
    return [a.c.tx(SendToCommune, a.c.keys[k % half], dest=b.chain_id, receiver=b.c.keys[k % len(b.c.keys)].public,
                   denom="kwh", amount=AMOUNT_WH, timeout_s=timeout) for k in range(n)]


@dataclass
class RelayRun:
    seconds: float = 0.0
    passes: int = 0
    rounds: int = 0
    report: PassReport = field(default_factory=PassReport)


def run_relay(a: Commune, b: Commune, n: int) -> RelayRun:
    """Relayer passes, each followed by a block on both chains, until A has nothing in flight."""
    run = RelayRun()
    side_a, side_b = LocalSide(a, "A"), LocalSide(b, "B")

    def round_(_seconds: float = 0.0) -> None:      # the relayer's wait: both chains move on
        a.produce()
        b.produce()
        run.rounds += 1

    started = time.perf_counter()
    while get_in_flight(a.store.state, b.chain_id, 1):
        if run.rounds > MAX_ROUNDS_PER_PACKET * n + 16:
            raise RelayBenchFailed(f"packets still in flight after {run.rounds} rounds")
        try:
            report = relay_pass(side_a, side_b, sleep=round_)
        except RelayError as exc:
            refused = ", ".join(f"{k} ×{v}" for k, v in sorted(a.checks.refused.items()))
            raise RelayBenchFailed(f"the relayer stopped: {exc} (refused: {refused or 'nothing'})") from None
        run.passes += 1
        for name in ("updates", "received", "acknowledged", "timed_out", "evidence"):
            setattr(run.report, name, getattr(run.report, name) + getattr(report, name))
        round_()
    run.seconds = time.perf_counter() - started
    return run


def check_books(a: Commune, b: Commune, n: int) -> dict[str, Any]:
    """Exact conservation across both chains, and every packet delivered."""
    escrow = decode_value(a.store.state.get(I.key_escrow(b.chain_id, "kwh")) or b"\x00")
    supply = decode_value(b.store.state.get(I.key_voucher_supply(a.chain_id, "kwh")) or b"\x00")
    statuses = Counter(t["status"] for t in get_transfers(a.store.state, limit=1 << 30)["outgoing"])
    received = sum(1 for t in get_transfers(b.store.state, limit=1 << 30)["incoming"] if t["ok"])
    in_flight = len(get_in_flight(a.store.state, b.chain_id, 1 << 30))
    books = {"sent": n, "delivered": statuses[I.STATUS_DELIVERED], "received_on_b": received,
             "in_flight": in_flight, "escrow_on_a_wh": escrow, "vouchers_on_b_wh": supply,
             "sent_wh": n * AMOUNT_WH}
    books["exact"] = (escrow == supply == n * AMOUNT_WH and books["delivered"] == received == n
                      and in_flight == 0)
    if not books["exact"]:
        raise RelayBenchFailed(f"the books do not balance: {books}")
    return books


def _per_s(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def summarise(n: int, base: tuple[float, int], send: tuple[float, int], relay: RelayRun, checks: Checks,
              books: dict[str, Any], a: Commune, b: Commune) -> dict[str, Any]:
    transfers_per_s, packets_per_s = _per_s(n, base[0]), _per_s(n, relay.seconds)
    recv, ack, update = RecvPacket.TAG, Acknowledge.TAG, UpdateClient.TAG
    recv_mean = round(checks.proof_bytes[recv] / max(relay.report.received, 1))
    ack_mean = round(checks.proof_bytes[ack] / max(relay.report.acknowledged, 1))
    transfer_us = checks.mean_us(Transfer.TAG)
    return {
        "packets": n, "amount_wh": AMOUNT_WH, "households": len(a.c.keys), "validators": len(a.keys),
        "baseline": {"transfers": n, "seconds": round(base[0], 3), "blocks": base[1],
                     "transfers_per_s": transfers_per_s, "check_us": transfer_us},
        "send": {"packets": n, "seconds": round(send[0], 3), "blocks": send[1], "sends_per_s": _per_s(n, send[0]),
                 "check_us": checks.mean_us(SendToCommune.TAG)},
        "relay": {"seconds": round(relay.seconds, 3), "packets_per_s": packets_per_s, "passes": relay.passes,
                  "rounds": relay.rounds, "blocks_a": a.blocks, "blocks_b": b.blocks,
                  "client_updates": relay.report.updates, "received": relay.report.received,
                  "acknowledged": relay.report.acknowledged, "refused": dict(sorted(checks.refused.items())),
                  "recv_check_us": checks.mean_us(recv), "ack_check_us": checks.mean_us(ack)},
        "proof_bytes": {"recv_mean": recv_mean, "ack_mean": ack_mean, "per_packet": recv_mean + ack_mean,
                        "recv_tx_mean": round(checks.tx_bytes[recv] / max(relay.report.received, 1)),
                        "ack_tx_mean": round(checks.tx_bytes[ack] / max(relay.report.acknowledged, 1))},
        "client_update": {"count": checks.counts[update], "check_us": checks.mean_us(update),
                          "tx_bytes": round(checks.tx_bytes[update] / max(relay.report.updates, 1)),
                          "ratio_to_transfer_check": round(checks.mean_us(update) / transfer_us, 1)
                          if transfer_us else None},
        "ratios": {"transfers_per_relayed_packet": round(transfers_per_s / packets_per_s, 2) if packets_per_s else None,
                   "send_cost_over_transfer": round(transfers_per_s / _per_s(n, send[0]), 2) if send[0] else None},
        "books": books, "cpus": os.cpu_count(),
    }


def run_relay_bench(n: int = 1000, households: int = 200, validators: int = 4, workdir: Path | None = None,
                    progress: Callable[[str], None] = lambda phase: None) -> dict[str, Any]:
    """The whole benchmark (module docstring); raises RelayBenchFailed on a refused own tx
    or unbalanced books."""
    if households < 2:
        raise RelayBenchFailed("the benchmark needs at least 2 households per commune")
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="voisinage-relay-", dir=workdir) as tmp:
        a = Commune(build_commune(households, 1, validators=validators), 1, validators, Path(tmp) / "a", checks)
        b = Commune(build_commune(households, 2, validators=validators), 2, validators, Path(tmp) / "b", checks)
        try:
            link(a, b)
            progress("baseline")
            base = timed_batch(a, make_transfers(a.c, n))
            progress("send")
            send = timed_batch(a, make_sends(a, b, n))
            progress("relay")
            relay = run_relay(a, b, n)
            books = check_books(a, b, n)
            return summarise(n, base, send, relay, checks, books, a, b)
        finally:
            a.close()
            b.close()


def format_relay_report(r: dict[str, Any]) -> str:
    base, send, relay = r["baseline"], r["send"], r["relay"]
    proofs, update, ratios = r["proof_bytes"], r["client_update"], r["ratios"]
    return "\n".join([
        f"{r['packets']} packets of {r['amount_wh']} Wh from commune A to commune B "
        f"({r['households']} households, {r['validators']} validators each)",
        f"baseline  {base['transfers_per_s']:>9} local transfers/s ({base['blocks']} blocks; check "
        f"{base['check_us']} µs each)",
        f"send      {send['sends_per_s']:>9} SendToCommune/s on A (check {send['check_us']} µs each)",
        f"relay     {relay['packets_per_s']:>9} packets/s relayed and acknowledged ({relay['passes']} passes, "
        f"{relay['rounds']} rounds, {relay['client_updates']} client updates)",
        f"proofs    {proofs['per_packet']} bytes per packet (RecvPacket {proofs['recv_mean']}, "
        f"Acknowledge {proofs['ack_mean']})",
        f"update    {update['check_us']} µs per UpdateClient check, {update['tx_bytes']} bytes "
        f"({update['ratio_to_transfer_check']}x a transfer's check)",
        f"ratio     one relayed packet costs {ratios['transfers_per_relayed_packet']} local transfers; "
        f"a send costs {ratios['send_cost_over_transfer']}",
        f"books     escrow on A {r['books']['escrow_on_a_wh']} Wh = vouchers on B "
        f"{r['books']['vouchers_on_b_wh']} Wh; {r['books']['delivered']} delivered, "
        f"{r['books']['in_flight']} in flight",
    ])
