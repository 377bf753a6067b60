"""The signed transactions of DESIGN §4 and §5, as wire messages.

Conventions:
- ``signer`` is the 32-byte Ed25519 key of the account that signs and pays;
- ``nonce`` protects against replay: it must be strictly greater than the signer's
  last committed nonce (gaps are allowed, so a household CLI can use a clock value);
- ``MeterReading`` has no nonce: its ``seq`` must rise, which does the same job;
- amounts are integers: ``kwh`` in Wh, ``hour`` in minutes, a commune-defined class in
  its genesis unit; times are unix seconds;
- registrar transactions are signed by a registrar key in force in the state (genesis,
  then RegistrarSetChange);
- a tx with several signers lists them in ``SIGNERS``; ``NOT_SIGNED`` fields (the
  validators' co-signatures) are left out of the signed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from wire import (
    BOOL, HASH, KEY, OPT_KEY, SIG, U64, Bytes, DecodeError, List, Message, Nested, Str, decode, field_of,
    register,
)
from wire.limits import MAX_HEADER_BYTES, MAX_TX_BYTES
from wire.seal import LINK_LEN, SEALED_COSIG_LEN, SEALED_DATA_KEY_LEN, SEALED_SECRET_LEN

CLASS = Str(8)          # token class name: "kwh", "hour" or one the genesis defines
MEMO = Str(140)         # DESIGN §4: memo <= 140 bytes
TOPIC = Str(32)         # governance topic: "allocation", "params" or "*"
CATEGORY = Str(32)      # allocation category name

_SIGNER = (("signer", "sig"),)
# StandingGift.beneficiary meaning "the households flagged solidarity at mint time"
# (UpdateHousehold.solidarity). No household may be registered under this key.
SOLIDARITY = bytes(32)


@dataclass(frozen=True)
class Tx(Message):
    """Base of every transaction."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = _SIGNER


@register("tx/register")
@dataclass(frozen=True)
class RegisterHousehold(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    meter: str = field_of(Str(12))      # ADCO/ADSC, 12 digits
    prm: str = field_of(Str(14))        # delivery point, 14 digits
    label: str = field_of(Str(64))
    kva: int = field_of(U64)            # subscribed power, kVA
    peak_w: int = field_of(U64)         # installed solar peak power, W (0: none)
    sig: bytes = field_of(SIG)


@register("tx/update")
@dataclass(frozen=True)
class UpdateHousehold(Tx):
    """Registrar update: a meter change (new baseline) or the solidarity flag."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    meter: str = field_of(Str(12))
    kva: int = field_of(U64)
    peak_w: int = field_of(U64)
    solidarity: bool = field_of(BOOL)
    sig: bytes = field_of(SIG)


@register("tx/reading")
@dataclass(frozen=True)
class MeterReading(Tx):
    signer: bytes = field_of(KEY)
    meter: str = field_of(Str(12))
    seq: int = field_of(U64)
    t: int = field_of(U64)
    import_wh: int = field_of(U64)      # cumulative index
    export_wh: int = field_of(U64)      # cumulative index
    sig: bytes = field_of(SIG)


@register("tx/transfer")
@dataclass(frozen=True)
class Transfer(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    to: bytes = field_of(KEY)
    cls: str = field_of(CLASS)
    amount: int = field_of(U64)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


@register("tx/gift")
@dataclass(frozen=True)
class StandingGift(Tx):
    """Gives ``bp`` of each future mint of the signer to ``beneficiary`` until ``until``;
    ``beneficiary == SOLIDARITY`` splits it among the households flagged solidarity."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    beneficiary: bytes = field_of(KEY)
    bp: int = field_of(U64)
    until: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/revoke-gift")
@dataclass(frozen=True)
class RevokeGift(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    gift: bytes = field_of(HASH)        # id of the StandingGift tx
    sig: bytes = field_of(SIG)


@register("tx/service")
@dataclass(frozen=True)
class Service(Tx):
    """Time bank: ``signer`` (the beneficiary) pays ``provider`` ``minutes``; both sign."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("signer", "sig"), ("provider", "provider_sig"))
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    provider: bytes = field_of(KEY)
    minutes: int = field_of(U64)
    memo: str = field_of(MEMO)
    provider_sig: bytes = field_of(SIG)
    sig: bytes = field_of(SIG)


@register("tx/public-service")
@dataclass(frozen=True)
class PublicService(Tx):
    """Registrar: credit ``on_call_s`` seconds of on-call duty at public_service_rate."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    beneficiary: bytes = field_of(KEY)
    on_call_s: int = field_of(U64)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


@register("tx/offer")
@dataclass(frozen=True)
class Offer(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    give_cls: str = field_of(CLASS)
    give_amount: int = field_of(U64)
    want_cls: str = field_of(CLASS)
    want_amount: int = field_of(U64)
    counterparty: bytes | None = field_of(OPT_KEY)   # None: anyone may accept
    expires: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/accept")
@dataclass(frozen=True)
class Accept(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    offer: bytes = field_of(HASH)       # id of the Offer tx
    sig: bytes = field_of(SIG)


@register("tx/spend")
@dataclass(frozen=True)
class Spend(Tx):
    """Registrar: pay out of a category fund, publicly, with a memo."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    category: str = field_of(CATEGORY)
    to: bytes = field_of(KEY)
    amount: int = field_of(U64)         # kwh, in Wh
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


@register("tx/delegate")
@dataclass(frozen=True)
class Delegate(Tx):
    """Delegate ``topic`` to ``to``; ``to=None`` is an explicit "none" (blocks ``*``)."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    topic: str = field_of(TOPIC)
    to: bytes | None = field_of(OPT_KEY)
    sig: bytes = field_of(SIG)


@register("tx/ballot-entry")
@dataclass(frozen=True)
class BallotEntry(Message):
    category: str = field_of(CATEGORY)
    bp: int = field_of(U64)


@register("tx/ballot", version=2)
@dataclass(frozen=True)
class AllocationBallot(Tx):
    """Basis points per allocation category, keyed by name (sorted, each named once,
    each > 0; an omitted category gets 0), summing to 10 000."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    entries: tuple[BallotEntry, ...] = field_of(List(Nested(BallotEntry), 32))
    sig: bytes = field_of(SIG)


@register("tx/propose")
@dataclass(frozen=True)
class Propose(Tx):
    """A parameter change: ``value`` is canonical JSON text; voting closes at ``voting_end``."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    param: str = field_of(Str(64))
    value: str = field_of(Str(1024))
    voting_end: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/vote")
@dataclass(frozen=True)
class Vote(Tx):
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    proposal: bytes = field_of(HASH)    # id of the Propose tx
    choice: str = field_of(Str(8))      # "yes", "no" or "abstain"
    sig: bytes = field_of(SIG)


@register("tx/validator-sig")
@dataclass(frozen=True)
class ValidatorSig(Message):
    validator: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


@register("tx/validator-set")
@dataclass(frozen=True)
class ValidatorSetChange(Tx):
    """Signed by >= 2/3 of the current validators; takes effect at height h+2."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    NOT_SIGNED: ClassVar[tuple[str, ...]] = ("sigs",)
    nonce: int = field_of(U64)
    add: tuple[bytes, ...] = field_of(List(KEY, 64))
    add_addrs: tuple[str, ...] = field_of(List(Str(256), 64))
    remove: tuple[bytes, ...] = field_of(List(KEY, 64))
    sigs: tuple[ValidatorSig, ...] = field_of(List(Nested(ValidatorSig), 256))


@register("tx/deregister")
@dataclass(frozen=True)
class Deregister(Tx):
    """Registrar: the household ``key`` moves out; its account stays with the key."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


@register("tx/rotate-key")
@dataclass(frozen=True)
class RotateKey(Tx):
    """The household moves to ``new_key``: signed by the old key and by the new one."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = (("signer", "sig"), ("new_key", "new_sig"))
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    new_key: bytes = field_of(KEY)
    new_sig: bytes = field_of(SIG)
    sig: bytes = field_of(SIG)


@register("tx/recover-key")
@dataclass(frozen=True)
class RecoverKey(Tx):
    """Registrar: move household ``key`` to ``new_key`` after recovery_delay_s, unless cancelled."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    new_key: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


@register("tx/cancel-recovery")
@dataclass(frozen=True)
class CancelRecovery(Tx):
    """Signed by the household's current key: ends a pending recovery of that key."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/registrar-set")
@dataclass(frozen=True)
class RegistrarSetChange(Tx):
    """Signed by >= 2/3 of the current validators; takes effect at the next block."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    NOT_SIGNED: ClassVar[tuple[str, ...]] = ("sigs",)
    nonce: int = field_of(U64)
    add: tuple[bytes, ...] = field_of(List(KEY, 64))
    remove: tuple[bytes, ...] = field_of(List(KEY, 64))
    sigs: tuple[ValidatorSig, ...] = field_of(List(Nested(ValidatorSig), 256))


@register("tx/schedule-upgrade")
@dataclass(frozen=True)
class ScheduleUpgrade(Tx):
    """Signed by >= 2/3 of the current validators: protocol ``version`` from ``height`` on."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    NOT_SIGNED: ClassVar[tuple[str, ...]] = ("sigs",)
    nonce: int = field_of(U64)
    version: int = field_of(U64)
    height: int = field_of(U64)
    sigs: tuple[ValidatorSig, ...] = field_of(List(Nested(ValidatorSig), 256))


TX_TYPES: tuple[type[Tx], ...] = (
    RegisterHousehold, UpdateHousehold, MeterReading, Transfer, StandingGift, RevokeGift,
    Service, PublicService, Offer, Accept, Spend, Delegate, AllocationBallot, Propose, Vote,
    ValidatorSetChange, Deregister, RotateKey, RecoverKey, CancelRecovery, RegistrarSetChange, ScheduleUpgrade,
)


def decode_tx(data: bytes) -> Tx:
    """Strictly decode one signed transaction (<= 4 KiB); raises ``DecodeError``."""
    return decode(data, _TX_TYPE_SET, MAX_TX_BYTES)


__all__ = [t.__name__ for t in TX_TYPES] + ["BallotEntry", "SOLIDARITY", "Tx", "TX_TYPES", "ValidatorSig", "decode_tx",
                                            "DecodeError"]


# --- Euros and associations (issue 19, items 2 and 4; docs/euro.md) ---------------------------------

SEPA_REF = Str(35)      # a SEPA end-to-end id, or a cheque / receipt number: at most 35 characters
NAME = Str(64)


@register("tx/redeem")
@dataclass(frozen=True)
class Redeem(Tx):
    """The signer sells ``amount`` of ``cls`` it holds to the treasury at the governed euro
    price of this block; a payout owed (its id is this tx's id) is recorded."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    cls: str = field_of(CLASS)
    amount: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/pay-debt")
@dataclass(frozen=True)
class PayDebt(Tx):
    """Registrar: ``household`` paid ``cents`` euro cents (reference ``ref``), which clear
    part or all of its negative ``cls`` balance at the governed price of this block."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    household: bytes = field_of(KEY)
    cls: str = field_of(CLASS)
    cents: int = field_of(U64)
    ref: str = field_of(SEPA_REF)
    sig: bytes = field_of(SIG)


@register("tx/mark-paid")
@dataclass(frozen=True)
class MarkPaid(Tx):
    """Registrar: the payout ``payout`` (a Redeem's id) was paid by the transfer ``ref``."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    payout: bytes = field_of(HASH)
    ref: str = field_of(SEPA_REF)
    sig: bytes = field_of(SIG)


@register("tx/association")
@dataclass(frozen=True)
class RegisterAssociation(Tx):
    """Registrar: ``key`` is the account of the association ``name``; standing gifts and
    transfers may go to it."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    name: str = field_of(NAME)
    sig: bytes = field_of(SIG)


@register("tx/remove-association")
@dataclass(frozen=True)
class RemoveAssociation(Tx):
    """Registrar: the association ``key`` is struck off; its account stays with its key."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    key: bytes = field_of(KEY)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


EURO_TX_TYPES: tuple[type[Tx], ...] = (Redeem, PayDebt, MarkPaid, RegisterAssociation, RemoveAssociation)
TX_TYPES = TX_TYPES + EURO_TX_TYPES
__all__ += [t.__name__ for t in EURO_TX_TYPES] + ["EURO_TX_TYPES"]


# Issue 18 (docs/reconciliation.md): consent and official load curves.
PRM_FIELD = Str(14)
MAX_CURVE_INTERVALS = 50     # a local day of half hours: 46, 48 or 50 (clock changes)


@register("tx/consent")
@dataclass(frozen=True)
class Consent(Tx):
    """Registrar: the household at delivery point ``prm`` consents (``granted``) or stops
    consenting to its official load curves being read and reconciled."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    prm: str = field_of(PRM_FIELD)
    granted: bool = field_of(BOOL)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


@register("tx/reconcile")
@dataclass(frozen=True)
class Reconcile(Tx):
    """Registrar: the grid operator's official energy of delivery point ``prm`` for the
    intervals from ``start`` on, one per settlement interval (Wh exported, Wh imported)."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    prm: str = field_of(PRM_FIELD)
    start: int = field_of(U64)
    export_wh: tuple[int, ...] = field_of(List(U64, MAX_CURVE_INTERVALS))
    import_wh: tuple[int, ...] = field_of(List(U64, MAX_CURVE_INTERVALS))
    sig: bytes = field_of(SIG)


RECONCILE_TX_TYPES: tuple[type[Tx], ...] = (Consent, Reconcile)
TX_TYPES = TX_TYPES + RECONCILE_TX_TYPES
__all__ += [t.__name__ for t in RECONCILE_TX_TYPES] + ["RECONCILE_TX_TYPES", "MAX_CURVE_INTERVALS"]


# Transfers between communes (docs/communes.md): light clients of other communes' chains,
# packets carried by an untrusted relayer with proofs against their state roots.
# A header and its commit are carried as their bytes: the ledger reads them through the
# header rules node/ gives it (tokens/ibc.py HeaderVerifier), not consensus's classes.
DENOM = Str(40)             # a class ("kwh") or a voucher "ibc/<16 hex of its origin>/<class>"
IBC_REASON = Str(64)
MAX_IBC_PROOF_BYTES = 3 * 1024      # a state-tree proof of ~90 siblings; a tx stays <= 4 KiB
MAX_CLIENT_VALIDATORS = 64
HEADER = Bytes(max=MAX_HEADER_BYTES)
COMMIT = Bytes(max=MAX_TX_BYTES)    # the tx size limit bounds it (~100 bytes a signature)


@register("ibc/packet")
@dataclass(frozen=True)
class Packet(Message):
    """``amount`` of ``denom`` sent by ``sender`` on chain ``source`` to ``receiver`` on chain
    ``dest``; refunded unless received before ``dest``'s block time reaches ``timeout_s``."""

    source: bytes = field_of(HASH)
    dest: bytes = field_of(HASH)
    seq: int = field_of(U64)
    sender: bytes = field_of(KEY)
    receiver: bytes = field_of(KEY)
    denom: str = field_of(DENOM)
    amount: int = field_of(U64)
    timeout_s: int = field_of(U64)


@register("tx/create-client")
@dataclass(frozen=True)
class CreateClient(Tx):
    """Registrar: this commune trusts chain ``chain_id`` (named ``name``), whose validators
    from height ``from_height`` on are ``validators`` (its genesis: height 1)."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    chain_id: bytes = field_of(HASH)
    name: str = field_of(Str(64))
    validators: tuple[bytes, ...] = field_of(List(KEY, MAX_CLIENT_VALIDATORS))
    from_height: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/update-client")
@dataclass(frozen=True)
class UpdateClient(Tx):
    """Anyone: a header of a linked chain and its commit (encoded); ``next_validators`` are
    the keys of the set the header commits to when it changes the set (empty otherwise)."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    header: bytes = field_of(HEADER)
    commit: bytes = field_of(COMMIT)
    next_validators: tuple[bytes, ...] = field_of(List(KEY, MAX_CLIENT_VALIDATORS))


@register("tx/misbehaviour")
@dataclass(frozen=True)
class Misbehaviour(Tx):
    """Anyone: two headers of one chain at one height, each with a commit of its set (encoded)."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    header_a: bytes = field_of(HEADER)
    commit_a: bytes = field_of(COMMIT)
    header_b: bytes = field_of(HEADER)
    commit_b: bytes = field_of(COMMIT)


@register("tx/send-to-commune")
@dataclass(frozen=True)
class SendToCommune(Tx):
    """Escrow (or, for a voucher going home, burn) ``amount`` of ``denom`` and send it to
    ``receiver`` on chain ``dest``, refunded if not received before ``timeout_s`` there."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    dest: bytes = field_of(HASH)
    receiver: bytes = field_of(KEY)
    denom: str = field_of(DENOM)
    amount: int = field_of(U64)
    timeout_s: int = field_of(U64)
    sig: bytes = field_of(SIG)


@register("tx/recv-packet")
@dataclass(frozen=True)
class RecvPacket(Tx):
    """Anyone: ``packet``, proven committed on its source by ``proof`` against the source's
    state root in its header of height ``proof_height``."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    packet: Packet = field_of(Nested(Packet))
    proof_height: int = field_of(U64)
    proof: bytes = field_of(Bytes(max=MAX_IBC_PROOF_BYTES))


@register("tx/acknowledge")
@dataclass(frozen=True)
class Acknowledge(Tx):
    """Anyone: the destination's acknowledgement (``ok``, ``reason``) of ``packet``, proven."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    packet: Packet = field_of(Nested(Packet))
    ok: bool = field_of(BOOL)
    reason: str = field_of(IBC_REASON)
    proof_height: int = field_of(U64)
    proof: bytes = field_of(Bytes(max=MAX_IBC_PROOF_BYTES))


@register("tx/timeout")
@dataclass(frozen=True)
class Timeout(Tx):
    """Anyone: ``packet`` was not received on its destination by the state of a height
    whose header time is at or past its timeout (proof of absence of its receipt)."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    packet: Packet = field_of(Nested(Packet))
    proof_height: int = field_of(U64)
    proof: bytes = field_of(Bytes(max=MAX_IBC_PROOF_BYTES))


# Their validity is the proof they carry: no signer, no nonce (a relayer holds no key).
PROOF_CARRIED_TX_TYPES: tuple[type[Tx], ...] = (UpdateClient, Misbehaviour, RecvPacket, Acknowledge, Timeout)
IBC_TX_TYPES: tuple[type[Tx], ...] = (CreateClient, SendToCommune) + PROOF_CARRIED_TX_TYPES
TX_TYPES = TX_TYPES + IBC_TX_TYPES
__all__ += [t.__name__ for t in IBC_TX_TYPES] + ["IBC_TX_TYPES", "PROOF_CARRIED_TX_TYPES", "Packet"]


# docs/privacy.md "Sealed payloads": household payloads encrypted under a per-household
# data key that the household and the holders of the commune data key can open.
SEALED_BOX = Bytes(max=MAX_TX_BYTES - 256)   # box nonce ‖ secretbox(padded inner tx)


@register("tx/set-data-key")
@dataclass(frozen=True)
class SetDataKey(Tx):
    """The household publishes its data key of ``epoch`` and its leaf salt, sealed to the
    epoch's commune data key (only its holders open it)."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    epoch: int = field_of(U64)
    sealed: bytes = field_of(Bytes(size=SEALED_DATA_KEY_LEN))
    sig: bytes = field_of(SIG)


@register("tx/sealed")
@dataclass(frozen=True)
class Sealed(Tx):
    """A household tx (``box``) sealed under the signer's data key of ``epoch``. ``nonce``
    is the inner tx's nonce (a reading's seq); ``mac`` is the payload's MAC under the data
    key. The signature covers both, so the inner tx's own signer signature is not checked."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    epoch: int = field_of(U64)
    mac: bytes = field_of(HASH)
    box: bytes = field_of(SEALED_BOX)
    sig: bytes = field_of(SIG)


MAX_HOLDERS = 64 + 16        # a validator set change lists up to 64 keys; tokens/rules_auditors.MAX_AUDITORS


@register("tx/rotate-data-key")
@dataclass(frozen=True)
class RotateDataKey(Tx):
    """Signed by >= 2/3 of the current validators: the commune data key of epoch ``nonce``
    (the current epoch + 1), its secret sealed to each validator of the latest set and
    each auditor (``holders``, in order, one ``sealed`` each), and ``link``, the previous
    epoch's secret boxed under the new one. ``receive``: for each holder, the X25519
    receive key its copy is sealed to (its ``SetReceiveKey``), or None for its identity
    key (a holder that published none; docs/privacy.md "Receive keys")."""

    SIGNERS: ClassVar[tuple[tuple[str, str], ...]] = ()
    NOT_SIGNED: ClassVar[tuple[str, ...]] = ("sigs",)
    nonce: int = field_of(U64)
    public: bytes = field_of(KEY)
    holders: tuple[bytes, ...] = field_of(List(KEY, MAX_HOLDERS))
    sealed: tuple[bytes, ...] = field_of(List(Bytes(size=SEALED_SECRET_LEN), MAX_HOLDERS))
    receive: tuple[bytes | None, ...] = field_of(List(OPT_KEY, MAX_HOLDERS))
    link: bytes = field_of(Bytes(size=LINK_LEN))
    sigs: tuple[ValidatorSig, ...] = field_of(List(Nested(ValidatorSig), 256))


@register("tx/sealed-cosigned")
@dataclass(frozen=True)
class SealedCosigned(Tx):
    """A household tx with a second signer (a ``Service``'s provider) co-signed on another
    machine: ``signer`` seals it as a ``Sealed`` (its second signature left empty in the
    box) and signs; the co-signer then signs the inner tx it read in clear and adds that
    signature sealed to the epoch's commune key (``cosig``, wire.seal.seal_to_commune), so
    no onlooker can test which household's key it verifies under."""

    NOT_SIGNED: ClassVar[tuple[str, ...]] = ("cosig",)
    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    epoch: int = field_of(U64)
    mac: bytes = field_of(HASH)
    box: bytes = field_of(SEALED_BOX)
    cosig: bytes = field_of(Bytes(size=SEALED_COSIG_LEN))
    sig: bytes = field_of(SIG)


@register("tx/commune-sealed")
@dataclass(frozen=True)
class CommuneSealed(Tx):
    """A registrar tx that names a household's personal data (``COMMUNE_SEALABLE_TYPES``:
    its meter, PRM, label, kVA, official curve, or a payment to it) sealed to the commune
    data key of ``epoch`` (wire.seal.seal_to_commune): the
    registrar holds no household data key, and only the key's holders (validators,
    auditors) open it. ``nonce`` is the inner tx's; the signature covers the box."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    epoch: int = field_of(U64)
    box: bytes = field_of(SEALED_BOX)
    sig: bytes = field_of(SIG)


@register("tx/set-receive-key")
@dataclass(frozen=True)
class SetReceiveKey(Tx):
    """A holder of the commune data key (a validator of the latest set, an auditor)
    publishes ``public``, an X25519 key it keeps apart from its identity key: the next
    epochs are sealed to it, and the holder deletes it at the next cut, so its identity
    key no longer opens the epochs before (docs/privacy.md "Receive keys"). ``nonce``
    rises with each one the holder publishes."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    public: bytes = field_of(KEY)
    sig: bytes = field_of(SIG)


SEAL_TX_TYPES: tuple[type[Tx], ...] = (SetDataKey, Sealed, RotateDataKey, SealedCosigned, CommuneSealed,
                                       SetReceiveKey)
TX_TYPES = TX_TYPES + SEAL_TX_TYPES
# What a Sealed box may hold: the household txs that reveal consumption, production or
# trade (docs/privacy.md "What is sealed").
SEALABLE_TYPES: tuple[type[Tx], ...] = (MeterReading, Transfer, StandingGift, RevokeGift, Service, Offer, Accept)
# What a CommuneSealed box may hold, and what a sealing chain takes only so: the
# registrar txs that name a household's personal data (docs/privacy.md "What is sealed,
# and what is not"). ``Issue`` is defined below and added there.
COMMUNE_SEALABLE_TYPES: tuple[type[Tx], ...] = (
    RegisterHousehold, UpdateHousehold, Consent, Reconcile, PublicService, PayDebt, MarkPaid, Deregister,
)


# ---- commune-defined classes (docs/classes.md) ----


@register("tx/issue")
@dataclass(frozen=True)
class Issue(Tx):
    """Registrar: issues ``amount`` of a commune-defined class the genesis marks
    ``issued_by: registrar`` (recycled material brought in, points earned) to ``to``."""

    signer: bytes = field_of(KEY)
    nonce: int = field_of(U64)
    cls: str = field_of(CLASS)
    to: bytes = field_of(KEY)
    amount: int = field_of(U64)
    memo: str = field_of(MEMO)
    sig: bytes = field_of(SIG)


CLASS_TX_TYPES: tuple[type[Tx], ...] = (Issue,)
TX_TYPES = TX_TYPES + CLASS_TX_TYPES
# An Issue names the household credited and what it brought in (docs/classes.md).
COMMUNE_SEALABLE_TYPES = COMMUNE_SEALABLE_TYPES + (Issue,)
__all__ += [t.__name__ for t in CLASS_TX_TYPES] + ["CLASS_TX_TYPES"]


SEALABLE_SET: frozenset[type[Tx]] = frozenset(SEALABLE_TYPES)
# Every tx type, as a set: a decode checks membership once per tx.
_TX_TYPE_SET: frozenset[type[Tx]] = frozenset(TX_TYPES)


def decode_sealable(data: bytes) -> Tx:
    """Strictly decode the inner tx of a Sealed box; raises ``DecodeError``."""
    return decode(data, SEALABLE_SET, MAX_TX_BYTES)


COMMUNE_SEALABLE_SET: frozenset[type[Tx]] = frozenset(COMMUNE_SEALABLE_TYPES)


def decode_commune_sealable(data: bytes) -> Tx:
    """Strictly decode the inner tx of a CommuneSealed box; raises ``DecodeError``."""
    return decode(data, COMMUNE_SEALABLE_SET, MAX_TX_BYTES)


__all__ += [t.__name__ for t in SEAL_TX_TYPES] + ["SEAL_TX_TYPES", "SEALABLE_TYPES", "SEALABLE_SET", "decode_sealable",
                                                  "COMMUNE_SEALABLE_TYPES", "COMMUNE_SEALABLE_SET",
                                                  "decode_commune_sealable"]

