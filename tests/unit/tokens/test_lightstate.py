"""tokens/visibility.py and tokens/lightstate.py: who may read an entry, and a proven
answer checked against a state root (docs/privacy.md "Household nodes")."""

from __future__ import annotations

import dataclasses

import pytest

from tokens import ibc
from tokens import layout as L
from tokens.kv import MemoryKV, encode_value
from tokens.lightstate import (
    GetEntries, InvalidProof, ProvenEntries, ProvenEntry, ProvenPrefix, get_request_fault, verify_entries,
)
from tokens.statetree import compute_proof, compute_tree_build
from tokens.visibility import PUBLIC, get_entry_reader, is_prefix_readable_by, is_readable_by
from wire import Keypair, decode, sign_message
from wire.merkle import encode_proof

ME, HER = bytes([1]) * 32, bytes([2]) * 32
CHAIN = bytes([9]) * 32


def state() -> MemoryKV:
    items = {
        L.key_account(ME): encode_value([10, 0, 3]), L.key_account(HER): encode_value([77, 0, 1]),
        L.key_household(HER): encode_value(["m", "30000000000002"]), L.key_prm("30000000000002"): encode_value(HER),
        L.key_consent("30000000000002"): encode_value([1, 2]), L.key_entry(1800, HER): encode_value([0, 5, 0, 5]),
        L.key_entry(1800, ME): encode_value([9, 0, 8, 0]), L.key_interval(1800): encode_value([3600, 9, 5, 5]),
        L.TREASURY: encode_value([1, 0]), L.key_fund("roads"): encode_value([1, 1, 0]),
        L.key_gift(ME, bytes(32)): encode_value([HER, 100, 0]), L.key_offer(bytes(32)): encode_value([HER, "kwh"]),
        L.key_offer_expiry(5, bytes(32)): encode_value(1),
    }
    return MemoryKV(items)


@pytest.mark.parametrize("key, reader", [
    (L.TREASURY, PUBLIC), (L.META_PARAMS, PUBLIC), (L.key_interval(1800), PUBLIC), (L.key_fund("roads"), PUBLIC),
    (L.key_account(ME), ME), (L.key_entry(1800, HER), HER), (L.key_gift(ME, bytes(32)), ME),
    (L.key_prm("30000000000002"), HER), (L.key_consent("30000000000002"), HER), (L.key_offer(bytes(32)), HER),
    (L.key_offer_expiry(5, bytes(32)), None), (L.key_account(ME) + b"x", None), (b"zzz/unknown", None),
    # Transfers between communes are proven to the other chain by a keyless relayer: public;
    # the vouchers a household holds are its own.
    (ibc.COMMITMENT + CHAIN + bytes(8), PUBLIC), (ibc.RECEIPT + CHAIN + bytes(8), PUBLIC), (ibc.CLIENT + CHAIN, PUBLIC),
    (ibc.VOUCHER + CHAIN + ME + b"kwh", ME), (ibc.VOUCHER + CHAIN + ME, None),
])
def test_entry_readers(key: bytes, reader):
    assert get_entry_reader(state(), key) == reader if reader is not PUBLIC else get_entry_reader(state(), key) is PUBLIC


def test_a_household_reads_its_own_entries_and_public_ones_only():
    kv = state()
    assert is_readable_by(kv, L.key_account(ME), ME) and is_readable_by(kv, L.TREASURY, None)
    assert not is_readable_by(kv, L.key_account(HER), ME) and not is_readable_by(kv, L.key_account(ME), None)
    assert is_prefix_readable_by(L.FUND, None) and is_prefix_readable_by(L.GIFT + ME, ME)
    assert not is_prefix_readable_by(L.GIFT + HER, ME) and not is_prefix_readable_by(L.INTERVAL_ENTRY, ME)
    assert not is_prefix_readable_by(L.ACCOUNT, ME)


def proven(kv: MemoryKV, root: bytes, key: bytes) -> ProvenEntry:
    value, proof = compute_proof(kv, root, key)
    return ProvenEntry(key=key, value=value, proof=encode_proof(proof))


@pytest.fixture
def tree():
    items = state().items()
    root, nodes = compute_tree_build(items)
    kv = MemoryKV(dict(items) | nodes)
    return kv, root


def answer(kv, root, keys, prefix=None) -> ProvenEntries:
    listing = () if prefix is None else (ProvenPrefix(prefix=prefix, entries=tuple(
        proven(kv, root, k) for k, _ in kv.iter_prefix(prefix)), complete=True),)
    return ProvenEntries(height=7, entries=tuple(proven(kv, root, k) for k in keys), prefixes=listing, refused=())


def test_a_proven_answer_gives_values_absences_and_listings(tree):
    kv, root = tree
    keys = [L.key_account(ME), L.key_entry(3600, ME)]
    got = verify_entries(root, 7, keys, [L.FUND], answer(kv, root, keys, L.FUND))
    assert got.values == {L.key_account(ME): encode_value([10, 0, 3]), L.key_entry(3600, ME): None}
    assert got.listed == {L.FUND: ({L.key_fund("roads"): encode_value([1, 1, 0])}, True)}
    wire = answer(kv, root, keys).encode()
    assert decode(wire, ProvenEntries, len(wire)) == answer(kv, root, keys)


def test_invalid_answers(tree):
    kv, root = tree
    keys = [L.key_account(ME), L.TREASURY]
    good = answer(kv, root, keys)
    forged = dataclasses.replace(good.entries[0], value=encode_value([10**6, 0, 3]))
    hidden = dataclasses.replace(good.entries[0], value=None)
    cases = {
        "does not reach the state root": dataclasses.replace(good, entries=(forged, good.entries[1])),
        "absence of": dataclasses.replace(good, entries=(hidden, good.entries[1])),
        "leaves out": dataclasses.replace(good, entries=good.entries[:1]),
        "twice or unasked": dataclasses.replace(good, entries=good.entries + good.entries[:1]),
        "height 7, got 8": dataclasses.replace(good, height=8),
        "not asked": dataclasses.replace(good, refused=(L.key_account(HER),)),
    }
    for match, bad in cases.items():
        with pytest.raises(InvalidProof, match=match):
            verify_entries(root, 7, keys, [], bad)
    with pytest.raises(InvalidProof, match="does not reach"):
        verify_entries(bytes(32), 7, keys, [], good)


def test_request_faults():
    key = Keypair(bytes([5]) * 32)
    req = sign_message(GetEntries(height=1, keys=(L.TREASURY,), prefixes=(), requester=key.public, peer=b"p",
                                  time_ms=100_000, nonce=bytes(16), sig=b""), CHAIN, key)
    assert get_request_fault(req, CHAIN, b"p", 100_000) is None
    assert "another peer" in get_request_fault(req, CHAIN, b"q", 100_000)
    assert "a minute off" in get_request_fault(req, CHAIN, b"p", 200_000)
    assert get_request_fault(req, bytes(32), b"p", 100_000) == "bad signature"      # another chain
    anonymous = dataclasses.replace(req, requester=None)
    assert "carries a signature" in get_request_fault(anonymous, CHAIN, b"p", 100_000)
    assert get_request_fault(dataclasses.replace(anonymous, sig=bytes(64)), CHAIN, b"p", 100_000) is None


# -- a household's delivery point entries, asked by its key (``own_prm``) ------------------------------

TAG_ME, TAG_HER = bytes([0xA1]) * 32, bytes([0xB2]) * 32     # the keyed hashes of two PRMs


@pytest.fixture
def by_prm_tree():
    """A chain that seals: ``prm/``, ``cons/`` and ``rcs/`` under each delivery point's tag."""
    items = {
        L.key_household(ME): encode_value(["m", "30000000000001"]), L.PRM + TAG_ME: encode_value(ME),
        L.CONSENT + TAG_ME: encode_value([1, 2]), L.RECONCILE_STATS + TAG_ME: encode_value([1, 0, 5, 4, 0, 0, 2000]),
        L.PRM + TAG_HER: encode_value(HER), L.RECONCILE_STATS + TAG_HER: encode_value([3, 3, 9, 1, 0, 0, 8000]),
    }
    root, nodes = compute_tree_build(items.items())
    return MemoryKV(items | nodes), root


def by_prm_answer(kv, root, keys, tag: bytes, consent_tag: bytes | None = None) -> ProvenEntries:
    triple = (L.PRM + tag, L.CONSENT + (consent_tag or tag), L.RECONCILE_STATS + tag)
    return dataclasses.replace(answer(kv, root, keys), by_prm=tuple(proven(kv, root, k) for k in triple))


def test_own_delivery_point_entries_are_proven_under_the_tag_that_names_the_household(by_prm_tree):
    kv, root = by_prm_tree
    keys = [L.key_household(ME)]
    good = by_prm_answer(kv, root, keys, TAG_ME)
    got = verify_entries(root, 7, keys, [], good, own_prm=ME)
    assert got.by_prm == {L.PRM + TAG_ME: encode_value(ME), L.CONSENT + TAG_ME: encode_value([1, 2]),
                          L.RECONCILE_STATS + TAG_ME: encode_value([1, 0, 5, 4, 0, 0, 2000])}
    assert verify_entries(root, 7, keys, [], answer(kv, root, keys)).by_prm is None     # not asked
    wire = good.encode()
    assert decode(wire, ProvenEntries, len(wire)) == good
    # A household the state holds no record of has no such entries: an empty answer.
    assert verify_entries(root, 7, [L.key_household(HER)], [], answer(kv, root, [L.key_household(HER)]),
                          own_prm=HER).by_prm == {}


def test_forged_or_borrowed_delivery_point_entries_are_refused(by_prm_tree):
    kv, root = by_prm_tree
    keys = [L.key_household(ME)]
    good = by_prm_answer(kv, root, keys, TAG_ME)
    forged = dataclasses.replace(good.by_prm[2], value=encode_value([1, 0, 5, 5, 0, 0, 0]))
    cases = {
        # Another household's statistics, properly proven, passed off as its own.
        "does not name this household": by_prm_answer(kv, root, keys, TAG_HER),
        "not its delivery point's": by_prm_answer(kv, root, keys, TAG_ME, consent_tag=TAG_HER),
        "leaves out the household's delivery point": dataclasses.replace(good, by_prm=good.by_prm[:2]),
        "does not reach the state root": dataclasses.replace(good, by_prm=good.by_prm[:2] + (forged,)),
        "record was refused": dataclasses.replace(good, entries=(), refused=tuple(keys)),
    }
    for match, bad in cases.items():
        with pytest.raises(InvalidProof, match=match):
            verify_entries(root, 7, keys, [], bad, own_prm=ME)
    with pytest.raises(InvalidProof, match="not asked"):
        verify_entries(root, 7, keys, [], good)
    absent = [L.key_household(HER)]
    with pytest.raises(InvalidProof, match="does not hold"):
        verify_entries(root, 7, absent, [], by_prm_answer(kv, root, absent, TAG_HER), own_prm=HER)
