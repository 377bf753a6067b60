"""A cut of the commune data key after an erasure (docs/privacy.md "Erasure", "Receive
keys"), on two validators' real LevelDB stores: once the cut commits, nothing either
holder keeps (its keyring, its identity key file, the receive key files left in its
home, genesis.json, every block, the state) opens the erased household's data keys or
readings in the old blocks, while a surviving household's old reading still opens
through the state, and both validators hold the same state root. Blocks committed
through each node's ledger app; each node makes its receive keys as it does running."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consensus.block import (
    ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root, compute_validators_hash,
)
from consensus.lightsync import HEADER_RULES
from consensus.vote import PRECOMMIT, Vote
from node.home.homedir import KEY_FILE, create_network, load_home, load_household_spec
from node.home.keyfile import load_key
from node.home.receivekeys import get_receive_dir, load_receive_keys
from node.net import Outcome
from node.service.node import Node
from node.service.runner import open_store
from node.service.sealing import open_node_keyring
from node.service.verify import VerifyError, verify_home
from tests.unit.service.rotations import make_rotation
from tokens import BlockContext, InvalidTx, apply_block, check_tx
from tokens import layout as L
from tokens import txs as T
from tokens.kv import decode_value, encode_value
from tokens.layout import META_STATE_HASH
from tokens.snapshot import compute_snapshot, compute_snapshot_state
from tokens.queries import get_sealing
from tokens.rules_seal import open_sealed_box
from tokens.sealing import (
    Keyring, MissingCommuneKey, build_commune_sealed, build_sealed, build_set_data_key, compute_keyring,
    open_any_household_key,
)
from wire import Keypair, decode, sign_message
from wire.seal import (
    NO_LINK, SealError, compute_commune_public, compute_wrap_label, open_data_key, open_link, open_payload, seal_link,
    unwrap_under_cut,
)

DAY = 86_400
ERASE_AFTER = 2 * DAY + 1800


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    root = tmp_path / "commune"
    create_network(root, name="Testville", insee="12345", validators=2, households=2, base_port=40500,
                   genesis_time=int(time.time()) - 600, seal_payloads=True,
                   params={"erasure_after_s": ERASE_AFTER})
    return root


@pytest.fixture
def nodes(commune: Path) -> Iterator[list[Node]]:
    stores = [open_store(load_home(commune / f"validator-{i}")) for i in range(2)]
    try:
        yield [Node(load_home(commune / f"validator-{i}"), store) for i, store in enumerate(stores)]
    finally:
        for store in stores:
            store.close()


def commit_all(nodes: list[Node], vkeys: list[Keypair], txs: list[bytes], time_s: int) -> None:
    """Commit the next block at chain time ``time_s`` on every node, precommitted by
    every validator and carrying the last commit; the nodes must agree on the parent's
    state root, as the header carries it."""
    first = nodes[0]
    roots = {node.store.state_hash() for node in nodes}
    assert len(roots) == 1, "the validators' state roots differ"
    height = first.store.height() + 1
    last = decode(first.store.get_stored_block(height - 1).commit, Commit) if height > 1 else None
    header = Header(chain_id=first.chain_id, height=height, time_ms=time_s * 1000,
                    parent=first.store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(txs),
                    state_hash=first.store.state_hash(), proposer=vkeys[0].public,
                    next_validators=compute_validators_hash(first.app.validator_set(height + 1)), version=1)
    block = Block(header=header, txs=tuple(txs), last_commit=last, evidence=())
    block_id = compute_block_id(block)
    sigs = tuple(CommitSig(validator=k.public, sig=sign_message(
        Vote(kind=PRECOMMIT, height=height, round=0, block_id=block_id, validator=k.public, sig=bytes(64)),
        first.chain_id, k).sig) for k in sorted(vkeys, key=lambda k: k.public))
    for node in nodes:
        node.app.commit(block, Commit(height=height, round=0, block_id=block_id, sigs=sigs), ())


def rotation(nodes: list[Node], vkeys: list[Keypair], epoch: int, new: bytes, link: bytes) -> bytes:
    """Sealed to each validator's published receive key, as rotate-data-key seals it."""
    return make_rotation(nodes[0].store.state, nodes[0].chain_id, vkeys, epoch, new, link)


def fresh_receive_keys(nodes: list[Node]) -> list[bytes]:
    """The SetReceiveKey each node makes after a block, when it has no fresh receive key."""
    return [tx for tx in (node.get_missing_receive_key() for node in nodes) if tx is not None]


def home_receive_keys(commune: Path, i: int) -> dict[bytes, bytes]:
    return load_receive_keys(get_receive_dir(commune / f"validator-{i}"))


def read_block_txs(node: Node) -> Iterator[T.Tx]:
    for height in range(1, node.store.height() + 1):
        block = decode(node.store.get_stored_block(height).block, Block)
        yield from (T.decode_tx(raw) for raw in block.txs)


def gather_secrets(nodes: list[Node], vkeys: list[Keypair], commune: Path,
                   copied: dict[bytes, bytes] | None = None) -> list[bytes]:
    """Every commune secret a holder keeps: its node's keyring; what its identity key and
    the receive key files left in its home (and ``copied``, receive keys it copied
    elsewhere) open from the state, from genesis.json and from every block's
    RotateDataKey; and every link of the state and the blocks walked from any of those."""
    found = {s for node in nodes for s in node.keys.secrets.values()}
    genesis = nodes[0].genesis
    rotations = [tx for tx in read_block_txs(nodes[0]) if isinstance(tx, T.RotateDataKey)]
    for i, k in enumerate(vkeys):
        receive = {**home_receive_keys(commune, i), **(copied or {})}
        for node in nodes:
            found |= set(compute_keyring(node.store.state, k.seed, k.public, receive=receive).secrets.values())
        keyring = Keyring(holder=(k.seed, k.public), receive=receive)
        copies = [(0, sealed, genesis.sealing.public) for v, sealed in zip(genesis.validators, genesis.sealing.sealed)
                  if v.key == k.public]
        copies += [(tx.nonce, tx.sealed[tx.holders.index(k.public)], tx.public) for tx in rotations
                   if k.public in tx.holders]
        found |= {s for s in (keyring.open_copy(*copy) for copy in copies) if s is not None}
    for node in nodes:
        links = [decode_value(raw)[1] for _, raw in node.store.state.iter_prefix(L.DATA_KEY)]
        links += [tx.link for tx in rotations if tx.link != NO_LINK]
        grew = True
        while grew:
            grew = False
            for link, secret in [(link, secret) for link in links if link for secret in list(found)]:
                try:
                    older = open_link(secret, link)
                except SealError:
                    continue
                if older not in found:
                    found.add(older)
                    grew = True
    return sorted(found)


def openable_data_keys(nodes: list[Node], secrets: list[bytes]) -> list[bytes]:
    """Every household data key that those secrets open from the state: the sealed data
    keys still there, and the ones wrapped under a cut."""
    found = set()
    for node in nodes:
        state = node.store.state
        for key, raw in state.iter_prefix(L.HOUSEHOLD_DATA_KEY):
            for secret in secrets:
                try:
                    found.add(open_data_key(secret, decode_value(raw))[0])
                except SealError:
                    pass
        for key, raw in state.iter_prefix(L.REWRAPPED_DATA_KEY):
            rest = key[len(L.REWRAPPED_DATA_KEY):]
            label = compute_wrap_label(rest[:32], L.from_u64(rest[32:]))
            for secret in secrets:
                try:
                    found.add(unwrap_under_cut(secret, label, decode_value(raw))[:32])
                except SealError:
                    pass
    return sorted(found)


def what_opens(nodes: list[Node], vkeys: list[Keypair], addr: bytes, commune: Path,
               copied: dict[bytes, bytes] | None = None) -> list[str]:
    """What of ``addr``'s in the blocks opens with what the holders keep (empty: nothing)."""
    secrets = gather_secrets(nodes, vkeys, commune, copied)
    data_keys = set(openable_data_keys(nodes, secrets))
    opened = []
    txs = list(read_block_txs(nodes[0]))
    for tx in txs:
        if isinstance(tx, T.SetDataKey):
            for secret in secrets:
                try:
                    data_keys.add(open_data_key(secret, tx.sealed)[0])
                except SealError:
                    continue
                if tx.signer == addr:
                    opened.append(f"SetDataKey of epoch {tx.epoch}")
    for tx in txs:
        if isinstance(tx, T.Sealed) and tx.signer == addr:
            for data_key in data_keys:
                try:
                    open_payload(data_key, tx.box)
                    opened.append(f"Sealed nonce {tx.nonce} of epoch {tx.epoch}")
                except SealError:
                    pass
    return opened


def test_cut_leaves_nothing_that_opens_the_erased_household(nodes, commune, caplog):
    vkeys = [load_key(commune / f"validator-{i}" / KEY_FILE) for i in range(2)]
    gone, stays = (load_key(commune / f"household-{i}" / KEY_FILE) for i in range(2))
    registrar = load_key(commune / "registrar" / KEY_FILE)
    chain_id = nodes[0].chain_id
    meters = {k.public: load_household_spec(nodes[0].genesis, commune / f"household-{i}").meter
              for i, k in enumerate((gone, stays))}
    t = (int(time.time()) // 1800 + 1) * 1800
    nonces = {gone.public: 0, stays.public: 0}

    def set_key(k: Keypair, epoch: int) -> bytes:
        nonces[k.public] += 1
        public = bytes.fromhex(get_sealing(nodes[0].store.state)["public"])
        return build_set_data_key(k, chain_id, nonces[k.public], epoch, public, os.urandom(32)).encode()

    def reading(k: Keypair, seq: int, at: int, epoch: int) -> T.Sealed:
        inner = T.MeterReading(signer=k.public, meter=meters[k.public], seq=seq, t=at, import_wh=300 * seq,
                               export_wh=100 * seq, sig=bytes(64))
        return build_sealed(inner, k, chain_id, epoch, os.urandom(24))

    # Epoch 0 went to each validator's genesis receive key: each node publishes a fresh one.
    commit_all(nodes, vkeys, [set_key(gone, 0), set_key(stays, 0)] + fresh_receive_keys(nodes), t - 60)
    assert fresh_receive_keys(nodes) == []
    old_reading = reading(stays, 1, t, 0)
    commit_all(nodes, vkeys, [reading(gone, 1, t, 0).encode(), old_reading.encode()], t + 1)
    # A linked rotation: epoch 1 opens epoch 0 through its link, as before.
    first = nodes[0].keys.secrets[0]
    epoch1 = os.urandom(32)
    commit_all(nodes, vkeys, [rotation(nodes, vkeys, 1, epoch1, seal_link(epoch1, first, os.urandom(24)))], t + 2)
    commit_all(nodes, vkeys, [set_key(gone, 1), set_key(stays, 1)] + fresh_receive_keys(nodes), t + 3)
    assert [len(home_receive_keys(commune, i)) for i in range(2)] == [3, 3]
    commit_all(nodes, vkeys, [reading(gone, 2, t + 900, 1).encode(), reading(stays, 2, t + 900, 1).encode()],
               t + 901)
    deregister = build_commune_sealed(T.Deregister(signer=registrar.public, nonce=1, key=gone.public, memo="départ",
                                                   sig=bytes(64)), registrar, chain_id, 1, compute_commune_public(epoch1),
                                      os.urandom(32)).encode()
    left = t + 1800 + 600
    commit_all(nodes, vkeys, [deregister], left)
    commit_all(nodes, vkeys, [], left + ERASE_AFTER)          # the erasure
    assert nodes[0].store.state.get(L.key_household_data_key(gone.public, 0)) is None
    sealing = get_sealing(nodes[0].store.state)
    assert sealing["cut_due"] and sealing["rotation_due"] and sealing["cut"] is None

    # Before the cut (the erasure alone): the epochs every holder keeps still open the
    # erased household's data keys in the blocks, and through them its readings.
    before = what_opens(nodes, vkeys, gone.public, commune)
    assert "SetDataKey of epoch 0" in before and "Sealed nonce 1 of epoch 0" in before
    # What a holder that copied its receive key files elsewhere keeps (docs/privacy.md
    # "Receive keys": what the cut does not do).
    copied = home_receive_keys(commune, 0)
    # A linked rotation is refused: the next one must be a cut.
    epoch2 = os.urandom(32)
    linked = rotation(nodes, vkeys, 2, epoch2, seal_link(epoch2, epoch1, os.urandom(24)))
    with pytest.raises(InvalidTx) as refused:
        check_tx(nodes[0].store.state, nodes[0].genesis, linked, (left + ERASE_AFTER + 1) * 1000,
                 headers=HEADER_RULES, keys=nodes[0].keys)
    assert refused.value.reason == "cut_due"

    caplog.set_level(logging.INFO, logger="node.service.ledger_app")
    commit_all(nodes, vkeys, [rotation(nodes, vkeys, 2, epoch2, NO_LINK)], left + ERASE_AFTER + 2)
    cut_height = nodes[0].store.height()
    assert sum("cut the commune data key at epoch 2" in r.getMessage() and "deleted the secrets of epochs [0, 1]"
               in r.getMessage() for r in caplog.records) == 2       # each node says so
    assert sum("deleted 2 receive key file(s)" in r.getMessage() for r in caplog.records) == 2
    for i, node in enumerate(nodes):
        assert sorted(node.keys.secrets) == [2]
        # Only the receive key the cut epoch went to is left, on disk and in memory.
        assert list(home_receive_keys(commune, i)) == list(node.keys.receive) == list(node.keys.receive_used)
    sealing = get_sealing(nodes[0].store.state)
    assert not sealing["cut_due"] and not sealing["rotation_due"] and sealing["cut"] == {"epoch": 2,
                                                                                       "height": cut_height}

    # (1) Nothing any holder keeps opens the erased household's data keys or readings:
    # not its identity key file with genesis.json and every block, nor the receive key
    # files left in its home.
    assert what_opens(nodes, vkeys, gone.public, commune) == []
    # ... while the survivor's old readings still open (the same check can find them),
    assert "Sealed nonce 1 of epoch 0" in what_opens(nodes, vkeys, stays.public, commune)
    # ... and a holder that copied its receive key files before the cut still opens them.
    assert "Sealed nonce 1 of epoch 0" in what_opens(nodes, vkeys, gone.public, commune, copied)

    # (2) The survivor's old reading opens through the state: its data key of epoch 0,
    # wrapped under the cut, opened with the keyring the node holds now.
    def get(key: bytes):
        raw = nodes[1].store.state.get(key)
        return None if raw is None else decode_value(raw)
    sealed = get(L.key_household_data_key(stays.public, 0))
    data_key, _ = open_any_household_key(get, nodes[1].keys, stays.public, 0, sealed)
    inner = open_sealed_box(chain_id, data_key, nodes[1].keys.get_secret, old_reading)
    assert isinstance(inner, T.MeterReading) and inner.seq == 1 and inner.import_wh == 300

    # (3) The chain goes on under the cut epoch: the survivor publishes its key of epoch 2
    # and seals; both validators hold the same root, each recomputed in full.
    commit_all(nodes, vkeys, [set_key(stays, 2)], left + ERASE_AFTER + 3)
    commit_all(nodes, vkeys, [reading(stays, 3, left + ERASE_AFTER + 1800, 2).encode()],
               left + ERASE_AFTER + 1801)
    commit_all(nodes, vkeys, [], left + ERASE_AFTER + 3600 + 600)   # its interval settles
    assert nodes[0].store.state_hash() == nodes[1].store.state_hash()
    for node in nodes:
        assert node.store.verify_state_hash(node.keys) == node.store.state_hash()
    # A node restarted after the cut opens only the cut epoch, and still computes the root.
    fresh = open_node_keyring(nodes[0].genesis, nodes[0].store.state, vkeys[0], home_receive_keys(commune, 0))
    assert sorted(fresh.secrets) == [2]
    assert nodes[0].store.verify_state_hash(fresh) == nodes[0].store.state_hash()

    # A holder joining by state sync after the cut rebuilds the salted tree from the
    # snapshot alone: the survivor's salt and the aggregates' through the wrapped keys.
    state = nodes[1].store.state
    hidden = [key for key, raw in state.iter_prefix(L.INTERVAL) if not L.is_public_interval(decode_value(raw))]
    assert hidden or state.get(L.POOL) is not None     # a hidden aggregate, salted under the aggregate key
    snapshot = compute_snapshot(nodes[1].store.height(), nodes[1].store.state_hash(), state.iter_prefix(b""))
    installed = compute_snapshot_state(snapshot.meta, snapshot.chunks, key=vkeys[0],
                                       receive=home_receive_keys(commune, 0))
    assert installed[META_STATE_HASH] == encode_value(nodes[1].store.state_hash())

    nodes[0].store.close()
    with pytest.raises(VerifyError, match=f"cut at height {cut_height} \\(epoch 2\\).*cannot open"):
        verify_home(commune / "validator-0")


def test_a_cut_without_erasure_is_allowed_and_needs_a_copy_to_apply(nodes, commune):
    vkeys = [load_key(commune / f"validator-{i}" / KEY_FILE) for i in range(2)]
    t = int(time.time())
    state = nodes[0].store.state
    # Epoch 0 went to the genesis receive keys: a cut sealed to them is refused, as the
    # holders would have to keep them (and so epoch 0) to open it.
    stale = rotation(nodes, vkeys, 1, os.urandom(32), NO_LINK)
    with pytest.raises(InvalidTx) as refused:
        check_tx(state, nodes[0].genesis, stale, t * 1000, headers=HEADER_RULES, keys=nodes[0].keys)
    assert refused.value.reason == "stale_receive_key"
    commit_all(nodes, vkeys, fresh_receive_keys(nodes), t)
    cut = rotation(nodes, vkeys, 1, os.urandom(32), NO_LINK)
    t += 1
    ctx = BlockContext(nodes[0].store.height() + 1, t * 1000, vkeys[0].public, 1)
    # A node whose keyring holds every epoch but no copy of the new one cannot compute
    # the cut's state (it would wrap the survivors' keys): it stops, it does not judge;
    # nor can a holder's node that lost the receive key its copy went to.
    outsider = Keyring(dict(nodes[0].keys.secrets))
    with pytest.raises(MissingCommuneKey, match="epoch 1, a cut"):
        apply_block(state, nodes[0].genesis, ctx, (cut,), headers=HEADER_RULES, keys=outsider)
    lost = Keyring(dict(nodes[0].keys.secrets), holder=nodes[0].keys.holder)
    with pytest.raises(MissingCommuneKey, match="receive key .* which it does not hold"):
        apply_block(state, nodes[0].genesis, ctx, (cut,), headers=HEADER_RULES, keys=lost)
    commit_all(nodes, vkeys, [cut], t)
    for i, node in enumerate(nodes):
        assert sorted(node.keys.secrets) == [1]
        assert len(home_receive_keys(commune, i)) == 1        # the genesis one is gone
        assert node.store.verify_state_hash(node.keys) == node.store.state_hash()
    assert get_sealing(nodes[0].store.state)["cut"] == {"epoch": 1, "height": nodes[0].store.height()}


def test_a_cut_keeps_the_meter_and_prm_lookups(nodes, commune):
    # The meter/ and prm/ entries are keyed by a hash under the index key, derived from
    # the aggregate key that the cut carries over (tokens/indexkeys.py): a node restarted
    # after the cut, holding the cut epoch alone, still finds every household by them.
    vkeys = [load_key(commune / f"validator-{i}" / KEY_FILE) for i in range(2)]
    registrar = load_key(commune / "registrar" / KEY_FILE)
    spec = load_household_spec(nodes[0].genesis, commune / "household-0")
    chain_id, t = nodes[0].chain_id, int(time.time())

    def indexes() -> dict[bytes, bytes]:
        state = nodes[0].store.state
        return {key: raw for prefix in (L.METER, L.PRM) for key, raw in state.iter_prefix(prefix)}
    before = indexes()
    assert len(before) == 4 and not any(spec.meter.encode() in k or spec.prm.encode() in k for k in before)
    new = os.urandom(32)
    commit_all(nodes, vkeys, fresh_receive_keys(nodes), t)
    t += 1
    commit_all(nodes, vkeys, [rotation(nodes, vkeys, 1, new, NO_LINK)], t)
    assert indexes() == before
    fresh = open_node_keyring(nodes[0].genesis, nodes[0].store.state, vkeys[0], receive=home_receive_keys(commune, 0))
    assert sorted(fresh.secrets) == [1]
    newcomer = Keypair(os.urandom(32))

    def register(meter: str, prm: str) -> bytes:
        inner = T.RegisterHousehold(signer=registrar.public, nonce=1, key=newcomer.public, meter=meter, prm=prm,
                                    label="Nouveaux", kva=6, peak_w=0, sig=bytes(64))
        return build_commune_sealed(inner, registrar, chain_id, 1, compute_commune_public(new),
                                    os.urandom(32)).encode()
    for taken, reason in ((register("021499990001", spec.prm), "prm_in_use"),
                          (register(spec.meter, "30000099990001"), "meter_in_use")):
        with pytest.raises(InvalidTx) as refused:
            check_tx(nodes[0].store.state, nodes[0].genesis, taken, (t + 1) * 1000, headers=HEADER_RULES, keys=fresh)
        assert refused.value.reason == reason
    commit_all(nodes, vkeys, [register("021499990001", "30000099990001")], t + 1)
    assert len(indexes()) == 6
    for node in nodes:
        assert decode_value(node.store.state.get(L.key_household(newcomer.public)))[L.HH_PRM] == "30000099990001"
        assert node.store.verify_state_hash(fresh) == node.store.state_hash()


def test_invalid_set_receive_key_forged_or_from_a_non_holder(nodes, commune):
    vkeys = [load_key(commune / f"validator-{i}" / KEY_FILE) for i in range(2)]
    household = load_key(commune / "household-0" / KEY_FILE)
    node, public = nodes[0], compute_commune_public(os.urandom(32))
    # Naming validator-0, signed by validator-1: the gossip layer rejects the forwarder.
    forged = sign_message(T.SetReceiveKey(signer=vkeys[0].public, nonce=1, public=public, sig=bytes(64)),
                          node.chain_id, vkeys[1])
    forged = dataclasses.replace(forged, signer=vkeys[0].public)
    verdict = node.on_tx("peer", forged.encode())
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, "bad_signature")
    outsider = sign_message(T.SetReceiveKey(signer=household.public, nonce=1, public=public, sig=bytes(64)),
                            node.chain_id, household)
    with pytest.raises(InvalidTx) as refused:
        check_tx(node.store.state, node.genesis, outsider.encode(), int(time.time()) * 1000, headers=HEADER_RULES,
                 keys=node.keys)
    assert refused.value.reason == "not_a_holder"
    # A holder's own one goes through, and the next rotation must seal to it.
    own = node.get_missing_receive_key()
    assert own is not None and node.get_missing_receive_key() is not None    # (not in the mempool: made again)
    node.submit_tx(own)
    assert node.get_missing_receive_key() is None                            # one waits in the mempool
