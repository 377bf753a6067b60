"""Who may read which state entry outside the validators (docs/privacy.md "Household nodes").

A household node holds no one else's data: it asks a validator for the entries it
shows, with proofs. The validator answers an entry only to whoever may read it:

- **public**: what everybody sees anyway (DESIGN §12 "Privacy"): the parameters and
  totals (``meta/``), the treasury and funds, interval aggregates (``int/``, ``open/``;
  on a chain that seals, an ``int/`` record only once settled as public: one fewer than
  ``min_aggregate`` households made up, or still open, is the validators' alone),
  governance (proposals, votes, delegations, ballots), registrars, validators and
  their sets, upgrades, associations, the commune data key's public keys (``dkey/``);
- **one household**: its account and balances of commune-defined classes, household record, key status, gifts, interval
  entries, contributions, pending recovery (the entries it owns, ``layout.OWNED_AT``,
  salted leaves on a chain that seals payloads), its sealed data keys, offers, payouts
  and debt payments, and the meter, delivery point, consent and reconciliation entries
  that name it;
- **nobody else** (``None``): everything not listed (expiry and euro-log indexes, the
  levy ``pool``, and any family a later rule adds until it is classified here).

Pure: a function of the key and the state it is read from.
"""

from __future__ import annotations

from typing import Final

from tokens import ibc
from tokens import layout as L
from tokens.indexkeys import BY_PRM_PREFIXES, key_prm_entry_of
from tokens.kv import KV, decode_value

ADDR = 32


class _Public:
    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC: Final = _Public()

# Prefixes whose every entry is public.
PUBLIC_PREFIXES = (
    b"meta/", L.TREASURY, L.FUND, L.REGISTRAR, L.INTERVAL, L.OPEN, L.PROPOSAL, L.PENDING, L.VOTE,
    L.DELEGATION, L.BALLOT, L.VALIDATOR, L.VALIDATOR_SET, L.EQUIVOCATION, L.UPGRADE, L.ASSOCIATION,
    L.DATA_KEY, L.CLASS_SUPPLY, L.ERASED, L.AUDITOR,
    # A holder's receive key: a public key, which the rotation CLI reads.
    L.RECEIVE_KEY,
    # A copy of the commune data key sealed to one holder: only that key opens it, and the
    # RotateDataKey that wrote it is public in its block (a holder's CLI reads it, and an
    # auditor runs no validator's API token).
    L.DATA_KEY_SEALED,
    # Transfers between communes: proven to the other chain by a keyless relayer, so
    # public (docs/privacy.md); but what vouchers a household holds is its own.
    ibc.VOUCHER_PREFIX.encode(),
)
# Families whose value names the owner: (field index or None for the whole value).
_OWNER_IN_VALUE = {L.METER: None, L.PRM: None, L.OFFER: 0, L.PAYOUT: L.PO_ACCOUNT,
                   L.DEBT_PAYMENT: L.DP_HOUSEHOLD}
# Families keyed by a delivery point's tag (tokens/indexkeys.py: the PRM in clear, or its
# hash under the commune key on a chain that seals): the household its ``prm/`` entry of
# the same tag names.
_BY_PRM = BY_PRM_PREFIXES


def is_public_key(key: bytes) -> bool:
    if key.startswith(ibc.VOUCHER):
        return False
    return key == L.TREASURY or any(key.startswith(p) for p in PUBLIC_PREFIXES if p != L.TREASURY)


def _owner_from_value(raw: bytes | None, field: int | None) -> bytes | None:
    if raw is None:
        return None
    try:
        value = decode_value(raw)
        owner = value if field is None else value[field]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    return owner if type(owner) is bytes and len(owner) == ADDR else None


def seals(kv: KV) -> bool:
    """Whether the chain of state ``kv`` seals payloads (its commune data key's epoch)."""
    return kv.get(L.META_DATA_EPOCH) is not None


def is_hidden_interval(kv: KV, key: bytes, raw: bytes | None) -> bool:
    """An ``int/`` record no household may read, with value ``raw`` (None: absent): on a
    chain that seals, any record not settled as public (open ones included: their running
    sums, read at each height, would give each block's readings). Absent is no secret.
    A proof at an earlier height is judged by the value it proves, not by ``kv``'s: a
    record public now was open, and hidden, before."""
    if raw is None or not key.startswith(L.INTERVAL) or not seals(kv):
        return False
    try:
        return not L.is_public_interval(decode_value(raw))
    except (ValueError, TypeError):
        return True


def get_entry_reader(kv: KV, key: bytes) -> bytes | _Public | None:
    """PUBLIC, the address of the one household that may read ``key``, or None (the
    validators only). Read from ``kv``, the state the answer is given from."""
    if key.startswith(L.INTERVAL) and is_hidden_interval(kv, key, kv.get(key)):
        return None
    if is_public_key(key):
        return PUBLIC
    if key.startswith(ibc.VOUCHER):     # ibc/vch/ ‖ origin ‖ holder ‖ class
        holder = key[len(ibc.VOUCHER) + ADDR:len(ibc.VOUCHER) + 2 * ADDR]
        return holder if len(key) > len(ibc.VOUCHER) + 2 * ADDR else None
    if any(key.startswith(prefix) for prefix in L.OWNED_AT):
        return L.get_key_owner(key)
    if key.startswith(L.HOUSEHOLD_DATA_KEY):
        # Its sealed data keys, address ‖ epoch: only the commune key's holders open them.
        rest = key[len(L.HOUSEHOLD_DATA_KEY):]
        return rest[:ADDR] if len(rest) == ADDR + 8 else None
    for prefix, field in _OWNER_IN_VALUE.items():
        if key.startswith(prefix):
            return _owner_from_value(kv.get(key), field)
    if key.startswith(_BY_PRM):
        # The same tag as the delivery point's ``prm/`` entry: this table needs no index
        # key, on a chain that seals as on one that does not.
        try:
            return _owner_from_value(kv.get(key_prm_entry_of(key)), None)
        except ValueError:          # a bare prefix
            return None
    return None


def is_readable_by(kv: KV, key: bytes, reader: bytes | None) -> bool:
    """Whether ``reader`` (a household address, or None for anyone) may read ``key``."""
    owner = get_entry_reader(kv, key)
    return owner is PUBLIC or (reader is not None and owner == reader)


def is_prefix_readable_by(prefix: bytes, reader: bytes | None, kv: KV | None = None) -> bool:
    """Whether every entry under ``prefix`` is one ``reader`` may read: a public family,
    or one keyed by the reader's own address first (its gifts, its delegations). With
    ``kv`` of a chain that seals, interval records are not listed (some are hidden)."""
    if kv is not None and seals(kv) and (prefix.startswith(L.INTERVAL) or L.INTERVAL.startswith(prefix)):
        return False
    if any(prefix.startswith(p) for p in PUBLIC_PREFIXES if p != L.TREASURY) or prefix == L.TREASURY:
        return True
    if reader is None:
        return False
    return prefix in (L.GIFT + reader, L.DELEGATION + reader, L.HOUSEHOLD_DATA_KEY + reader,
                      L.CLASS_BALANCE + reader)


# ---- what a household node follows ----

# Public entries a household node shows (dashboard, status, governance, commune).
PUBLIC_KEYS = (
    L.META_HEIGHT, L.META_TIME, L.META_CHAIN, L.META_PARAMS, L.META_SETTLED, L.META_NEXT_EPOCH, L.META_TOTALS,
    L.META_ALLOCATION, L.META_VSC_NONCE, L.META_RSC_NONCE, L.META_UPG_NONCE, L.META_EURO, L.META_RECONCILE,
    L.META_DATA_EPOCH, L.TREASURY,
)
PUBLIC_FOLLOWED_PREFIXES = (L.FUND, L.VALIDATOR_SET, L.VALIDATOR, L.REGISTRAR, L.UPGRADE, L.EQUIVOCATION,
                            L.ASSOCIATION, L.PROPOSAL, L.DATA_KEY)


def get_own_keys(addr: bytes) -> tuple[bytes, ...]:
    """The single entries of household ``addr`` its node follows."""
    return (L.key_account(addr), L.key_household(addr), L.key_status(addr), L.BALLOT + addr)


def get_own_prefixes(addr: bytes) -> tuple[bytes, ...]:
    """Its gifts and delegations, and its sealed data keys (docs/privacy.md: whether its
    entries are salted leaves)."""
    return (L.GIFT + addr, L.DELEGATION + addr, L.HOUSEHOLD_DATA_KEY + addr, L.CLASS_BALANCE + addr)


def get_interval_keys(addr: bytes, start: int) -> tuple[bytes, bytes]:
    """The aggregate of the interval starting at ``start`` and the household's own entry."""
    return L.key_interval(start), L.key_entry(start, addr)
