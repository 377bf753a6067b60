"""``voisinage node verify``: replay a home's chain from genesis and check everything (DESIGN §8 "Audit").

The replay trusts nothing in the store but genesis.json. From ``genesis_writes`` in
a fresh MemoryKV, each stored block is decoded and checked as block sync checks a
peer's blocks (consensus/sync.py: height, parent, chain id, proposer, evidence, the
last commit and the block's own commit against the validator set of their height),
its stored id is compared with the id of its header, its header's state hash with
the replayed state, and it is re-applied with ``tokens.apply_block``. At the end
the replayed state must equal the stored state entry by entry (the stored state
tree of the last root must hold exactly those entries: a pruned store keeps only the
last versions of the tree), and the stored state hash must equal both the replayed one
and a full recomputation. A store whose block bodies were pruned is refused: the replay
needs every block (docs/state.md "Pruning").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from consensus.block import Block, Commit, compute_block_id, get_equivocators
from consensus.errors import InvalidBlock as InvalidConsensusBlock
from consensus.lightsync import HEADER_RULES
from consensus.sync import Trusted, verify_next_block
from node.service.errors import ServiceError
from node.home.homedir import home_key, load_home
from node.home.receivekeys import get_receive_dir, load_receive_keys
from node.service.signstate import SIGN_STATE_FILE, load_sign_state
from node.store import Store, StoreReader
from node.store.store import DB_DIR
from tokens import (
    BlockContext, InvalidLedgerBlock, MemoryKV, apply_block, genesis_writes, get_state_hash, get_validator_set,
)
from tokens import layout as TL
from tokens.genesis import Genesis
from tokens.kv import decode_value
from tokens.sealing import Keyring, compute_keyring
from tokens.statetree import is_proven_key
from wire import MAX_BLOCK_BYTES, DecodeError, Keypair, decode


class VerifyError(ServiceError):
    """The store does not hold what replaying genesis and its blocks gives."""


@dataclass(frozen=True)
class VerifyReport:
    chain_id: str
    height: int
    blocks: int
    txs: int
    state_hash: str
    state_entries: int
    sign_state: str | None   # "h/r/s" of a validator's double-sign record, if any
    from_height: int = 0     # a state-synced home: the snapshot height the replay starts at
    set_changes: int = 0     # and the validator-set changes its header was checked through

    def summary(self) -> str:
        signed = f"; double-sign record at h/r/s {self.sign_state}" if self.sign_state else ""
        start = "from genesis" if not self.from_height else (
            f"from the snapshot of height {self.from_height} this home was state-synced from (its header "
            f"checked from genesis through {self.set_changes} validator-set changes, its entries against "
            f"the header's state root; blocks below it are not here to replay)")
        return (f"verified {self.blocks} blocks ({self.txs} txs) of chain {self.chain_id[:16]}… "
                f"{start}: height {self.height}, state hash {self.state_hash}, "
                f"{self.state_entries} state entries{signed}")


Progress = Callable[[int, int], None]


def verify_home(home_dir: Path, progress: Progress = lambda done, total: None,
                key: Keypair | None = None, receive: dict[bytes, bytes] | None = None) -> VerifyReport:
    """Replay ``home_dir``'s store from genesis; raise ``VerifyError`` at the first mismatch.
    ``key``: on a chain that seals payloads, open them with this key (an auditor's, or a
    validator's) and its receive keys ``receive``, rather than the home's."""
    home = load_home(home_dir)
    if key is not None and not home.genesis.seals_payloads:
        raise VerifyError(f"{home.path}: this chain does not seal payloads: its replay needs no key (leave out --key)")
    sign_state = _describe_sign_state(home.path)
    if not (home.path / DB_DIR).is_dir():
        raise VerifyError(f"{home.path} holds no database yet: has this node ever run?")
    with Store.open(home.path / DB_DIR, chain_id=home.genesis.chain_id, create=False) as store:
        if not store.is_initialized():
            raise VerifyError(f"{home.path}: the store holds no chain yet (run the node first)")
        if store.is_light():
            raise VerifyError(f"{home.path}: a household node in light mode holds no block to replay (it trusts "
                              "the validators' signed state roots, docs/privacy.md); verify a full node's home")
        if store.state_from():
            return verify_synced_home(home, store, sign_state, progress, key, receive)
        if store.blocks_from() > 1:
            # docs/state.md "Pruning": a replay from genesis needs every block body.
            raise VerifyError(f"{home.path}: blocks below height {store.blocks_from()} were pruned (a household "
                              "node run with --pruning default keeps --keep-days of them, a validator those of "
                              "the last --archive-keep-days); node verify replays from genesis: verify the home "
                              "of a node run with --pruning archive")
        check_no_cut_since(home, store, 0)
        check_no_erasure_since(home, store, 0)
        # The keyring first: a genesis that seals its households opens with epoch 0's key.
        keys = read_verify_keyring(home, store, key, receive)
        kv, txs = MemoryKV(genesis_writes(home.genesis, keys)), 0
        tip = Trusted(0)
        for height in range(1, store.height() + 1):
            tip, count = verify_stored_block(store, home.genesis, kv, tip, height, keys)
            txs += count
            progress(height, store.height())
        verify_final_state(store, kv, keys)
        return VerifyReport(home.genesis.chain_id.hex(), store.height(), store.height(), txs,
                            store.state_hash().hex(), len(kv), sign_state)


def read_verify_keyring(home, store: StoreReader, key: Keypair | None = None,
                        receive: dict[bytes, bytes] | None = None) -> Keyring | None:
    """The commune data keys ``key`` (default: this home's key) opens on a chain that
    seals payloads, from the stored state: every epoch, through the links (docs/privacy.md)."""
    if not home.genesis.seals_payloads:
        return None
    whose = "this home's key" if key is None else f"the key {key.public.hex()[:16]}…"
    # The home's receive keys open the copies sealed to them (docs/privacy.md "Receive keys").
    receive = load_receive_keys(get_receive_dir(home.path)) if key is None else receive
    key = key or home_key(home)
    keys = compute_keyring(store.state, key.seed, key.public, receive=receive)
    if not keys.secrets:
        raise VerifyError(f"{home.path}: this chain seals household payloads and {whose} holds no commune data key: "
                          "it is neither a validator's nor an auditor's appointed by a passed proposal "
                          "(`voisinage gov auditors` lists them; docs/privacy.md \"Auditors\")")
    return keys


def check_no_cut_since(home, store: StoreReader, start: int) -> None:
    """docs/privacy.md "Erasure": after a cut of the commune data key nobody holds the
    epochs before it, so no replay from below the cut can open their sealed blocks."""
    raw = store.state.get(TL.META_DATA_CUT)
    if raw is None:
        return
    epoch, height = decode_value(raw)
    if height > start:
        raise VerifyError(f"{home.path}: the commune data key was cut at height {height} (epoch {epoch}): nobody "
                          f"keeps the epochs before it, so a replay from height {start} cannot open their sealed "
                          f"blocks (docs/privacy.md \"Erasure\"); verify a home state-synced from a snapshot at "
                          f"or past height {height}")


def check_no_erasure_since(home, store: StoreReader, start: int) -> None:
    """docs/privacy.md "Erasure": on a chain that seals payloads, a replay across a
    household's erasure would open its sealed payloads again (the blocks still carry its
    sealed data key and envelopes): refused, in one line. A chain that does not seal has
    nothing to reopen (its blocks are in clear)."""
    if not home.genesis.seals_payloads:
        return
    heights = [decode_value(raw)[0] for _, raw in store.state.iter_prefix(TL.ERASED)]
    crossed = [h for h in heights if h > start]
    if crossed:
        raise VerifyError(f"{home.path}: a household's private data was erased at height {min(crossed)} and a "
                          f"replay from height {start} would open its sealed payloads again (docs/privacy.md "
                          f"\"Erasure\"); verify a home state-synced from a snapshot at or past height "
                          f"{max(crossed)}")


def verify_synced_home(home, store: Store, sign_state: str | None, progress: Progress,
                       key: Keypair | None = None, receive: dict[bytes, bytes] | None = None) -> VerifyReport:
    """A home installed by state sync (docs/statesync.md): the set changes it kept are
    checked from genesis, the snapshot's header against them, the snapshot it kept is
    rebuilt, and every block since is replayed on it as from genesis."""
    from node.service.statesync import check_installed_snapshot

    start = store.state_from()
    if store.blocks_from() > start + 1:
        raise VerifyError(f"{home.path}: blocks below height {store.blocks_from()} were pruned; this home was "
                          f"state-synced at height {start}, and a replay from there needs every block since")
    try:
        writes, tip, changes = check_installed_snapshot(home, store)
    except (ValueError, ServiceError) as exc:
        raise VerifyError(f"{home.path}: {exc}") from None
    check_no_cut_since(home, store, start)
    check_no_erasure_since(home, store, start)
    kv, txs = MemoryKV(writes), 0
    keys = read_verify_keyring(home, store, key, receive)
    for height in range(start + 1, store.height() + 1):
        tip, count = verify_stored_block(store, home.genesis, kv, tip, height, keys)
        txs += count
        progress(height - start, store.height() - start)
    verify_final_state(store, kv, keys)
    return VerifyReport(home.genesis.chain_id.hex(), store.height(), store.height() - start, txs,
                        store.state_hash().hex(), len(kv), sign_state, start, changes)


def verify_stored_block(store: StoreReader, genesis: Genesis, kv: MemoryKV, tip: Trusted,
                        height: int, keys: Keyring | None = None) -> tuple[Trusted, int]:
    """Check block ``height`` on top of ``tip`` and apply it to ``kv``; the new tip."""
    stored = store.get_stored_block(height)
    try:
        block = decode(stored.block, Block, MAX_BLOCK_BYTES)
        commit = decode(stored.commit, Commit, MAX_BLOCK_BYTES)
    except DecodeError as exc:
        raise VerifyError(f"height {height}: stored block or commit does not decode: {exc.reason}") from None
    block_id = compute_block_id(block)
    # DESIGN §8: the store's id index must name the block it holds.
    if stored.block_id != block_id:
        raise VerifyError(f"height {height}: stored block id {stored.block_id.hex()[:16]}… is not the "
                          f"id of the stored header {block_id.hex()[:16]}…")
    try:
        verify_next_block(tip, genesis.chain_id, block, commit, lambda h: get_validator_set(kv, h))
    except InvalidConsensusBlock as exc:
        raise VerifyError(f"height {height}: {exc.reason}") from None
    # DESIGN §6 "Block": the header carries the state hash after the parent.
    if block.header.state_hash != get_state_hash(kv):
        raise VerifyError(f"height {height}: header state hash {block.header.state_hash.hex()[:16]}… "
                          f"!= replayed {get_state_hash(kv).hex()[:16]}…")
    ctx = BlockContext(height, block.header.time_ms, block.header.proposer, block.header.version)
    try:
        result = apply_block(kv, genesis, ctx, block.txs, equivocators=get_equivocators(block), headers=HEADER_RULES,
                             keys=keys)
    except InvalidLedgerBlock as exc:
        raise VerifyError(f"height {height}: the block does not apply: {exc}") from None
    kv.apply(result.writes)
    return Trusted(height, block_id, block.header.time_ms), len(block.txs)


def verify_final_state(store: StoreReader, kv: MemoryKV, keys: Keyring | None = None) -> None:
    """The replayed state is the stored state, and both hash to the stored state hash."""
    replayed = get_state_hash(kv)
    if replayed != store.state_hash():
        raise VerifyError(f"height {store.height()}: stored state hash {store.state_hash().hex()[:16]}… "
                          f"!= replayed {replayed.hex()[:16]}…")
    # The tree's nodes are left out: the replay keeps every version's, a pruned store
    # only the last --keep-states'; verify_state_hash walks the stored tree of the root.
    stored_items = {k: v for k, v in store.state.iter_prefix(b"") if is_proven_key(k)}
    replayed_items = {k: v for k, v in kv.items() if is_proven_key(k)}
    for key in sorted(set(stored_items) | set(replayed_items)):
        if stored_items.get(key) != replayed_items.get(key):
            raise VerifyError(f"height {store.height()}: state entry {key!r} differs from the replay")
    store.verify_state_hash(keys)


def _describe_sign_state(home: Path) -> str | None:
    if not (home / SIGN_STATE_FILE).exists():
        return None
    state = load_sign_state(home)
    return f"{state.height}/{state.round}/{state.step}"


def make_progress() -> tuple[Progress, Callable[[], None]]:
    """A progress bar on a terminal (DESIGN §9 "long work shows progress"), else nothing."""
    if not sys.stderr.isatty():
        return (lambda done, total: None), (lambda: None)
    from rich.progress import Progress as Bar

    bar = Bar(transient=True)
    bar.start()
    task = bar.add_task("replaying blocks", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)
    return update, bar.stop
