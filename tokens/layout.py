"""Key layout of the ledger state. Every value is one msgpack object.

==============================  ==========================================================
key                             value
==============================  ==========================================================
``meta/height``                 last applied height (0 after genesis)
``meta/time_ms``                time of the last applied block, ms
``meta/chain_id``               the chain id (sha256 of genesis.json)
``meta/state_hash``             state root after the last block (not a leaf of its tree)
``meta/params``                 the parameters, as canonical JSON text
``meta/settled_until``          unix s: every interval starting before it has settled
``meta/next_epoch``             unix s of the next treasury epoch
``meta/totals``                 [kwh minted, kwh allocated] since genesis, Wh
``meta/allocation``             standing allocation, [[category, bp], ...]
``meta/vsc_nonce``              last ValidatorSetChange nonce
``meta/rsc_nonce``              last RegistrarSetChange nonce
``meta/upg_nonce``              last ScheduleUpgrade nonce
``upg/`` version                activation height of that protocol version (tokens/upgrades.py)
``treasury``                    [kwh, hour]
``fund/`` name                  [kwh, received, spent]: one category fund
``reg/`` key                    [since height, until height or 0]: a registrar key
``acct/`` key                   [kwh, hour, nonce]: a household's or registrar's account
``hh/`` key                     household record, fields ``HH_*`` below
``meter/`` serial               key of the household that has this meter (on a chain that
                                seals payloads, keyed by a hash of the serial under the
                                commune key: tokens/indexkeys.py)
``prm/`` PRM                    key of the household at this delivery point (the same)
``kst/`` key                    key status: [``KS_RECOVERING``, new key, start, completes_at],
                                [``KS_ROTATED``, new key, height] or [``KS_DEREGISTERED``, height,
                                erase_at] (erase_at absent on a record older than erasure)
``rdue/`` completes_at ‖ key    1: a pending key recovery, in completion order
``gift/`` giver ‖ gift id       [beneficiary (or txs.SOLIDARITY), bp, until]
``offer/`` offer id             [maker, give_cls, give, want_cls, want, counterparty, expires]
``oexp/`` expires ‖ offer id    1: expiry index, offers are dropped once expired
``int/`` start                  [end, ΣE, ΣI, M, settled, levy, minted, allocated(, public)]: on a chain
                                that seals payloads, settlement appends ``public``: whether at least
                                ``min_aggregate`` households exported and imported in it. Until it is
                                true the entry is a salted leaf the validators alone read
                                (docs/privacy.md "Public aggregates")
``pool``                        [levy Wh, ΣE Wh, M Wh, [producer keys], [consumer keys](, hour)]: on a
                                chain that seals payloads, the sums settlement did not show (a ΣE with
                                its levy, an M) and the households they come from, held (salted,
                                validators only) until the treasury epoch finds enough households
                                in it (settlement.process_release_pool); an erased household's
                                balance joins the levy (and ``hour``, appended when not 0), counted
                                among the producers by its key's hash (rules_erasure)
``gpool``                       [[beneficiary, Wh, [giver keys]], ...] by beneficiary: on a chain that
                                seals payloads, the shares of standing gifts to category funds and
                                associations (public accounts), held (salted, validators only) until
                                the treasury epoch finds ``min_aggregate`` givers to a beneficiary
                                (settlement.process_release_gift_pool)
``icor/`` start                 [interval record, [household keys], [reconcile totals]]: on a chain
                                that seals payloads, the record of ``int/`` start as reconciliations
                                made it (the ``int/`` record keeps the sums last shown), the households
                                they corrected and what they add to ``meta/reconcile``; the ``int/``
                                record and ``meta/reconcile`` take them once ``min_aggregate`` households
                                made them (rules_reconcile; salted, validators only)
``ie/`` start ‖ key             [E_j, I_i, minted to j after levy, a_i]: one household
                                (``int/`` and ``ie/`` of a settled interval leave the state
                                ``history_retention_s`` after its end: settlement.process_history)
``open/`` end ‖ start           1: an interval with data, waiting to settle
``ctb/`` day ‖ key              [levy paid Wh, public-service minutes] that UTC day (t // 86400)
``dlg/`` key ‖ topic            delegate key, or b"" for an explicit "none"
``ballot/`` key                 [[category, bp], ...] sorted by name: standing allocation ballot
``prop/`` proposal id           [proposer, param, value, voting_end, status, tally...]
``pend/`` voting_end ‖ id       1: proposal waiting for its tally
``vote/`` proposal id ‖ key     "yes" | "no" | "abstain"
``val/`` key                    [addr, name]: every validator ever in a set
``vset/`` height                [keys...]: the validator set from that height on
``equiv/`` key                  [first height, last height, count]: double-sign evidence
``smt/`` node hash              a state tree node (tokens/statetree.py), not a leaf
``meta/euro``                   [Wh redeemed, cents owed, cents paid out, Wh cleared, cents
                                received] since genesis (docs/euro.md)
``payout/`` redeem id           [account, class, amount, price, cents, height, time, label,
                                status, paid height, paid time, ref]: a Redeem's payout
``debtpay/`` pay-debt id        [household, class, amount cleared, price, cents, height, time,
                                label, ref, registrar]: a PayDebt
``elog/`` time ‖ tx id          [kind, payout or payment id]: euro events in time order
``assoc/`` key                  [name, since height, until height or 0]: an association
``cons/`` PRM                   [household since height, since unix s]: the household at this
                                PRM consents to reconciliation (docs/reconciliation.md)
``rcs/`` PRM                    [days, streak, Σ provisional E, Σ official E, Σ provisional I,
                                Σ official I, last deviation bp]: its reconciliations (``cons/``
                                and ``rcs/``: on a chain that seals payloads, keyed by the hash
                                of their ``prm/`` entry, not the PRM: tokens/indexkeys.py)
``meta/reconcile``              [intervals reconciled, Σ official E, Σ official I, Wh minted by
                                corrections, Wh burned by corrections]
``meta/data_epoch``             the commune data key's current epoch (docs/privacy.md "Sealed
                                payloads"; absent on a chain that does not seal payloads)
``dkey/`` epoch                 [X25519 public key, link]: the commune data key of that epoch;
                                link: the previous epoch's secret boxed under this one's (b"" at 0)
``dkv/`` epoch ‖ holder         the epoch's secret sealed to that holder's key (a validator or
                                an auditor)
``rcv/`` holder                 [nonce, X25519 public key, epoch first sealed to it or None]: the
                                receive key a holder of the commune data key published
                                (``SetReceiveKey``, docs/privacy.md "Receive keys"), public
``aud/`` key                    [since height, proposal id]: an auditor appointed by a passed
                                proposal (rules_auditors, docs/privacy.md "Auditors"), public
``hdk/`` key ‖ epoch            a household's data key and leaf salt, sealed to the epoch's key
``cbal/`` key ‖ class           a household's balance of a commune-defined class (docs/classes.md)
``csup/`` class                 the amount of a commune-defined class issued so far (Issue)
``edue/`` erase_at ‖ key        1: a deregistered household whose private data is erased at
                                erase_at (rules_erasure, docs/privacy.md "Erasure")
``erased/`` sha256(key)         [height, unix s]: that key's household data was erased then
``ibc/`` ...                    transfers between communes: light clients, packets, escrow,
                                vouchers (tokens/ibc.py, docs/communes.md)
==============================  ==========================================================

Entries a household owns (``get_key_owner``) are salted leaves of the state tree on a
chain that seals payloads (tokens/statetree.py, docs/privacy.md "Private state leaves").

Integers in keys (``start``, ``end``, ``expires``, ``height``, ``day``) are 8-byte
big-endian, so a prefix scan walks them in time order. Keys are 32 bytes.
"""

from __future__ import annotations

from wire.units import Height

META_HEIGHT = b"meta/height"
META_TIME = b"meta/time_ms"
META_CHAIN = b"meta/chain_id"
META_STATE_HASH = b"meta/state_hash"
META_PARAMS = b"meta/params"
META_SETTLED = b"meta/settled_until"
META_NEXT_EPOCH = b"meta/next_epoch"
META_TOTALS = b"meta/totals"
META_ALLOCATION = b"meta/allocation"
META_VSC_NONCE = b"meta/vsc_nonce"
META_RSC_NONCE = b"meta/rsc_nonce"
META_UPG_NONCE = b"meta/upg_nonce"
UPGRADE = b"upg/"
TREASURY = b"treasury"
POOL = b"pool"
GIFT_POOL = b"gpool"

FUND = b"fund/"
REGISTRAR = b"reg/"
ACCOUNT = b"acct/"
HOUSEHOLD = b"hh/"
METER = b"meter/"
PRM = b"prm/"
KEY_STATUS = b"kst/"
RECOVERY_DUE = b"rdue/"
GIFT = b"gift/"
OFFER = b"offer/"
OFFER_EXPIRY = b"oexp/"
INTERVAL = b"int/"
INTERVAL_ENTRY = b"ie/"
INTERVAL_CORRECTION = b"icor/"
OPEN = b"open/"
CONTRIBUTION = b"ctb/"
DELEGATION = b"dlg/"
BALLOT = b"ballot/"
PROPOSAL = b"prop/"
PENDING = b"pend/"
VOTE = b"vote/"
VALIDATOR = b"val/"
VALIDATOR_SET = b"vset/"
EQUIVOCATION = b"equiv/"
TREE = b"smt/"
META_EURO = b"meta/euro"
PAYOUT = b"payout/"
DEBT_PAYMENT = b"debtpay/"
EURO_LOG = b"elog/"
ASSOCIATION = b"assoc/"
CONSENT = b"cons/"
RECONCILE_STATS = b"rcs/"
META_RECONCILE = b"meta/reconcile"
META_DATA_EPOCH = b"meta/data_epoch"
DATA_KEY = b"dkey/"
DATA_KEY_SEALED = b"dkv/"
HOUSEHOLD_DATA_KEY = b"hdk/"
# docs/privacy.md "Erasure": a cut of the commune data key keeps the surviving
# households' older data keys wrapped under the cut epoch (``rdk/`` household ‖ epoch),
# and the hidden aggregates' salt key (``meta/aggregate_key``); ``meta/data_cut`` is
# [epoch, height] of the latest cut, ``meta/cut_due`` the height of the erasure that
# makes the next rotation a cut.
REWRAPPED_DATA_KEY = b"rdk/"
META_DATA_CUT = b"meta/data_cut"
META_CUT_DUE = b"meta/cut_due"
META_AGGREGATE_KEY = b"meta/aggregate_key"
AUDITOR = b"aud/"
# docs/privacy.md "Receive keys": a holder's published receive key, [nonce, public, used
# epoch or None] (``RK_*``).
RECEIVE_KEY = b"rcv/"
RK_NONCE, RK_PUBLIC, RK_USED = 0, 1, 2
CLASS_BALANCE = b"cbal/"
# docs/privacy.md "Moving a household to a new key": on a chain that seals, a key a
# household moved to links to the key whose salt its leaves take until it publishes a
# data key of its own (``slk/`` new -> former key): its own leaf, so salted too.
SALT_LINK = b"slk/"
CLASS_SUPPLY = b"csup/"
ERASE_DUE = b"edue/"
ERASED = b"erased/"

# Account record [kwh, hour, nonce]; a class name indexes the balance.
CLASS_INDEX = {"kwh": 0, "hour": 1}
A_NONCE = 2

# Household record fields.
HH_METER, HH_PRM, HH_LABEL, HH_KVA, HH_PEAK_W, HH_SOLIDARITY, HH_SINCE = range(7)
HH_SEQ, HH_T, HH_IMPORT, HH_EXPORT, HH_BASELINE = range(7, 12)

# Key status records (``kst/``): the first field says which.
KS_RECOVERING, KS_ROTATED, KS_DEREGISTERED = "recovering", "rotated", "deregistered"

# Interval record fields.
IV_END, IV_SUM_E, IV_SUM_I, IV_M, IV_SETTLED, IV_LEVY, IV_MINTED, IV_ALLOCATED, IV_PUBLIC = range(9)
# ``pool`` fields.
PL_LEVY, PL_MINTED, PL_ALLOCATED, PL_PRODUCERS, PL_CONSUMERS, PL_HOUR = range(6)
# ``gpool`` row fields.
GP_BENEFICIARY, GP_AMOUNT, GP_GIVERS = range(3)
# ``icor/`` fields.
IC_RECORD, IC_HOUSEHOLDS, IC_RECONCILE = range(3)
# Interval entry fields.
IE_E, IE_I, IE_MINTED, IE_ALLOCATED = range(4)
# A reconciled entry also keeps what the meter first said (docs/reconciliation.md).
IE_PROV_E, IE_PROV_I = 4, 5
# ``rcs/`` fields.
RC_DAYS, RC_STREAK, RC_PROV_E, RC_OFF_E, RC_PROV_I, RC_OFF_I, RC_LAST_BP = range(7)

# Proposal record fields.
P_PROPOSER, P_PARAM, P_VALUE, P_END, P_STATUS, P_YES, P_NO, P_ABSTAIN, P_PARTICIPATION = range(9)


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def from_u64(data: bytes) -> int:
    return int.from_bytes(data, "big")


def key_account(addr: bytes) -> bytes:
    return ACCOUNT + addr


def key_class_balance(addr: bytes, cls: str) -> bytes:
    return CLASS_BALANCE + addr + cls.encode()


def key_class_supply(cls: str) -> bytes:
    return CLASS_SUPPLY + cls.encode()


def key_household(addr: bytes) -> bytes:
    return HOUSEHOLD + addr


def key_meter(meter: str) -> bytes:
    """The ``meter/`` entry's key on a chain that does not seal; the ledger takes it from
    tokens/indexkeys.py, which keys it by a commune-secret hash on one that does."""
    return METER + meter.encode()


def key_prm(prm: str) -> bytes:
    """The ``prm/`` entry's key on a chain that does not seal (see ``key_meter``)."""
    return PRM + prm.encode()


def key_status(addr: bytes) -> bytes:
    return KEY_STATUS + addr


def key_recovery_due(completes_at: int, addr: bytes) -> bytes:
    return RECOVERY_DUE + u64(completes_at) + addr


def key_registrar(addr: bytes) -> bytes:
    return REGISTRAR + addr


def key_interval(start: int) -> bytes:
    return INTERVAL + u64(start)


def key_interval_correction(start: int) -> bytes:
    return INTERVAL_CORRECTION + u64(start)


def key_entry(start: int, addr: bytes) -> bytes:
    return INTERVAL_ENTRY + u64(start) + addr


def key_open(end: int, start: int) -> bytes:
    return OPEN + u64(end) + u64(start)


def key_gift(giver: bytes, gift_id: bytes) -> bytes:
    return GIFT + giver + gift_id


def key_offer(offer_id: bytes) -> bytes:
    return OFFER + offer_id


def key_offer_expiry(expires: int, offer_id: bytes) -> bytes:
    return OFFER_EXPIRY + u64(expires) + offer_id


def key_fund(name: str) -> bytes:
    return FUND + name.encode()


def key_contribution(addr: bytes, day: int) -> bytes:
    return CONTRIBUTION + u64(day) + addr


def key_delegation(addr: bytes, topic: str) -> bytes:
    return DELEGATION + addr + topic.encode()


def key_proposal(pid: bytes) -> bytes:
    return PROPOSAL + pid


def key_pending(voting_end: int, pid: bytes) -> bytes:
    return PENDING + u64(voting_end) + pid


def key_vote(pid: bytes, addr: bytes) -> bytes:
    return VOTE + pid + addr


def key_validator_set(height: Height) -> bytes:
    return VALIDATOR_SET + u64(height)


def key_upgrade(version: int) -> bytes:
    return UPGRADE + u64(version)


# Payout record fields (``payout/``) and debt payment fields (``debtpay/``).
PO_ACCOUNT, PO_CLASS, PO_AMOUNT, PO_PRICE, PO_CENTS, PO_HEIGHT, PO_TIME, PO_LABEL = range(8)
PO_STATUS, PO_PAID_HEIGHT, PO_PAID_TIME, PO_REF = range(8, 12)
DP_HOUSEHOLD, DP_CLASS, DP_AMOUNT, DP_PRICE, DP_CENTS, DP_HEIGHT, DP_TIME, DP_LABEL, DP_REF, DP_REGISTRAR = range(10)
# ``meta/euro`` fields.
EU_REDEEMED, EU_OWED, EU_PAID, EU_CLEARED, EU_RECEIVED = range(5)


def key_payout(redeem_id: bytes) -> bytes:
    return PAYOUT + redeem_id


def key_debt_payment(tx_id: bytes) -> bytes:
    return DEBT_PAYMENT + tx_id


def key_euro_log(time_s: int, tx_id: bytes) -> bytes:
    return EURO_LOG + u64(time_s) + tx_id


def key_association(addr: bytes) -> bytes:
    return ASSOCIATION + addr


def key_consent(prm: str) -> bytes:
    return CONSENT + prm.encode()


def key_reconcile_stats(prm: str) -> bytes:
    return RECONCILE_STATS + prm.encode()


def key_data_key(epoch: int) -> bytes:
    return DATA_KEY + u64(epoch)


def key_data_key_sealed(epoch: int, validator: bytes) -> bytes:
    return DATA_KEY_SEALED + u64(epoch) + validator


def key_auditor(key: bytes) -> bytes:
    return AUDITOR + key


def key_receive_key(holder: bytes) -> bytes:
    return RECEIVE_KEY + holder


def key_household_data_key(addr: bytes, epoch: int) -> bytes:
    return HOUSEHOLD_DATA_KEY + addr + u64(epoch)


def key_salt_link(addr: bytes) -> bytes:
    return SALT_LINK + addr


def key_rewrapped_data_key(addr: bytes, epoch: int) -> bytes:
    return REWRAPPED_DATA_KEY + addr + u64(epoch)


def key_erase_due(erase_at: int, addr: bytes) -> bytes:
    return ERASE_DUE + u64(erase_at) + addr


def key_erased(addr_hash: bytes) -> bytes:
    return ERASED + addr_hash


# The entries a household owns: prefix -> offset of the owner's address after it. Its
# account, record and key status, the gifts it gives, its interval entries and
# contributions (its energy, half hour by half hour), its pending recovery, its class
# balances, its salt link. The key ends with the address, but for a gift (giver ‖ gift
# id) and a class balance (owner ‖ class).
OWNED_AT: dict[bytes, int] = {ACCOUNT: 0, HOUSEHOLD: 0, KEY_STATUS: 0, GIFT: 0, INTERVAL_ENTRY: 8, CONTRIBUTION: 8,
                              RECOVERY_DUE: 8, CLASS_BALANCE: 0, SALT_LINK: 0}
# Owned families keyed by the owner then a name (a gift's id, a class).
_OWNER_THEN_NAME = (GIFT, CLASS_BALANCE)
ADDR_LEN = 32


def is_public_interval(iv: list | None) -> bool:
    """Whether an ``int/`` record of a chain that seals may be shown and proven to anyone:
    settled, and marked ``public`` by its settlement (docs/privacy.md "Public aggregates")."""
    return iv is not None and len(iv) > IV_PUBLIC and bool(iv[IV_SETTLED]) and iv[IV_PUBLIC] is True


def get_key_owner(key: bytes) -> bytes | None:
    """The household key that owns state entry ``key`` (``OWNED_AT``), or None. Every
    owned family is one ``name/`` segment: one dict lookup per key (the state tree asks
    it of every changed key of a block)."""
    cut = key.find(b"/") + 1
    offset = OWNED_AT.get(key[:cut]) if cut else None
    if offset is None:
        return None
    rest = key[cut + offset:]
    exact = len(rest) == ADDR_LEN or (key[:cut] in _OWNER_THEN_NAME and len(rest) > ADDR_LEN)
    return rest[:ADDR_LEN] if exact else None
