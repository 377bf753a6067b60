"""Signature checks and envelope openings of arriving txs, on worker threads (issue 20).

A validator checks every tx it takes: its Ed25519 signature (57 µs) and, on a chain that
seals payloads, the opening of its envelope (12.5 µs; docs/performance.md "Sealed
payloads"). libsodium runs both without the GIL, so a batch of arriving txs (a gossip
batch, a ``POST /txs``) is checked here on up to ``threads`` worker threads
(``trio.to_thread.run_sync`` under one ``CapacityLimiter``, so the node's trio thread
stays free meanwhile). The result of each tx only says what was proved:

- ``signed``: the tx decodes and every signature ``verify_message`` checks holds. A tx
  whose check failed, or that this module does not check (co-signed by validators,
  carried by a proof: they need the state), is checked again by ``check_tx`` itself,
  which then gives its reason;
- ``opened``: the envelope's inner tx, opened and checked against the envelope, with
  the household's data key it took. ``seed`` puts both into the node's keyring on the
  trio thread (after reading the state again if a block was committed since the worker
  read it: a household erased meanwhile keeps nothing opened); ``check_tx`` then takes
  every state decision itself (epoch, published data key, erasure) and finds the
  opening done.

So the admission's decisions, reasons and order are those of checking each tx alone;
only the crypto that was proved good is not done twice. Nothing here writes to the
keyring from a worker thread (it only reads it, one dict lookup at a time). The results
are tuples: the node's own thread reads them, and every microsecond on it counts.

With ``workers`` (``node run --check-workers``, ``bench apply --verify-workers``) the
same ``check_one`` runs in check processes instead (node/service/txprocs.py), which share
no GIL with the node's thread; their results are the same, and read the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import trio

from node.service.txprocs import CheckProcesses, StateScan, WorkerLost
from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.kv import decode_value
from tokens.rules_seal import open_commune_box, open_sealed_box
from tokens.sealing import Keyring, MissingCommuneKey
from tokens.state import is_self_signed
from tokens.txs import CommuneSealed, Sealed, SealedCosigned, Tx, decode_tx
from wire import DecodeError, verify_message
from wire.seal import SealError, open_data_key

# Below this many txs per thread, handing work to another thread costs more than it saves.
MIN_PER_THREAD = 8

StateGet = Callable[[bytes], "bytes | None"]    # a committed state key -> its raw value
# The committed state's version (the store's height): the same number, the same state.
StateVersion = Callable[[], int]


class Opened(NamedTuple):
    """An envelope opened on a worker thread: its inner tx; for a household's envelope
    the state's copy of the sealed data key it was opened with, and, if the keyring had
    not opened that data key yet, what opening it gave (addr, epoch, sealed, data key, salt)."""

    inner: Tx
    sealed: bytes | None = None
    household: tuple[bytes, int, bytes, bytes, bytes] | None = None


class Checked(NamedTuple):
    tx: Tx | None                # decoded; None: it does not decode (check_tx says why)
    signed: bool = False         # its signatures hold (False: not proved here)
    opened: Opened | None = None
    version: int = -1            # the state version the opening read


NOT_CHECKED = Checked(None)


def check_one(data: bytes, chain_id: bytes, get: StateGet, keys: Keyring | None, version: int = -1) -> Checked:
    """Decode ``data``, check its signatures and open its envelope: what can be proved
    without deciding anything on the state (read at ``version``). Never raises for a bad tx."""
    try:
        tx = decode_tx(data)
    except DecodeError:
        return NOT_CHECKED
    if not is_self_signed(tx) or not verify_message(tx, chain_id, data):
        return Checked(tx)
    opened = None
    if keys is not None and isinstance(tx, (Sealed, SealedCosigned, CommuneSealed)):
        try:
            opened = open_one(tx, chain_id, get, keys)
        except (InvalidTx, SealError, MissingCommuneKey):
            opened = None       # check_tx opens it again, and says why it does not open
    return Checked(tx, True, opened, version)


def open_one(tx: Sealed | SealedCosigned | CommuneSealed, chain_id: bytes, get: StateGet,
             keys: Keyring) -> Opened | None:
    if isinstance(tx, CommuneSealed):
        return Opened(open_commune_box(chain_id, keys.get_secret(tx.epoch), tx))
    raw = get(L.key_household_data_key(tx.signer, tx.epoch))
    if raw is None:
        return None             # no data key (yet, or erased): check_tx decides
    sealed = decode_value(raw)
    data_key = keys.peek_household_key(tx.signer, tx.epoch, sealed)
    household = None
    if data_key is None:
        data_key, salt = open_data_key(keys.get_secret(tx.epoch), sealed)
        household = (tx.signer, tx.epoch, sealed, data_key, salt)
    return Opened(open_sealed_box(chain_id, data_key, keys.get_secret, tx), sealed, household)


def check_many(txs: Sequence[bytes | None], chain_id: bytes, get: StateGet, keys: Keyring | None,
               version: StateVersion) -> list[Checked]:
    """``check_one`` of each tx (None: skipped, e.g. one the mempool holds already)."""
    at = version()      # read before the state: a commit after it shows as another version
    return [NOT_CHECKED if data is None else check_one(data, chain_id, get, keys, at) for data in txs]


def check_one_into(txs: Sequence[bytes | None], chain_id: bytes, get: StateGet, keys: Keyring | None,
                   version: int) -> list[Checked]:
    """``check_one`` of each tx in a check process (node/service/txprocs.py), whose own
    keyring keeps each household data key it opens: opened once per process, not per tx."""
    results = []
    for data in txs:
        checked = NOT_CHECKED if data is None else check_one(data, chain_id, get, keys, version)
        household = checked.opened.household if checked.opened is not None else None
        if household is not None:
            keys.remember_household_key(*household)
        results.append(checked)
    return results


def seed(checked: Checked, tx_id: bytes, keys: Keyring | None, get: StateGet, version: int) -> None:
    """On the node's own thread: what a worker opened, into the keyring. If a block was
    committed since the worker read the state (``version`` is now another), only if the
    state still holds the data key it was opened with: a household erased meanwhile
    keeps nothing opened of it."""
    opened = checked.opened
    if opened is None or keys is None:
        return
    if checked.version != version and opened.sealed is not None:
        tx = checked.tx
        raw = get(L.key_household_data_key(tx.signer, tx.epoch))
        if raw is None or decode_value(raw) != opened.sealed:
            return
    if opened.household is not None:
        keys.remember_household_key(*opened.household)
    keys.remember_opened(tx_id, opened.inner)


class TxChecker:
    """Checks batches of txs on at most ``threads`` worker threads (default: one per core),
    or, with ``workers``, in that many check processes (node/service/txprocs.py; ``scan``
    reads the committed state's entries under a prefix, for their copy of the household
    data keys). ``close`` stops the processes."""

    def __init__(self, chain_id: bytes, get: StateGet, version: StateVersion, keys: Keyring | None,
                 threads: int | None = None, workers: int = 0, scan: StateScan | None = None) -> None:
        self.chain_id, self.get, self.version, self.keys = chain_id, get, version, keys
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.limiter = trio.CapacityLimiter(self.threads)
        self.processes = CheckProcesses(chain_id, workers, scan if keys is not None else None) if workers else None
        self.batches = 0        # batches checked, and their txs (node metrics, tests)
        self.checked = 0

    def __enter__(self) -> TxChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the check processes, if any (the node's stop, Ctrl-C included)."""
        if self.processes is not None:
            self.processes.close()

    def check_here(self, txs: Sequence[bytes | None]) -> list[Checked]:
        """The same checks on the calling thread (the bench's sequential run)."""
        return check_many(txs, self.chain_id, self.get, self.keys, self.version)

    def seed(self, checked: Checked, tx_id: bytes) -> None:
        """``seed`` into this checker's keyring (on the node's own thread)."""
        seed(checked, tx_id, self.keys, self.get, self.version())

    async def check(self, txs: Sequence[bytes | None]) -> list[Checked]:
        """``check_one`` of each tx, in order, split over the check processes or the
        worker threads."""
        if not txs:
            return []
        live = self.processes.live() if self.processes is not None else []
        parts = max(1, min(len(live) or self.threads, len(txs) // MIN_PER_THREAD))
        size = -(-len(txs) // parts)
        slices = [txs[i:i + size] for i in range(0, len(txs), size)]
        results: list[list[Checked]] = [[] for _ in slices]
        if live:
            at = self.version()     # read before the state, as check_many does
            self.processes.refresh(at)
            secrets = self.keys.secrets if self.keys is not None else None

        async def run(index: int) -> None:
            if live:
                try:
                    results[index] = await self.processes.check(live[index], slices[index], at, secrets)
                    return
                except WorkerLost:
                    pass        # logged; this slice on a thread, with the same results
            results[index] = await trio.to_thread.run_sync(check_many, slices[index], self.chain_id, self.get,
                                                           self.keys, self.version, limiter=self.limiter)
        async with trio.open_nursery() as nursery:
            for index in range(len(slices)):
                nursery.start_soon(run, index)
        self.batches += 1
        self.checked += len(txs)
        return [checked for part in results for checked in part]
