"""The state transition function: genesis state, mempool checks, block application.

A block is applied in this order, every step on one Overlay that is thrown away if
any rule raises (STYLE "Applying a block"):

1. header: height is the next one, time rises;
2. settlement of every due interval, oldest first (DESIGN §4 "Settlement"); settled
   intervals older than ``history_retention_s`` leave the state (DESIGN §4 "History");
3. expired offers are dropped; the treasury epoch runs if a boundary has passed;
   due key recoveries complete (DESIGN §12); deregistered households whose retention
   has passed are erased (docs/privacy.md "Erasure");
4. the transactions, in block order: decode, signatures, the signers' key status, rules;
5. proposals whose voting window has ended are tallied (a passed change takes
   effect from the next block); double-sign evidence is recorded;
6. height and time are written, and the state tree is updated along the paths of the
   changed keys; its root is the state hash (tokens/statetree.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from tokens import layout as L
from tokens import rules_assoc, rules_euro, rules_gov, rules_household, rules_membership, rules_money, rules_registrars, rules_validators
from tokens import rules_erasure, rules_ibc, rules_reconcile, rules_seal
from tokens import settlement, upgrades
from tokens.errors import InvalidLedgerBlock, InvalidTx
from tokens.genesis import Genesis, open_households
from tokens.ibc import HeaderVerifier
from tokens.kv import KV, MemoryKV, decode_value, encode_value
from tokens.ledger import Ledger, encode_params
from tokens.sealing import Keyring, MissingCommuneKey, make_kv_salt_of, make_salt_of, require_genesis_secret
from tokens.statetree import compute_tree_build, compute_tree_change
from tokens.txs import (
    Accept, AllocationBallot, Issue, CancelRecovery, Consent, Delegate, Reconcile, Deregister, MarkPaid, MeterReading, Offer, PayDebt,
    PublicService, Propose, RecoverKey, Redeem, RegisterAssociation, RegisterHousehold, RegistrarSetChange,
    RemoveAssociation, RevokeGift, RotateDataKey, RotateKey, ScheduleUpgrade, Sealed, SealedCosigned, CommuneSealed, Service, SetDataKey, SetReceiveKey, Spend,
    StandingGift, Transfer, Tx, UpdateHousehold,
    ValidatorSetChange, Vote, decode_tx,
)
from tokens.txs import (
    PROOF_CARRIED_TX_TYPES, Acknowledge, CreateClient, Misbehaviour, RecvPacket, SendToCommune, Timeout, UpdateClient,
)
from wire import DecodeError, compute_id, verify_message
from wire.units import Height


@dataclass(frozen=True)
class BlockContext:
    height: Height
    time_ms: int
    proposer: bytes
    version: int = 1        # the header's protocol version (tokens/upgrades.py)


@dataclass(frozen=True)
class BlockResult:
    writes: dict[bytes, bytes | None]
    state_hash: bytes
    events: list = field(default_factory=list)
    tx_ids: list[bytes] = field(default_factory=list)
    # State tree nodes this block left unreachable from its root (node-side pruning only;
    # not part of the state).
    stale_nodes: tuple[bytes, ...] = ()


# One handler per transaction type, all (ledger, tx, tx id) -> None, raising InvalidTx.
HANDLERS: dict[type[Tx], Callable[[Ledger, Tx, bytes], None]] = {
    RegisterHousehold: rules_household.process_register_household,
    UpdateHousehold: rules_household.process_update_household,
    MeterReading: rules_household.process_meter_reading,
    Transfer: rules_money.process_transfer,
    StandingGift: rules_money.process_standing_gift,
    RevokeGift: rules_money.process_revoke_gift,
    Service: rules_money.process_service,
    PublicService: rules_money.process_public_service,
    Offer: rules_money.process_offer,
    Accept: rules_money.process_accept,
    Spend: rules_money.process_spend,
    Issue: rules_money.process_issue,
    Delegate: rules_gov.process_delegate,
    AllocationBallot: rules_gov.process_ballot,
    Propose: rules_gov.process_propose,
    Vote: rules_gov.process_vote,
    ValidatorSetChange: rules_validators.process_validator_set_change,
    Deregister: rules_membership.process_deregister,
    RotateKey: rules_membership.process_rotate_key,
    RecoverKey: rules_membership.process_recover_key,
    CancelRecovery: rules_membership.process_cancel_recovery,
    RegistrarSetChange: rules_registrars.process_registrar_set_change,
    ScheduleUpgrade: upgrades.process_schedule_upgrade,
    # Issue 19 items 2 and 4 (docs/euro.md).
    Redeem: rules_euro.process_redeem,
    PayDebt: rules_euro.process_pay_debt,
    MarkPaid: rules_euro.process_mark_paid,
    RegisterAssociation: rules_assoc.process_register_association,
    RemoveAssociation: rules_assoc.process_remove_association,
    # Issue 18 (docs/reconciliation.md).
    Consent: rules_reconcile.process_consent,
    Reconcile: rules_reconcile.process_reconcile,
    # Transfers between communes (docs/communes.md).
    CreateClient: rules_ibc.process_create_client,
    UpdateClient: rules_ibc.process_update_client,
    Misbehaviour: rules_ibc.process_misbehaviour,
    SendToCommune: rules_ibc.process_send_to_commune,
    RecvPacket: rules_ibc.process_recv_packet,
    Acknowledge: rules_ibc.process_acknowledge,
    Timeout: rules_ibc.process_timeout,
    # docs/privacy.md "Sealed payloads".
    SetDataKey: rules_seal.process_set_data_key,
    RotateDataKey: rules_seal.process_rotate_data_key,
    SetReceiveKey: rules_seal.process_set_receive_key,
}


def process_sealed(lg: Ledger, tx: Sealed, tx_id: bytes) -> None:
    """Open the envelope and apply its inner tx by its own rules, under the envelope's id."""
    inner = rules_seal.open_envelope(lg, tx, tx_id)
    if len(inner.SIGNERS) > 1:
        # The envelope's signer is the inner signer, already checked; a second one is not.
        rules_membership.check_signers_active(lg, inner)
    HANDLERS[type(inner)](lg, inner, tx_id)


def process_commune_sealed(lg: Ledger, tx: CommuneSealed, tx_id: bytes) -> None:
    """A registrar tx sealed to the commune key: opened, then applied by its own rules."""
    inner = rules_seal.open_commune_envelope(lg, tx, tx_id)
    HANDLERS[type(inner)](lg, inner, tx_id)


HANDLERS[Sealed] = process_sealed
HANDLERS[SealedCosigned] = process_sealed
HANDLERS[CommuneSealed] = process_commune_sealed


COSIGNED_TX_TYPES = (ValidatorSetChange, RegistrarSetChange, ScheduleUpgrade, RotateDataKey)


def is_self_signed(tx: Tx) -> bool:
    """Whether ``tx``'s signatures are checked by its own keys alone (``verify_message``),
    with no state: not co-signed by the validators, not carried by a proof."""
    return not isinstance(tx, COSIGNED_TX_TYPES) and not isinstance(tx, PROOF_CARRIED_TX_TYPES)


def verify_tx_signatures(lg: Ledger, tx: Tx, encoded: bytes | None = None) -> None:
    # DESIGN §2: every signer's Ed25519 signature over the domain-separated body.
    # ``encoded``: the bytes ``tx`` was strictly decoded from (wire.slice_signing_bytes).
    if isinstance(tx, COSIGNED_TX_TYPES):
        rules_validators.verify_cosignatures(lg, tx)
    elif isinstance(tx, PROOF_CARRIED_TX_TYPES):
        return      # docs/communes.md: their validity is the proof they carry, checked by their rule
    elif not verify_message(tx, lg.chain_id, encoded):
        raise InvalidTx("bad_signature", f"{tx.TAG}: a signature does not verify")


def get_known(verified: Collection[bytes]) -> Collection[bytes]:
    """``verified`` as a fast membership test. A dict {id: decoded Tx} is kept as is:
    its txs are neither decoded again nor re-verified."""
    return verified if isinstance(verified, (set, frozenset, dict)) else frozenset(verified)


def process_tx(lg: Ledger, data: bytes, tx_id: bytes, known: Collection[bytes]) -> Tx:
    """Decode, check signatures (unless already verified) and apply one tx to ``lg``."""
    tx = known.get(tx_id) if isinstance(known, dict) else None
    if not isinstance(tx, Tx):
        try:
            tx = decode_tx(data)
        except DecodeError as exc:
            raise InvalidTx("malformed", exc.reason) from None
        if tx_id not in known:
            verify_tx_signatures(lg, tx, data)
    process_checked_tx(lg, tx, tx_id)
    return tx


def process_checked_tx(lg: Ledger, tx: Tx, tx_id: bytes) -> None:
    """The rules of a tx whose signatures are checked."""
    rules_seal.check_sealing_policy(lg, tx)
    rules_membership.check_signers_active(lg, tx)
    HANDLERS[type(tx)](lg, tx, tx_id)


def process_version(lg: Ledger, version: int) -> None:
    # DESIGN §12: a header carries the protocol version the state schedules at its
    # height, and the block is applied by that version's rules.
    expected = upgrades.get_ledger_version(lg, lg.height)
    if not upgrades.is_supported(expected):
        raise InvalidLedgerBlock("unsupported_version", f"height {lg.height} runs protocol version {expected}; "
                                 f"this software knows versions up to {upgrades.PROTOCOL_VERSION}")
    if version != expected:
        raise InvalidLedgerBlock("bad_version", f"header version {version}, the chain runs {expected} "
                                 f"at height {lg.height}")
    lg.version = version


def process_begin_block(kv: KV, genesis: Genesis, ctx: BlockContext, headers: HeaderVerifier | None = None,
                        keys: Keyring | None = None) -> Ledger:
    """Header checks, then settlement, offer expiry and the treasury epoch."""
    lg = Ledger(kv, genesis, ctx.height, ctx.time_ms, ctx.proposer, headers, keys)
    events = lg.events
    last_height = lg.get_meta(L.META_HEIGHT, None)
    if last_height is None:
        raise InvalidLedgerBlock("no_state", "the state holds no genesis (meta/height missing)")
    if ctx.height != last_height + 1:
        raise InvalidLedgerBlock("bad_height", f"expected height {last_height + 1}, got {ctx.height}")
    # DESIGN §6: a block's time is above its parent's.
    last_time = lg.get_meta(L.META_TIME, 0)
    if ctx.time_ms <= last_time:
        raise InvalidLedgerBlock("time_not_rising", f"block time {ctx.time_ms} ms is not after {last_time} ms")
    process_version(lg, ctx.version)
    settlement.process_settlements(lg, events)
    settlement.process_history(lg, events)
    rules_money.process_offer_expiry(lg)
    settlement.process_epoch(lg, events, rules_gov.get_ballot_allocation)
    rules_membership.process_due_recoveries(lg, events)
    rules_erasure.process_due_erasures(lg, events)
    return lg


def process_end_block(lg: Ledger, tx_ids: list[bytes], equivocators: Sequence[bytes]) -> BlockResult:
    rules_gov.process_tallies(lg, lg.events)
    rules_validators.process_equivocators(lg, equivocators, lg.events)
    lg.ov.put(L.META_HEIGHT, lg.height)
    lg.ov.put(L.META_TIME, lg.now_ms)
    writes = lg.ov.writes()
    previous = decode_value(lg.ov.original(L.META_STATE_HASH))
    # DESIGN §4 "State hash": O(changes × depth), from the committed tree's nodes.
    change = compute_tree_change(lg.ov.base, previous, get_tree_writes(lg, writes),
                                 make_salt_of(lg.ov.get, lg.keys, lg.genesis.seals_payloads))
    writes.update(change.nodes)
    writes[L.META_STATE_HASH] = encode_value(change.root)
    return BlockResult(writes, change.root, lg.events, tx_ids, change.stale)


def get_tree_writes(lg: Ledger, writes: dict[bytes, bytes | None]) -> dict[bytes, bytes | None]:
    """The block's writes, and the unchanged entries whose leaf takes a salt in this block
    (docs/privacy.md "Private state leaves"): their leaves are hashed anew."""
    if not lg.resalted:
        return writes
    out = dict(writes)
    for key in lg.resalted:
        if key not in out:
            out[key] = lg.ov.original(key)
    return out


def apply_block(kv: KV, genesis: Genesis, ctx: BlockContext, txs: Sequence[bytes], *,
                verified: Collection[bytes] = (), equivocators: Sequence[bytes] = (),
                headers: HeaderVerifier | None = None, keys: Keyring | None = None) -> BlockResult:
    """Apply a whole block through an overlay; ``kv`` is never touched. Raises
    ``InvalidLedgerBlock`` (with the tx index and InvalidTx reason) if anything is invalid.

    ``verified`` holds ids (sha256 of the tx bytes) whose signatures were already
    checked; if it is a dict {id: decoded Tx}, those txs are not even decoded again.
    ``headers`` are the header rules the light clients of other communes judge headers by
    (node/ passes consensus.lightsync.HEADER_RULES; without them a block carrying a header
    cannot be applied). ``keys``: the commune data keys, on a chain that seals payloads
    (tokens/sealing.py)."""
    lg = process_begin_block(kv, genesis, ctx, headers, keys)
    if len(txs) > lg.params["block_max_txs"]:
        raise InvalidLedgerBlock("too_many_txs",
                                 f"{len(txs)} txs exceeds block_max_txs {lg.params['block_max_txs']}")
    known = get_known(verified)
    tx_ids = []
    for index, data in enumerate(txs):
        tx_id = compute_id(data) if type(data) is bytes else b""
        try:
            process_tx(lg, data, tx_id, known)
        except InvalidTx as exc:
            raise InvalidLedgerBlock(exc.reason, exc.detail, index) from None
        tx_ids.append(tx_id)
    return process_end_block(lg, tx_ids, equivocators)


def check_tx(kv: KV, genesis: Genesis, tx_bytes: bytes, now_ms: int, verified: bool = False,
             headers: HeaderVerifier | None = None, keys: Keyring | None = None, decoded: Tx | None = None) -> Tx:
    """Mempool admission against committed state at time ``now_ms``. Raises
    ``DecodeError`` for malformed bytes and ``InvalidTx`` for any broken rule; a sealed
    tx this node cannot open is ``no_commune_key``. ``decoded``: ``decode_tx(tx_bytes)``,
    when the caller already has it (node/service/txcheck.py decodes on worker threads)."""
    tx = decoded if decoded is not None else decode_tx(tx_bytes)
    height = decode_value(kv.get(L.META_HEIGHT) or encode_value(0)) + 1
    lg = Ledger(kv, genesis, height, now_ms, headers=headers, keys=keys)
    # Judged by the rules of the version the next block runs.
    lg.version = upgrades.get_protocol_version(kv, height)
    if not verified:
        verify_tx_signatures(lg, tx, tx_bytes)
    try:
        process_checked_tx(lg, tx, compute_id(tx_bytes))
    except MissingCommuneKey as exc:
        raise InvalidTx("no_commune_key", str(exc)) from None
    return tx


def select_txs(kv: KV, genesis: Genesis, ctx: BlockContext, candidates: Sequence[bytes], max_txs: int,
               verified: Collection[bytes] = (), headers: HeaderVerifier | None = None,
               keys: Keyring | None = None) -> tuple[list[bytes], list[tuple[bytes, InvalidTx]]]:
    """For a proposer: the valid candidates in order (applied one after another to one
    overlay, so they are valid together), and the rejected ones with their reason."""
    lg = process_begin_block(kv, genesis, ctx, headers, keys)
    kept, _, rejected = _select(lg, candidates, max_txs, verified)
    return kept, rejected


def select_and_apply(kv: KV, genesis: Genesis, ctx: BlockContext, candidates: Sequence[bytes], max_txs: int,
                     verified: Collection[bytes] = (), headers: HeaderVerifier | None = None,
                     keys: Keyring | None = None,
                     ) -> tuple[list[bytes], list[tuple[bytes, InvalidTx]], BlockResult]:
    """``select_txs``, plus the result of the block of the kept txs (with no evidence):
    what ``apply_block`` would return for it, without applying it a second time."""
    lg = process_begin_block(kv, genesis, ctx, headers, keys)
    kept, kept_ids, rejected = _select(lg, candidates, max_txs, verified)
    return kept, rejected, process_end_block(lg, kept_ids, ())


def _select(lg: Ledger, candidates: Sequence[bytes], max_txs: int,
            verified: Collection[bytes]) -> tuple[list[bytes], list[bytes], list[tuple[bytes, InvalidTx]]]:
    """Apply the candidates one after another to ``lg``: (kept, their ids, rejected)."""
    max_txs = min(max_txs, lg.params["block_max_txs"])
    known = get_known(verified)
    kept: list[bytes] = []
    kept_ids: list[bytes] = []
    rejected: list[tuple[bytes, InvalidTx]] = []
    for data in candidates:
        if len(kept) >= max_txs:
            break
        tx_id = compute_id(data) if type(data) is bytes else b""
        dirty = lg.ov.dirty_count()
        try:
            process_tx(lg, data, tx_id, known)
        except InvalidTx as exc:
            # Rules validate before they mutate; a refused tx must leave no write.
            if lg.ov.dirty_count() != dirty:
                raise RuntimeError(f"refused tx left writes behind ({exc.reason})") from exc
            rejected.append((data, exc))
            continue
        kept.append(data)
        kept_ids.append(tx_id)
    return kept, kept_ids, rejected


def genesis_writes(genesis: Genesis, keys: Keyring | None = None) -> dict[bytes, bytes]:
    """The initial state: parameters, registrars, validators, households, treasury,
    category funds and meta, the state tree's nodes, and its root under ``meta/state_hash``.
    A genesis whose households are sealed (docs/privacy.md "Genesis households") needs the
    commune key of epoch 0 (``keys``) to open them, and so does any household of a chain
    that seals (its meter and PRM index keys, tokens/indexkeys.py); ``MissingCommuneKey``
    without it."""
    households = genesis.households
    if genesis.needs_commune_key:
        secret = require_genesis_secret(keys)
        if genesis.seals_households:
            households = open_households(genesis, secret)
    lg = Ledger(MemoryKV(), genesis, 0, genesis.genesis_time * 1000, keys=keys)
    put = lg.ov.put
    put(L.META_CHAIN, genesis.chain_id)
    put(L.META_HEIGHT, 0)
    put(L.META_TIME, genesis.genesis_time * 1000)
    lg.set_params(dict(genesis.params))
    put(L.META_SETTLED, 0)
    epoch_s = genesis.params["allocation_epoch_s"]
    put(L.META_NEXT_EPOCH, (genesis.genesis_time // epoch_s + 1) * epoch_s)
    put(L.META_TOTALS, [0, 0])
    put(L.META_ALLOCATION, [list(pair) for pair in genesis.params["allocation_categories"]])
    put(L.META_VSC_NONCE, 0)
    put(L.TREASURY, [0, 0])
    for name, _ in genesis.params["allocation_categories"]:
        put(L.key_fund(name), [0, 0, 0])
    for key in genesis.registrars:
        put(L.key_registrar(key), [0, 0])
        put(L.key_account(key), [0, 0, 0])
    rules_validators.process_genesis_validators(lg, genesis)
    rules_seal.process_genesis_sealing(lg, genesis)
    for h in households:
        rules_household.process_new_household(lg, h.key, h.meter, h.prm, h.label, h.kva, h.peak_w)
        lg.ov.mark(L.key_account(h.key))
    writes = {k: v for k, v in lg.ov.writes().items() if v is not None}
    root, nodes = compute_tree_build(writes.items())
    writes.update(nodes)
    writes[L.META_STATE_HASH] = encode_value(root)
    return writes


def get_state_hash(kv: KV) -> bytes:
    raw = kv.get(L.META_STATE_HASH)
    if raw is None:
        raise KeyError("the state holds no state hash")
    return decode_value(raw)


def get_rescanned_state_hash(kv: KV, keys: Keyring | None = None) -> bytes:
    """The state tree rebuilt from every state entry (audits and tests; never per block).
    A chain that seals payloads needs the commune data keys (``keys``) for its salts."""
    return compute_tree_build(kv.iter_prefix(b""), make_kv_salt_of(kv, keys))[0]


__all__ = [
    "BlockContext", "BlockResult", "apply_block", "check_tx", "select_txs", "genesis_writes",
    "get_state_hash", "get_rescanned_state_hash", "encode_params",
]
