"""Associations and the targets of standing gifts (issue 19 item 4; docs/euro.md).

A standing gift (tokens/txs.py StandingGift) names its beneficiary by a 32-byte key.
That key may be:
- a registered household;
- ``txs.SOLIDARITY``: the households flagged solidarity, at mint time;
- an association registered by the registrar (RegisterAssociation): an account with a
  key and a name, which holds what it is given and may transfer or redeem it (no credit
  line); once struck off (RemoveAssociation) it receives nothing more and keeps its
  account;
- a category fund's address, ``compute_fund_address(name)``: sha256 of
  ``b"voisinage/fund/" + name``, a key nobody holds the private half of (as a
  module account in the Cosmos SDK). Its share goes into the fund's balance and counts
  as received.

At mint time a gift whose target is no longer a category or a registered association
gives nothing: its share stays with the producer, as a solidarity gift does when no
household is flagged.
"""

from __future__ import annotations

import hashlib

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.ledger import Ledger
from tokens.rules_erasure import check_not_erased
from tokens.txs import SOLIDARITY, RegisterAssociation, RemoveAssociation

FUND_ADDRESS_PREFIX = b"voisinage/fund/"
MAX_NAME_BYTES = 64


def compute_fund_address(name: str) -> bytes:
    """The 32-byte address that stands for the category fund ``name`` as a gift target."""
    return hashlib.sha256(FUND_ADDRESS_PREFIX + name.encode()).digest()


def get_fund_addresses(lg: Ledger) -> dict[bytes, str]:
    """{address: category name} for the categories in force."""
    return {compute_fund_address(name): name for name, _ in lg.params["allocation_categories"]}


def get_association(lg: Ledger, addr: bytes) -> list | None:
    """The association record [name, since, until or 0], struck off or not."""
    return lg.ov.get(L.key_association(addr))


def is_active_association(lg: Ledger, addr: bytes) -> bool:
    rec = get_association(lg, addr)
    return rec is not None and rec[2] == 0


def check_association_name(name: str) -> None:
    if not name.strip() or len(name.encode()) > MAX_NAME_BYTES:
        raise InvalidTx("bad_name", f"an association's name is 1 to {MAX_NAME_BYTES} bytes, not blank")


def check_association_key(lg: Ledger, key: bytes) -> None:
    # An association's key is nobody else's: not a household, a registrar, the
    # solidarity target, a fund's address or an association already registered.
    if key == SOLIDARITY:
        raise InvalidTx("reserved_key", "this key stands for the solidarity gift target")
    if key in get_fund_addresses(lg):
        raise InvalidTx("reserved_key", f"this key stands for the {get_fund_addresses(lg)[key]} fund")
    if lg.get_household(key) is not None or lg.ov.get(L.key_registrar(key)) is not None:
        raise InvalidTx("key_in_use", f"{key.hex()[:16]}… is a household or registrar key")
    if is_active_association(lg, key):
        raise InvalidTx("already_registered", f"{key.hex()[:16]}… is already an association")
    status = lg.ov.get(L.key_status(key))
    if status is not None:
        raise InvalidTx("key_in_use", f"{key.hex()[:16]}… was a household key ({status[0]})")
    check_not_erased(lg, key)


def check_name_free(lg: Ledger, name: str) -> None:
    for _, (other, _, until) in lg.ov.iter_prefix(L.ASSOCIATION):
        if until == 0 and other == name:
            raise InvalidTx("name_taken", f"an association named {name!r} is already registered")


def process_register_association(lg: Ledger, tx: RegisterAssociation, tx_id: bytes) -> None:
    # Issue 19 item 4: the registrar registers an association's account (key, name).
    lg.require_registrar(tx.signer)
    check_association_name(tx.name)
    check_association_key(lg, tx.key)
    check_name_free(lg, tx.name)
    lg.process_nonce(tx.signer, tx.nonce)
    lg.ov.put(L.key_association(tx.key), [tx.name, lg.height, 0])


def process_remove_association(lg: Ledger, tx: RemoveAssociation, tx_id: bytes) -> None:
    # The registrar strikes an association off: it receives nothing more, keeps its account.
    lg.require_registrar(tx.signer)
    rec = get_association(lg, tx.key)
    if rec is None or rec[2] != 0:
        raise InvalidTx("unknown_association", f"{tx.key.hex()[:16]}… is not a registered association")
    lg.process_nonce(tx.signer, tx.nonce)
    rec[2] = lg.height
    lg.ov.put(L.key_association(tx.key), rec)


def check_gift_target(lg: Ledger, giver: bytes, target: bytes) -> None:
    """A StandingGift's beneficiary: the solidarity target, a category fund's address, an
    association in force, or a household other than the giver."""
    if target == SOLIDARITY or target in get_fund_addresses(lg) or is_active_association(lg, target):
        return
    if lg.get_household(target) is None:
        raise InvalidTx("unknown_recipient", f"{target.hex()[:16]}… is not a household, an association in force "
                                             "or a category fund's address")
    if target == giver:
        raise InvalidTx("self_payment", "an account cannot pay itself")


def process_fund_gift(lg: Ledger, name: str, share: int) -> None:
    """A gift's share into a category fund: its balance and what it received."""
    key = L.key_fund(name)
    fund = lg.ov.get(key) or [0, 0, 0]
    fund[0] += share
    fund[1] += share
    lg.ov.put(key, fund)


def get_holder_label(lg: Ledger, addr: bytes) -> str | None:
    """For an account that may hold and give up value without a credit line beyond its
    household's: the household's label or the association's name; "" for a household
    that moved out; None for anyone else."""
    hh = lg.get_household(addr)
    if hh is not None:
        return hh[L.HH_LABEL]
    assoc = get_association(lg, addr)
    if assoc is not None:
        return assoc[0]
    status = lg.ov.get(L.key_status(addr))
    if status is not None and status[0] == L.KS_DEREGISTERED:
        return ""
    return None
