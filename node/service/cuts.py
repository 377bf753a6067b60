"""The cut is forced (docs/privacy.md "Erasure", "The cut is forced"): once an erasure
makes the next rotation of the commune data key a cut (``meta/cut_due``), the
validators' nodes make it by themselves, and say when it is overdue.

No operator runs a command. One validator's node, whose *turn* it is, builds the cut:
a fresh secret sealed to every holder's published receive key (a cut links back to
nothing, so the builder needs no older secret) and its own co-signature. It gossips it
on the tx topic with too few signatures to commit; every other validator's node that
receives it checks it against its committed state (the cut is due, the epoch is the
next one, the holders are the latest set and the auditors, each copy goes to the
holder's published, fresh receive key, every signature is a current validator's) and
that its own copy opens to the announced public key, adds its signature, and gossips
the union of the signatures it has seen. The node that sees ⅔ of the validators' takes
the whole tx into its mempool, as any tx, and the next block commits it.

Why the quorum stays: the ledger's rule for a rotation (≥ ⅔ of the validators co-sign)
is unchanged, so no single node can cut on its own, and a cut only ever seals to the
holders the ledger checks. What changes is who gathers the signatures: the nodes,
over the gossip they already share, not the operators by hand.

The turn: the validators of the next height that are holders, sorted, take it in order,
``CUT_TURN_S`` of chain time each, from the erasure's height: a builder whose node is
down hands over to the next one. A node co-signs any valid cut of the next epoch (two
builders in the same turn boundary are harmless: only one cut of an epoch commits, the
other is then ``stale_nonce``).

Pure functions of the committed state and the node's keys, and ``CutGatherer``, which
holds the signatures seen per proposal until its epoch moves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.kv import KV, decode_value
from tokens.queries import get_validator_set
from tokens.rules_auditors import get_auditors, get_holders
from tokens.rules_seal import open_own_new_copy
from tokens.rules_validators import compute_quorum_cosigners
from tokens.sealing import Keyring, MissingCommuneKey, read_receive_keys, seal_to_holders
from tokens.txs import RotateDataKey, ValidatorSig
from wire import Keypair, signing_bytes, verify_signature
from wire.seal import NO_LINK, compute_commune_public

# Chain seconds a validator's turn to build the cut lasts before the next one's.
CUT_TURN_S = 300
# An erasure not yet followed by a cut for this long makes the cut overdue (GET /status
# ``cut_overdue``, the ``voisinage_cut_overdue`` gauge; ``node run --cut-overdue-s``).
# The nodes make the cut within a block or two; a day leaves room for a node being
# restarted. An alert threshold, not a rule: each node has its own, and no state root
# depends on it.
CUT_OVERDUE_S = 86_400


@dataclass(frozen=True)
class PendingCut:
    """An erasure not yet followed by a cut: ``due_height`` the latest erasure's height
    (``meta/cut_due``), ``since_s`` the time of the oldest one since the latest cut
    (from the public ``erased/`` records; None if the state holds none, a chain that
    lost them)."""

    due_height: int
    since_s: int | None


def _get(state: KV, key: bytes):
    raw = state.get(key)
    return None if raw is None else decode_value(raw)


def get_pending_cut(state: KV) -> PendingCut | None:
    """The erasure that makes the next rotation a cut, or None when none is due."""
    due = _get(state, L.META_CUT_DUE)
    if due is None:
        return None
    cut = _get(state, L.META_DATA_CUT)
    # An erasure in the cut's own block ran before its txs: the cut covers it.
    after = -1 if cut is None else cut[1]
    times = [record[1] for record in (decode_value(raw) for _, raw in state.iter_prefix(L.ERASED))
             if record[0] > after]
    return PendingCut(due, min(times) if times else None)


def describe_cut(state: KV, now_s: int, overdue_s: int = CUT_OVERDUE_S) -> dict | None:
    """What GET /status and the metrics say of the cut, at chain time ``now_s``:
    ``cut_due``, ``cut_pending_s`` (seconds since the oldest erasure not yet cut) and
    ``cut_overdue`` (pending longer than ``overdue_s``); None on a chain that does
    not seal."""
    if state.get(L.META_DATA_EPOCH) is None:
        return None
    pending = get_pending_cut(state)
    age = None if pending is None or pending.since_s is None else max(0, now_s - pending.since_s)
    return {"cut_due": pending is not None, "cut_pending_s": age,
            "cut_overdue": age is not None and age > overdue_s}


def get_cut_signers(state: KV, height: int) -> list[bytes]:
    """Who co-signs a cut in the block at ``height``: the validators in force there."""
    return get_validator_set(state, height)


def get_next_holders(state: KV) -> list[bytes]:
    """Who the next epoch goes to: the latest validator set and the auditors
    (tokens/rules_seal.get_latest_holders, over committed state)."""
    sets = list(state.iter_prefix(L.VALIDATOR_SET))
    latest = list(decode_value(sets[-1][1])) if sets else []
    return get_holders(latest, get_auditors(list(state.iter_prefix(L.AUDITOR))))


def get_builder(state: KV, height: int, now_s: int) -> bytes | None:
    """Whose turn it is to build the due cut at chain time ``now_s`` (module doc): None
    when none is due or no validator of ``height`` is a holder."""
    pending = get_pending_cut(state)
    if pending is None:
        return None
    holders = set(get_next_holders(state))
    turns = sorted(k for k in get_cut_signers(state, height) if k in holders)
    if not turns:
        return None
    waited = 0 if pending.since_s is None else max(0, now_s - pending.since_s)
    return turns[(pending.due_height + waited // CUT_TURN_S) % len(turns)]


def get_fresh_receive_keys(state: KV, holders: list[bytes]) -> dict[bytes, bytes] | None:
    """Each holder's published receive key, if every published one is fresh (no epoch
    went to it: a cut seals only to such, ``stale_receive_key``); None while one is not
    (its node publishes a fresh one within a block of the last rotation). A holder that
    published none gets its identity key, as ``rotate-data-key`` does."""
    published = read_receive_keys(state)
    if any(published[h][1] is not None for h in holders if h in published):
        return None
    return {h: published[h][0] for h in holders if h in published}


def build_cut(state: KV, key: Keypair, chain_id: bytes) -> RotateDataKey | None:
    """The cut of the next epoch, a fresh secret sealed to the holders' receive keys,
    co-signed by ``key`` alone; None while a holder's receive key is not fresh."""
    holders = get_next_holders(state)
    receive = get_fresh_receive_keys(state, holders)
    if receive is None:
        return None
    new = os.urandom(32)
    sealed, named = seal_to_holders(holders, receive, new, [os.urandom(32) for _ in holders])
    tx = RotateDataKey(nonce=_get(state, L.META_DATA_EPOCH) + 1, public=compute_commune_public(new),
                       holders=tuple(holders), sealed=sealed, receive=named, link=NO_LINK, sigs=())
    return add_signature(tx, key, chain_id)


def add_signature(tx: RotateDataKey, key: Keypair, chain_id: bytes) -> RotateDataKey:
    """``tx`` with ``key``'s co-signature added (in validator order, as the CLI writes them)."""
    sig = ValidatorSig(validator=key.public, sig=key.sign(signing_bytes(chain_id, tx)))
    sigs = {s.validator: s for s in tx.sigs}
    sigs[key.public] = sig
    return dataclasses.replace(tx, sigs=tuple(sigs[k] for k in sorted(sigs)))


def check_cut_proposal(state: KV, chain_id: bytes, height: int, tx: RotateDataKey) -> None:
    """A gathered cut, before this node adds its signature: what the ledger will check of
    it, against the committed state, but the count of signatures. ``InvalidTx`` says why
    not (``bad_signature``, ``unknown_signer`` whatever the state; the rest depend on it)."""
    data = signing_bytes(chain_id, tx)
    signers = set(get_cut_signers(state, height))
    for item in tx.sigs:
        if item.validator not in signers:
            raise InvalidTx("unknown_signer", f"{item.validator.hex()[:16]}… is not a current validator")
        if not verify_signature(item.validator, data, item.sig):
            raise InvalidTx("bad_signature", f"co-signature of {item.validator.hex()[:16]}… does not verify")
    if tx.link != NO_LINK:
        raise InvalidTx("not_a_cut", "only a cut is gathered by the nodes: a linked rotation is co-signed by hand")
    if get_pending_cut(state) is None:
        raise InvalidTx("no_cut_due", "no erasure makes a cut due: the nodes co-sign a cut only when one is")
    epoch = _get(state, L.META_DATA_EPOCH)
    if tx.nonce != epoch + 1:
        raise InvalidTx("stale_nonce", f"epoch {tx.nonce} is not the next one, {epoch + 1}")
    holders = get_next_holders(state)
    if list(tx.holders) != holders or len(tx.sealed) != len(holders):
        raise InvalidTx("bad_holders", "a cut is sealed to exactly the latest validator set and the auditors")
    receive = get_fresh_receive_keys(state, holders)
    if receive is None or tuple(receive.get(h) for h in holders) != tx.receive:
        raise InvalidTx("wrong_receive_key", "a cut seals each copy to the holder's published, fresh receive key")


def open_own_copy(keys: Keyring, tx: RotateDataKey) -> bytes:
    """This holder's copy in ``tx`` opened, with the receive key it names, on a copy of
    the keyring (what it opens is recorded only when the cut commits); ``InvalidTx``
    ``copy_does_not_open`` if it does not open to the announced public key."""
    scratch = Keyring(holder=keys.holder, receive=dict(keys.receive))
    try:
        return open_own_new_copy(scratch, tx)
    except MissingCommuneKey as exc:
        raise InvalidTx("copy_does_not_open", str(exc)) from None


def compute_proposal_id(chain_id: bytes, tx: RotateDataKey) -> bytes:
    """What the co-signers sign: one proposal whatever signatures it carries."""
    return hashlib.sha256(signing_bytes(chain_id, tx)).digest()


@dataclass
class CutGatherer:
    """One node's part in gathering a cut's co-signatures (module doc): the proposals
    of the next epoch it has seen, each with every signature seen, and which one it
    built in which turn."""

    chain_id: bytes
    key: Keypair
    proposals: dict[bytes, RotateDataKey] = dataclasses.field(default_factory=dict)
    built: dict[tuple[int, int], bytes] = dataclasses.field(default_factory=dict)  # (due, turn) -> proposal id

    def forget_stale(self, state: KV) -> None:
        """Drop what no longer applies: proposals of a past epoch, or all when no cut is due."""
        raw = state.get(L.META_DATA_EPOCH)
        epoch = None if raw is None else decode_value(raw)
        if epoch is None or get_pending_cut(state) is None:
            self.proposals.clear()
            self.built.clear()
            return
        self.proposals = {pid: tx for pid, tx in self.proposals.items() if tx.nonce == epoch + 1}

    def step(self, state: KV, keys: Keyring | None, height: int, now_s: int) -> list[RotateDataKey]:
        """After a block, at start, and every while: the cut to gossip, if this node is
        to build one now (its turn, none built in this turn), and every proposal held,
        whose signatures are gossiped again (gossip is best effort)."""
        self.forget_stale(state)
        if keys is None or get_builder(state, height, now_s) != self.key.public:
            return list(self.proposals.values())
        pending = get_pending_cut(state)
        turn = (pending.due_height, 0 if pending.since_s is None else max(0, now_s - pending.since_s) // CUT_TURN_S)
        if turn not in self.built:
            tx = build_cut(state, self.key, self.chain_id)
            if tx is not None:
                pid = compute_proposal_id(self.chain_id, tx)
                self.built[turn] = pid
                self.proposals[pid] = tx
        return list(self.proposals.values())

    def receive(self, state: KV, keys: Keyring | None, height: int, tx: RotateDataKey) -> RotateDataKey | None:
        """A gossiped cut with too few signatures: checked, merged with the signatures
        seen of the same proposal, co-signed by this node if it is a current validator
        and a holder whose copy opens. The merged tx if it holds more than ``tx`` did
        (to gossip, or to take if it reached the quorum), else None. ``InvalidTx`` for
        one this node will not co-sign nor relay."""
        self.forget_stale(state)
        check_cut_proposal(state, self.chain_id, height, tx)
        pid = compute_proposal_id(self.chain_id, tx)
        seen = {s.validator: s for s in self.proposals.get(pid, tx).sigs}
        seen.update({s.validator: s for s in tx.sigs})
        merged = dataclasses.replace(tx, sigs=tuple(seen[k] for k in sorted(seen)))
        me = self.key.public
        if keys is not None and me not in seen and me in get_cut_signers(state, height) and me in tx.holders:
            open_own_copy(keys, tx)
            merged = add_signature(merged, self.key, self.chain_id)
        self.proposals[pid] = merged
        return merged if len(merged.sigs) > len(tx.sigs) else None


def has_quorum(state: KV, height: int, tx: RotateDataKey) -> bool:
    """Whether ``tx`` carries the co-signatures of ⅔ of the validators of ``height``."""
    return len({s.validator for s in tx.sigs}) >= compute_quorum_cosigners(len(get_cut_signers(state, height)))


def needs_gathering(state: KV, height: int, tx: object) -> bool:
    """Whether a gossiped tx is a cut still gathering signatures (module doc)."""
    return isinstance(tx, RotateDataKey) and tx.link == NO_LINK and not has_quorum(state, height, tx)
