"""A household moved to a new key on a chain that seals payloads (docs/privacy.md
"Moving a household to a new key"): by RotateKey, or by a recovery completing. The
validators keep opening what it sealed under its former key (its data keys stay in the
state until its erasure), open what it seals under the new key once that key's data key
is in a block, and every holder computes the same state root, salted with the new key's
salt from then on."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import VALIDATORS, ZERO_SIG, keypair
from tests.unit.tokens.membership import NEW, recover, rotate
from tests.unit.tokens.test_sealing import SealChain
from tokens import InvalidLedgerBlock, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.queries import get_household
from tokens.sealing import compute_keyring, make_kv_salt_of
from tokens.statetree import compute_proof
from wire.merkle import encode_proof, verify_proof
from wire.seal import derive_household_keys

RECOVERY_DELAY = 600
RECOVERED = keypair("recovered-key")


class MoveChain(SealChain):
    """A sealing chain whose recoveries complete after RECOVERY_DELAY seconds."""

    def __init__(self) -> None:
        super().__init__(params={"recovery_delay_s": RECOVERY_DELAY})
        self.seq = 0

    def moved_reading(self, key, imp: int = 1) -> bytes:
        """The next reading of household 2's meter, sealed under ``key``'s data key."""
        self.seq += 1
        return self.seal(T.MeterReading(signer=key.public, meter=f"0214{2:08d}", seq=self.seq, t=self.time_s,
                                        import_wh=imp, export_wh=0, sig=ZERO_SIG), key)

    def salt_of(self, key: bytes) -> bytes:
        return make_kv_salt_of(self.kv, self.keys)(key)


def move(chain: MoveChain, how: str, old, new) -> None:
    if how == "rotate":
        chain.block([rotate(chain, old, new)])
    else:
        chain.block([recover(chain, old, new)])
        chain.block(dt_s=RECOVERY_DELAY)


def check_proof(chain: MoveChain, key: bytes, salt: bytes) -> None:
    """``key``'s entry proves against the root with ``salt``, and not without it."""
    root = chain.state_hash()
    value, proof = compute_proof(chain.kv, root, key)
    assert value is not None
    assert verify_proof(root, key, value, encode_proof(proof), salt)
    assert not verify_proof(root, key, value, encode_proof(proof))


@pytest.mark.parametrize("how", ["rotate", "recover"])
def test_validators_open_the_moved_household_under_both_keys_and_agree_on_the_root(how):
    chain = MoveChain()
    h2 = chain.households[2]
    chain.block([chain.set_data_key(k) for k in chain.households])
    chain.block([chain.moved_reading(h2)], dt_s=2)
    move(chain, how, h2, NEW)
    assert get_household(chain.kv, NEW.public)["last_reading"]["seq"] == 1
    # The former key's data key stays: its envelopes in the blocks still open.
    assert chain.kv.get(L.key_household_data_key(h2.public, 0)) is not None
    # Until the new key's data key is in a block its entries take the former key's salt
    # (its salt link: tests/unit/tokens/test_move_salt.py).
    assert chain.salt_of(L.key_account(NEW.public)) == derive_household_keys(h2.seed, 0)[1]
    # Under the new key, nothing seals before its own data key is in a block.
    with pytest.raises(InvalidLedgerBlock) as info:
        chain.block([chain.moved_reading(NEW)], dt_s=2)
    assert info.value.reason == "no_data_key"
    chain.seq -= 1
    chain.block([chain.set_data_key(NEW)], dt_s=2)
    # From that block the household's entries under the new key take the new key's salt,
    # which its node derives from the new key file alone.
    salt = derive_household_keys(NEW.seed, 0)[1]
    assert salt != derive_household_keys(h2.seed, 0)[1]
    for key in (L.key_account(NEW.public), L.key_household(NEW.public)):
        assert chain.salt_of(key) == salt
        check_proof(chain, key, salt)
    chain.block([chain.moved_reading(NEW)], dt_s=2)
    assert get_household(chain.kv, NEW.public)["last_reading"]["seq"] == 2
    # A further move from the new key (recovered to another one) goes the same way.
    move(chain, "recover", NEW, RECOVERED)
    chain.block([chain.set_data_key(RECOVERED)], dt_s=2)
    chain.block([chain.moved_reading(RECOVERED)], dt_s=2)
    assert get_household(chain.kv, RECOVERED.public)["last_reading"]["seq"] == 3
    check_proof(chain, L.key_account(RECOVERED.public), derive_household_keys(RECOVERED.seed, 0)[1])
    # Every holder replays every block from genesis, each envelope opened with the data
    # key of the key that sealed it, to the root the chain holds; rebuilt from the
    # entries with their salts, it is the same.
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()
    for validator in VALIDATORS[1:]:
        assert chain.replay(compute_keyring(chain.kv, validator.seed, validator.public)) == chain.state_hash()
