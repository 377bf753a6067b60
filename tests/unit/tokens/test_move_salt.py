"""The salt of a household's leaves across a move to a new key, on a chain that seals
(docs/privacy.md "Moving a household to a new key"). The new key has no data key of its
own until its ``SetDataKey`` commits; until then its entries take the former key's salt
through its ``slk/`` link, so a proof of a neighbouring key never shows their plain
value hashes. Its first data key re-hashes them with its own salt; an erasure takes the
link with the data keys. At every step the root rebuilt from the entries is the one
the blocks reached."""

from __future__ import annotations

from node.api.proofs import get_proof_salt
from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, Chain, make_genesis
from tests.unit.tokens.membership import NEW, deregister, recover, rotate, state
from tests.unit.tokens.test_classes import CLASSES
from tests.unit.tokens.test_erasure import ERASE_AFTER, RECOVERED, RECOVERY_DELAY, MovingChain
from tests.unit.tokens.test_sealing import SealChain
from tokens import get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.sealing import compute_keyring, make_kv_salt_of
from tokens.statetree import compute_proof
from wire.merkle import encode_proof, verify_proof
from wire.seal import derive_household_keys

METER_2 = f"0214{2:08d}"


def salt(key) -> bytes:
    """The salt ``key``'s household derives from its seed (epoch 0)."""
    return derive_household_keys(key.seed, 0)[1]


def salt_of(chain: SealChain, key: bytes) -> bytes:
    return make_kv_salt_of(chain.kv, chain.keys)(key)


def check_root(chain: SealChain) -> None:
    """The incremental root is the one rebuilt from the entries with their salts."""
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()


def check_salted(chain: SealChain, key: bytes, expected: bytes) -> None:
    """``key``'s leaf takes ``expected``: its proof reaches the root with it, not without."""
    root = chain.state_hash()
    value, proof = compute_proof(chain.kv, root, key)
    assert value is not None
    assert salt_of(chain, key) == expected
    assert verify_proof(root, key, value, encode_proof(proof), expected)
    assert not verify_proof(root, key, value, encode_proof(proof))


def moved_keys(chain: SealChain, addr: bytes) -> list[bytes]:
    """The moved household's account, record, salt link and meter index entry."""
    return [L.key_account(addr), L.key_household(addr), L.key_salt_link(addr), chain.meter_entry(METER_2)]


def test_a_rotated_key_takes_the_former_salt_until_its_own_data_key_commits():
    chain = MovingChain()
    h2 = chain.households[2]
    chain.block([chain.set_data_key(k) for k in chain.households])
    chain.block([rotate(chain, h2, NEW)])
    # The move links the new key to the former one; every entry that moved, the
    # account with its balances first, is hashed with the former key's salt.
    assert state(chain, L.key_salt_link(NEW.public)) == h2.public
    assert state(chain, L.key_account(NEW.public)) is not None
    for key in moved_keys(chain, NEW.public):
        check_salted(chain, key, salt(h2))
    check_root(chain)
    # GET /proofs/{key} gives the household the salt it cannot derive from its new key.
    account = L.key_account(NEW.public)
    assert get_proof_salt(chain.kv, chain.keys, account, chain.kv.get(account)) == salt(h2).hex()
    # Its first data key ends the link and re-hashes every entry with its own salt.
    chain.block([chain.set_data_key(NEW)])
    assert state(chain, L.key_salt_link(NEW.public)) is None
    for key in moved_keys(chain, NEW.public)[:2] + [chain.meter_entry(METER_2)]:
        check_salted(chain, key, salt(NEW))
    check_root(chain)
    assert get_proof_salt(chain.kv, chain.keys, account, chain.kv.get(account)) is None   # it derives its own
    assert chain.replay(compute_keyring(chain.kv, VALIDATORS[1].seed, VALIDATORS[1].public)) == chain.state_hash()


def test_two_moves_before_a_data_key_inherit_the_first_keys_salt_then_erasure_takes_it():
    chain = MovingChain()
    h2 = chain.households[2]
    chain.block([chain.set_data_key(k) for k in chain.households])
    chain.block([rotate(chain, h2, NEW)])
    # NEW moves on (recovered) before publishing a data key: the link of the key it
    # moves to names the key that holds the salt, h2, in one step.
    chain.block([recover(chain, NEW, RECOVERED)])
    check_root(chain)
    chain.block(dt_s=RECOVERY_DELAY)
    assert state(chain, L.key_household(RECOVERED.public)) is not None
    assert state(chain, L.key_salt_link(RECOVERED.public)) == h2.public
    for key in moved_keys(chain, RECOVERED.public):
        check_salted(chain, key, salt(h2))
    # NEW keeps its link: its rotated status stays salted with h2's salt.
    check_salted(chain, L.key_status(NEW.public), salt(h2))
    check_root(chain)

    chain.block([chain.set_data_key(RECOVERED)])
    assert state(chain, L.key_salt_link(RECOVERED.public)) is None
    check_salted(chain, L.key_account(RECOVERED.public), salt(RECOVERED))
    check_root(chain)

    chain.block([deregister(chain, RECOVERED)])
    check_root(chain)
    chain.block(dt_s=ERASE_AFTER)
    # The erasure takes the data keys of every key it held and NEW's link: the former
    # keys' statuses are hashed anew unsalted, and the rebuilt root is the chain's.
    assert list(chain.kv.iter_prefix(L.SALT_LINK)) == []
    for key in (h2, NEW):
        assert state(chain, L.key_status(key.public)) is not None
        assert salt_of(chain, L.key_status(key.public)) == b""
    check_root(chain)
    assert chain.replay(compute_keyring(chain.kv, VALIDATORS[1].seed, VALIDATORS[1].public)) == chain.state_hash()


def test_a_household_erased_before_its_new_key_published_a_data_key_leaves_no_salted_leaf():
    chain = MovingChain()
    h2 = chain.households[2]
    chain.block([chain.set_data_key(k) for k in chain.households])
    chain.block([rotate(chain, h2, NEW)])
    chain.block([deregister(chain, NEW)])
    # Deregistered, its account and status stay until the erasure, salted through the link.
    check_salted(chain, L.key_account(NEW.public), salt(h2))
    check_salted(chain, L.key_status(NEW.public), salt(h2))
    check_root(chain)
    chain.block(dt_s=ERASE_AFTER)
    assert state(chain, L.key_salt_link(NEW.public)) is None
    assert state(chain, L.key_account(NEW.public)) is None
    assert salt_of(chain, L.key_status(h2.public)) == b""
    check_root(chain)


def test_moved_class_balances_take_the_new_keys_salt_at_its_first_data_key():
    # A cbal/ entry is the household's own leaf (docs/classes.md): moved under the
    # inherited salt, it is re-hashed when the new key publishes its own.
    chain = SealChain(classes=CLASSES)
    h0 = chain.households[0]
    chain.block([chain.set_data_key(k) for k in chain.households])
    chain.block([chain.registrar_tx(T.Issue, REGISTRAR, cls="points", to=h0.public, amount=40, memo="")])
    chain.block([rotate(chain, h0, NEW)])
    balance = L.key_class_balance(NEW.public, "points")
    check_salted(chain, balance, salt(h0))
    check_root(chain)
    chain.block([chain.set_data_key(NEW)])
    check_salted(chain, balance, salt(NEW))
    check_root(chain)


def test_a_first_data_key_re_hashes_class_balances_held_before_it():
    # The same for a household credited in a class before its first data key.
    chain = SealChain(classes=CLASSES)
    h0 = chain.households[0]
    chain.block([chain.registrar_tx(T.Issue, REGISTRAR, cls="points", to=h0.public, amount=40, memo="")])
    assert salt_of(chain, L.key_class_balance(h0.public, "points")) == b""
    chain.block([chain.set_data_key(h0)])
    check_salted(chain, L.key_class_balance(h0.public, "points"), salt(h0))
    check_root(chain)


def test_a_move_on_a_clear_chain_writes_no_salt_link():
    # A clear chain's state root stays what it was (tests/unit/tokens/test_indexkeys.py pins it).
    genesis, keys = make_genesis(4)
    chain = Chain(genesis)
    chain.block([rotate(chain, keys[2], NEW)])
    assert state(chain, L.key_household(NEW.public)) is not None
    assert list(chain.kv.iter_prefix(L.SALT_LINK)) == []
