"""Registrar txs and genesis households on a chain that seals payloads (docs/privacy.md
"What is sealed, and what is not", "Genesis households").

A registrar tx that names a household's personal data travels only as a
``CommuneSealed`` (``must_seal`` in clear) and applies by its own rules once opened; the
public registrar txs stay in clear. A genesis that seals keeps each household's key in
clear and its meter, PRM, label, kVA and peak sealed to the commune key of epoch 0,
which only the validators open.
"""

from __future__ import annotations

import dataclasses
import json

import msgpack
import pytest

from tests.unit.tokens.commune import REGISTRAR, VALIDATORS, ZERO_SIG, keypair
from tests.unit.tokens.test_sealing import SECRET, SealChain
from tokens import InvalidTx, check_tx, genesis_writes, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.genesis import GenesisError, HouseholdSpec, open_households, parse_genesis, seal_household
from tokens.indexkeys import compute_index_entry, derive_index_key, key_consent_entry
from tokens.kv import MemoryKV, decode_value
from tokens.sealing import MissingCommuneKey, build_commune_sealed, compute_genesis_keyring
from wire import sign_message
from wire.seal import compute_commune_public, derive_aggregate_key, seal_commune_secret, seal_to, seal_to_commune

NEWCOMER = keypair("newcomer", 1)
METER, PRM, LABEL = "021499990001", "30000099990001", "Famille Martin, 3 rue des Lilas"

# One clear tx of each registrar type that names a household's personal data.
PERSONAL = {
    T.RegisterHousehold: dict(key=NEWCOMER.public, meter=METER, prm=PRM, label=LABEL, kva=6, peak_w=0),
    T.UpdateHousehold: dict(key=NEWCOMER.public, meter=METER, kva=9, peak_w=0, solidarity=True),
    T.Consent: dict(prm=PRM, granted=True, memo="dossier 12"),
    T.Reconcile: dict(prm=PRM, start=0, export_wh=(1,), import_wh=(0,)),
    T.PublicService: dict(beneficiary=NEWCOMER.public, on_call_s=3600, memo="pompiers volontaires"),
    T.PayDebt: dict(household=NEWCOMER.public, cls="kwh", cents=500, ref="VIR-2026-001"),
    T.MarkPaid: dict(payout=bytes(32), ref="VIR-2026-002"),
    T.Deregister: dict(key=NEWCOMER.public, memo="déménagement"),
    T.Issue: dict(cls="kwh", to=NEWCOMER.public, amount=1, memo="déchetterie"),
}


@pytest.fixture
def chain() -> SealChain:
    c = SealChain()
    c.block([c.set_data_key(k) for k in c.households])
    return c


def test_every_personal_registrar_type_is_commune_sealable():
    assert set(PERSONAL) == set(T.COMMUNE_SEALABLE_TYPES)
    # The public ones are not: funds spending, associations, keys, links to other communes.
    for public in (T.Spend, T.RecoverKey, T.RegisterAssociation, T.RemoveAssociation, T.CreateClient):
        assert public not in T.COMMUNE_SEALABLE_SET


@pytest.mark.parametrize("tx_type", list(PERSONAL), ids=lambda t: t.TAG)
def test_a_clear_personal_registrar_tx_is_refused_with_must_seal(chain, tx_type):
    chain.expect_invalid(chain.tx(tx_type, REGISTRAR, **PERSONAL[tx_type]), "must_seal")


def test_sealed_registration_update_consent_service_and_departure_apply_and_name_nothing(chain):
    sealed = [chain.registrar_tx(T.RegisterHousehold, REGISTRAR, **PERSONAL[T.RegisterHousehold])]
    chain.block(sealed)
    record = decode_value(chain.kv.get(L.key_household(NEWCOMER.public)))
    assert (record[L.HH_METER], record[L.HH_PRM], record[L.HH_LABEL]) == (METER, PRM, LABEL)
    assert decode_value(chain.kv.get(chain.prm_entry(PRM))) == NEWCOMER.public
    more = [chain.registrar_tx(T.UpdateHousehold, REGISTRAR, **PERSONAL[T.UpdateHousehold]),
            chain.registrar_tx(T.Consent, REGISTRAR, **PERSONAL[T.Consent]),
            chain.registrar_tx(T.PublicService, REGISTRAR, **PERSONAL[T.PublicService])]
    chain.block(more)
    record = decode_value(chain.kv.get(L.key_household(NEWCOMER.public)))
    assert (record[L.HH_KVA], record[L.HH_SOLIDARITY]) == (9, True)
    assert chain.kv.get(L.key_consent(PRM)) is None                   # keyed by a hash (tokens/indexkeys.py)
    assert chain.get(key_consent_entry(chain.get, chain.keys, True, PRM))[0] == record[L.HH_SINCE]
    assert decode_value(chain.kv.get(L.key_account(NEWCOMER.public)))[1] > 0      # on-call hours credited
    gone = [chain.registrar_tx(T.Deregister, REGISTRAR, **PERSONAL[T.Deregister])]
    chain.block(gone)
    assert decode_value(chain.kv.get(L.key_status(NEWCOMER.public)))[0] == L.KS_DEREGISTERED
    # A passive reader of these blocks: envelopes only, none of the household's data.
    for data in sealed + more + gone:
        tx = T.decode_tx(data)
        assert isinstance(tx, T.CommuneSealed) and tx.signer == REGISTRAR.public
        for secret in (METER, PRM, LABEL, "pompiers", "déménagement", "dossier"):
            assert secret.encode() not in data
        assert NEWCOMER.public not in data
    # Validators and auditors replay it all with the commune key.
    assert chain.replay(chain.keys) == chain.state_hash()
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()


def test_a_sealed_registration_keeps_its_own_refusals(chain):
    taken = dict(PERSONAL[T.RegisterHousehold], meter="021400000000")      # household 0's meter
    chain.expect_invalid(chain.registrar_tx(T.RegisterHousehold, REGISTRAR, **taken), "meter_in_use")
    outsider = keypair("household", 99)
    chain.expect_invalid(chain.registrar_tx(T.RegisterHousehold, outsider, **PERSONAL[T.RegisterHousehold]),
                         "not_registrar")


def test_public_registrar_txs_stay_in_clear(chain):
    # A fund's spending is public by design (DESIGN §4 Spend); an association is public.
    assoc = keypair("association", 1)
    chain.block([chain.tx(T.RegisterAssociation, REGISTRAR, key=assoc.public, name="Les Amis du Four")])
    assert chain.kv.get(L.key_association(assoc.public)) is not None


def test_commune_sealed_that_does_not_open_is_refused_with_its_reason(chain):
    nonce = chain.nonces.get(REGISTRAR.public, 0) + 1
    inner = T.RegisterHousehold(signer=REGISTRAR.public, nonce=nonce, sig=ZERO_SIG, **PERSONAL[T.RegisterHousehold])
    good = build_commune_sealed(inner, REGISTRAR, chain.genesis.chain_id, 0, chain.public, chain.fresh(32))

    def signed(**change) -> bytes:
        return sign_message(dataclasses.replace(good, **change), chain.genesis.chain_id, REGISTRAR).encode()
    other = compute_commune_public(b"\x07" * 32)
    chain.expect_invalid(signed(box=seal_to_commune(other, inner.encode(), chain.fresh(32))), "seal_does_not_open")
    chain.expect_invalid(signed(box=good.box[:-1] + bytes([good.box[-1] ^ 1])), "seal_does_not_open")
    chain.expect_invalid(signed(box=b"\x00" * 10), "seal_does_not_open")
    # Opens, but unpadded: bad padding.
    chain.expect_invalid(signed(box=seal_to(chain.public, inner.encode(), chain.fresh(32))), "seal_does_not_open")
    # Opens and pads, but holds garbage, or a public registrar tx.
    chain.expect_invalid(signed(box=seal_to_commune(chain.public, b"\xc1garbage", chain.fresh(32))),
                         "malformed_payload")
    spend = T.Spend(signer=REGISTRAR.public, nonce=nonce, category="energy", to=NEWCOMER.public, amount=1, memo="",
                    sig=ZERO_SIG)
    chain.expect_invalid(signed(box=seal_to_commune(chain.public, spend.encode(), chain.fresh(32))),
                         "malformed_payload")
    with pytest.raises(ValueError):
        build_commune_sealed(spend, REGISTRAR, chain.genesis.chain_id, 0, chain.public, chain.fresh(32))


# -- genesis households ---------------------------------------------------------------------------

def genesis_doc(sealed: bool, households=None) -> dict:
    keys = [keypair("household", i) for i in range(3)]
    public = compute_commune_public(SECRET)
    specs = households or [HouseholdSpec(k.public, f"0214{i:08d}", f"300000{i:08d}", f"Foyer Dupont {i}", 6, 3000 * i)
                           for i, k in enumerate(keys)]
    doc = {
        "commune": {"name": "Testville", "insee": "99999"}, "genesis_time": 1_750_000_000,
        "validators": [{"name": f"v{i}", "key": v.public.hex(), "addr": f"/ip4/127.0.0.1/tcp/{27000 + i}"}
                       for i, v in enumerate(VALIDATORS[:2])],
        "registrars": [REGISTRAR.public.hex()],
        "sealing": {"public": public.hex(),
                    "sealed": {v.public.hex(): seal_commune_secret(v.public, SECRET, bytes([i + 1]) * 32).hex()
                               for i, v in enumerate(VALIDATORS[:2])}},
    }
    if sealed:
        doc["households"] = [{"key": s.key.hex(), "sealed": seal_household(public, s, bytes([9]) * 32).hex()}
                             for s in specs]
    else:
        doc["households"] = [{"key": s.key.hex(), "meter": s.meter, "prm": s.prm, "label": s.label, "kva": s.kva,
                              "peak_w": s.peak_w} for s in specs]
    return doc


def encode(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def test_a_sealed_genesis_names_no_household_and_opens_to_the_clear_state():
    sealed_bytes, clear_bytes = encode(genesis_doc(True)), encode(genesis_doc(False))
    for i in range(3):
        for secret in (f"0214{i:08d}", f"300000{i:08d}", f"Foyer Dupont {i}"):
            assert secret.encode() not in sealed_bytes and secret.encode() in clear_bytes
    sealed, clear = parse_genesis(sealed_bytes), parse_genesis(clear_bytes)
    assert sealed.seals_households and not clear.seals_households
    assert all(h.meter == h.prm == h.label == "" for h in sealed.households)
    # Nobody without the commune key computes the genesis state...
    with pytest.raises(MissingCommuneKey):
        genesis_writes(sealed)
    outsider = keypair("household", 0)
    assert compute_genesis_keyring(sealed, outsider.seed, outsider.public).secrets == {}
    # ... a genesis validator does, from the genesis file alone: the same entries as clear.
    keys = compute_genesis_keyring(sealed, VALIDATORS[1].seed, VALIDATORS[1].public)
    assert keys.secrets == {0: SECRET}
    opened = MemoryKV(genesis_writes(sealed, keys))
    # Households in clear on a chain that seals: their index keys need the commune key too.
    with pytest.raises(MissingCommuneKey):
        genesis_writes(clear)
    plain = MemoryKV(genesis_writes(clear, compute_genesis_keyring(clear, VALIDATORS[0].seed, VALIDATORS[0].public)))
    index = derive_index_key(derive_aggregate_key(SECRET))
    for spec in clear.households:
        for key in (L.key_household(spec.key), compute_index_entry(L.METER, spec.meter, index),
                    compute_index_entry(L.PRM, spec.prm, index), L.key_account(spec.key)):
            assert opened.get(key) == plain.get(key) is not None
    assert open_households(sealed, SECRET) == clear.households


def test_bad_sealed_genesis_households_are_refused_in_one_line():
    public = compute_commune_public(SECRET)
    doc = genesis_doc(True)
    # Sealed to another key: parses (nobody but a holder can tell), refused when opened.
    wrong = dict(doc, households=[dict(doc["households"][0], sealed=seal_household(
        compute_commune_public(b"\x05" * 32), HouseholdSpec(b"\x01" * 32, "021400000001", "30000000000001", "x", 6, 0),
        b"\x02" * 32).hex())])
    genesis = parse_genesis(encode(wrong))
    with pytest.raises(GenesisError, match=r"households\[0\]\.sealed: the sealed box does not open"):
        genesis_writes(genesis, compute_genesis_keyring(genesis, VALIDATORS[0].seed, VALIDATORS[0].public))
    # Opens, but not five well-formed fields.
    for payload in (msgpack.packb(["1", "2"]), msgpack.packb(["0214", "3000", "x", 6, 0]), b"\xc1"):
        bad = dict(doc, households=[dict(doc["households"][0], sealed=seal_to_commune(public, payload, b"\x03" * 32).hex())])
        with pytest.raises(GenesisError, match=r"households\[0\]\.sealed"):
            open_households(parse_genesis(encode(bad)), SECRET)
    # Two sealed households with one meter: refused once opened.
    k0, k1 = keypair("household", 0), keypair("household", 1)
    twins = [HouseholdSpec(k.public, "021400000007", f"3000000000000{i}", "x", 6, 0) for i, k in enumerate((k0, k1))]
    with pytest.raises(GenesisError, match="duplicate meter"):
        open_households(parse_genesis(encode(genesis_doc(True, twins))), SECRET)
    # Malformed in the file: refused at parse.
    for entry, why in (({"key": k0.public.hex(), "sealed": "zz"}, "sealed box in hex"),
                       ({"key": k0.public.hex(), "sealed": "00" * 40}, "sealed box in hex"),
                       ({"key": k0.public.hex(), "sealed": "00" * 112, "prm": "30000000000000"}, "only key and sealed")):
        with pytest.raises(GenesisError, match=why):
            parse_genesis(encode(dict(doc, households=[entry])))
    no_sealing = dict(doc)
    del no_sealing["sealing"]
    with pytest.raises(GenesisError, match="needs a genesis that seals"):
        parse_genesis(encode(no_sealing))


def test_a_clear_registrar_tx_check_says_why(chain):
    data = chain.tx(T.RegisterHousehold, REGISTRAR, **PERSONAL[T.RegisterHousehold])
    with pytest.raises(InvalidTx) as info:
        check_tx(chain.kv, chain.genesis, data, (chain.time_s + 1) * 1000, keys=chain.keys)
    assert info.value.reason == "must_seal" and "tx/commune-sealed" in info.value.detail
