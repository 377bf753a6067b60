"""The meter and PRM index keys (tokens/indexkeys.py, docs/privacy.md "What stays in the state").

On a chain that seals, ``meter/`` and ``prm/`` are keyed by a hash under the commune key:
no state key holds a serial or a PRM, and a proof of a guessed one shows nothing. Every
lookup still finds its household. A chain that does not seal keeps its keys, and so its
state roots, byte for byte."""

from __future__ import annotations

import pytest

from tests.unit.tokens.commune import GENESIS_TIME, REGISTRAR, Chain, make_genesis
from tests.unit.tokens.membership import NEW, NEXT, deregister, register, rotate
from tests.unit.tokens.test_reconcile import consent, day_one, reconcile
from tests.unit.tokens.test_sealing import SECRET, SealChain
from tokens import genesis_writes, get_account, get_household, get_rescanned_state_hash
from tokens import layout as L
from tokens import txs as T
from tokens.indexkeys import (
    compute_index_entry, derive_index_key, key_consent_entry, key_meter_entry, key_reconcile_stats_entry,
    read_index_key,
)
from tokens.kv import MemoryKV, decode_value
from tokens.queries_reconcile import get_household_reconciliation, get_reconciliation
from tokens.sealing import Keyring, MissingCommuneKey
from tokens.statetree import compute_proof
from tokens.visibility import get_entry_reader, is_readable_by
from wire.seal import derive_aggregate_key

HALF = 1800


@pytest.fixture
def chain() -> SealChain:
    c = SealChain()
    c.block([c.set_data_key(k) for k in c.households])
    return c


def records(chain: Chain) -> dict[bytes, list]:
    return {key[len(L.HOUSEHOLD):]: decode_value(raw) for key, raw in chain.kv.iter_prefix(L.HOUSEHOLD)}


def registration(chain: SealChain, key: bytes, meter: str, prm: str) -> bytes:
    return chain.registrar_tx(T.RegisterHousehold, REGISTRAR, key=key, meter=meter, prm=prm, label="Nouveaux", kva=6,
                              peak_w=0)


def test_a_sealing_chain_holds_no_key_a_guessed_serial_or_prm_finds(chain):
    # A newcomer, a meter change (its old serial leaves the index), a household gone.
    chain.block([registration(chain, NEXT.public, "021499990001", "30000099990001"),
                 chain.registrar_tx(T.UpdateHousehold, REGISTRAR, key=chain.households[1].public,
                                    meter="021477770001", kva=9, peak_w=0, solidarity=False)])
    chain.block([deregister(chain, chain.households[2])])
    held = records(chain)
    assert len(held) == 4 and NEXT.public in held and chain.households[2].public not in held
    identifiers = [(hh[L.HH_METER], hh[L.HH_PRM]) for hh in held.values()]
    identifiers += [("021400000001", "30000000000001"), ("021400000002", "30000000000002")]    # moved, left
    keys = [key for key, _ in chain.kv.iter_prefix(b"")]
    root = chain.state_hash()
    for meter, prm in identifiers:
        for text in (meter, prm):
            assert not any(text.encode() in key for key in keys), text
        for key in (L.key_meter(meter), L.key_prm(prm)):
            assert chain.kv.get(key) is None
            assert compute_proof(chain.kv, root, key)[0] is None     # a guess is proven absent
    # The entries are there, one per household, under a 32-byte hash each.
    for prefix in (L.METER, L.PRM):
        entries = list(chain.kv.iter_prefix(prefix))
        assert sorted(decode_value(raw) for _, raw in entries) == sorted(held)
        assert all(len(key) == len(prefix) + 32 for key, _ in entries)
    for addr, hh in held.items():
        assert chain.get(chain.meter_entry(hh[L.HH_METER])) == addr == chain.get(chain.prm_entry(hh[L.HH_PRM]))
    # Keyed by the commune key, not by a hash anyone computes: another key finds nothing.
    other = derive_index_key(derive_aggregate_key(b"\x05" * 32))
    assert chain.kv.get(compute_index_entry(L.PRM, identifiers[0][1], other)) is None
    assert get_rescanned_state_hash(chain.kv, chain.keys) == root
    assert chain.replay(chain.keys) == root


def test_lookups_by_serial_and_prm_still_work_on_a_sealing_chain(chain):
    h0, h1 = chain.households[0], chain.households[1]
    # A PRM or a serial taken is refused, sealed as the registration is.
    chain.expect_invalid(registration(chain, NEXT.public, "021499990001", "30000000000000"), "prm_in_use")
    chain.expect_invalid(registration(chain, NEXT.public, "021400000000", "30000099990001"), "meter_in_use")
    # A meter change moves the serial: the new one reads and is credited, the old is free.
    chain.block([chain.registrar_tx(T.UpdateHousehold, REGISTRAR, key=h1.public, meter="021477770001", kva=9,
                                    peak_w=6000, solidarity=False)])
    chain.expect_invalid(registration(chain, NEXT.public, "021477770001", "30000099990001"), "meter_in_use")
    chain.block([registration(chain, NEXT.public, "021400000001", "30000099990001")])
    assert get_household(chain.kv, NEXT.public)["meter"] == "021400000001"

    def reading(i: int, meter: str, seq: int, t: int, imp: int, exp: int) -> bytes:
        key = chain.households[i]
        return chain.seal(T.MeterReading(signer=key.public, meter=meter, seq=seq, t=t, import_wh=imp, export_wh=exp,
                                         sig=bytes(64)), key)
    t0 = GENESIS_TIME + HALF                          # an interval of its own, after the setup blocks
    chain.block([chain.registrar_tx(T.Consent, REGISTRAR, prm="30000000000000", granted=True, memo="")],
                at=t0 - 10)
    chain.block([reading(0, "021400000000", 1, t0, 0, 0), reading(1, "021477770001", 1, t0, 0, 0)], at=t0 + 1)
    chain.block([reading(0, "021400000000", 2, t0 + 600, 400, 0), reading(1, "021477770001", 2, t0 + 600, 0, 400)],
                at=t0 + 601)
    chain.block(at=t0 + HALF + 301)                   # the interval settles
    assert get_account(chain.kv, h1.public)["balances"]["kwh"] == 360       # 400 exported, 10 % levy
    assert get_account(chain.kv, h0.public)["balances"]["kwh"] == -400
    # A Reconcile finds household 0 by its PRM, and an unknown PRM is refused.
    chain.expect_invalid(chain.registrar_tx(T.Reconcile, REGISTRAR, prm="30000099998888", start=t0,
                                            export_wh=(), import_wh=(300,)), "unknown_prm")
    chain.block([chain.registrar_tx(T.Reconcile, REGISTRAR, prm="30000000000000", start=t0, export_wh=(),
                                    import_wh=(300,))])
    assert get_account(chain.kv, h0.public)["balances"]["kwh"] == -300
    # Who may read the entries keyed by that PRM (tokens/visibility.py): its household,
    # the one the ``prm/`` entry under the same tag names (no index key needed for that).
    for key in (key_consent_entry(chain.get, chain.keys, True, "30000000000000"),
                key_reconcile_stats_entry(chain.get, chain.keys, True, "30000000000000")):
        assert chain.kv.get(key) is not None
        assert is_readable_by(chain.kv, key, h0.public) and not is_readable_by(chain.kv, key, h1.public)
        assert get_entry_reader(chain.kv, key) == h0.public
    # Keyed by the PRM in clear they are absent, and nobody's but the validators'.
    for key in (L.key_consent("30000000000000"), L.key_reconcile_stats("30000000000000")):
        assert chain.kv.get(key) is None and get_entry_reader(chain.kv, key) is None
    assert is_readable_by(chain.kv, chain.prm_entry("30000000000000"), h0.public)
    assert not is_readable_by(chain.kv, chain.prm_entry("30000000000000"), h1.public)
    # The commune's reconciliation view lists each household by its record's PRM.
    view = get_reconciliation(chain.kv)
    assert (view["households"], view["consenting"]) == (5, 1)
    # Moving out frees the PRM for the next occupant.
    chain.block([deregister(chain, h0)])
    chain.block([registration(chain, NEW.public, "021400000000", "30000000000000")])
    assert get_household(chain.kv, NEW.public)["prm"] == "30000000000000"
    assert get_rescanned_state_hash(chain.kv, chain.keys) == chain.state_hash()


def test_a_recovered_key_keeps_its_indexes(chain):
    # A key recovery moves the household, its meter and PRM entries with it.
    h3 = chain.households[3]
    hh = records(chain)[h3.public]
    chain.block([chain.tx(T.RecoverKey, REGISTRAR, key=h3.public, new_key=NEW.public)])
    chain.block(dt_s=chain.genesis.params["recovery_delay_s"] + 1)
    assert chain.get(chain.meter_entry(hh[L.HH_METER])) == NEW.public == chain.get(chain.prm_entry(hh[L.HH_PRM]))
    chain.expect_invalid(registration(chain, NEXT.public, "021499990001", hh[L.HH_PRM]), "prm_in_use")


def test_the_index_key_needs_the_commune_key():
    genesis, _ = make_genesis(2, commune_secret=SECRET)
    assert genesis.needs_commune_key and not make_genesis(2)[0].needs_commune_key
    with pytest.raises(MissingCommuneKey, match="commune data key"):
        genesis_writes(genesis)
    kv = MemoryKV()
    with pytest.raises(MissingCommuneKey, match="meter and PRM indexes"):
        key_meter_entry(kv.get, None, True, "021400000000")
    with pytest.raises(MissingCommuneKey):
        read_index_key(kv.get, Keyring(), True)         # no secret of epoch 0, no cut
    assert read_index_key(kv.get, None, False) is None


def reconcile_sealed(chain: SealChain) -> int:
    """Households 0 and 2 consent; in one interval 0 exports 500 Wh and 2 imports 500;
    the interval settles; the registrar reconciles both (official 400 and 450 Wh). The
    interval's start."""
    t0 = GENESIS_TIME + HALF
    chain.block([chain.registrar_tx(T.Consent, REGISTRAR, prm=f"300000{i:08d}", granted=True, memo="")
                 for i in (0, 2)], at=t0 - 10)
    chain.block([chain.seal(chain.inner_reading(i, 1, t0, 0, 0), chain.households[i]) for i in (0, 2)], at=t0 + 1)
    chain.block([chain.seal(chain.inner_reading(0, 2, t0 + 600, 0, 500), chain.households[0]),
                 chain.seal(chain.inner_reading(2, 2, t0 + 600, 500, 0), chain.households[2])], at=t0 + 601)
    chain.block(at=t0 + HALF + 301)                   # the interval settles
    result = chain.block([chain.registrar_tx(T.Reconcile, REGISTRAR, prm="30000000000000", start=t0,
                                             export_wh=(400,), import_wh=()),
                          chain.registrar_tx(T.Reconcile, REGISTRAR, prm="30000000000002", start=t0, export_wh=(),
                                             import_wh=(450,))])
    assert [e.kind for e in result.events].count("reconciled") == 2
    return t0


def test_a_sealing_chain_keys_consent_and_reconciliation_by_no_prm(chain):
    """docs/privacy.md "What stays in the state": ``cons/`` and ``rcs/`` are keyed by the
    tag of the delivery point's ``prm/`` entry, a hash under the commune key; the
    validators' views and the visibility table still find each household's."""
    reconcile_sealed(chain)
    h0, h2 = chain.households[0], chain.households[2]
    root = chain.state_hash()
    prms = [hh[L.HH_PRM] for hh in records(chain).values()]
    tags = {key[len(L.PRM):]: decode_value(raw) for key, raw in chain.kv.iter_prefix(L.PRM)}
    by_prm = {prefix: [key for key, _ in chain.kv.iter_prefix(prefix)] for prefix in (L.CONSENT, L.RECONCILE_STATS)}
    assert [len(keys) for keys in by_prm.values()] == [2, 2]
    for prefix, keys in by_prm.items():
        for key in keys:
            assert not any(prm.encode() in key for prm in prms), key
            assert len(key) == len(prefix) + 32 and tags[key[len(prefix):]] in (h0.public, h2.public)
    # No state key at all holds a PRM, and one keyed by a guessed PRM is proven absent.
    assert not any(prm.encode() in key for key, _ in chain.kv.iter_prefix(b"") for prm in prms)
    for key in (L.key_consent("30000000000000"), L.key_reconcile_stats("30000000000000")):
        assert compute_proof(chain.kv, root, key)[0] is None
    # The validators' views find each household's entries through its prm/ entry.
    mine = get_household_reconciliation(chain.kv, h0.public)
    assert mine["consent"] is not None and mine["prm"] == "30000000000000"
    assert (mine["totals"]["days"], mine["totals"]["official_export_wh"], mine["totals"]["provisional_export_wh"]) \
        == (1, 400, 500)
    assert get_household_reconciliation(chain.kv, h2.public)["totals"]["official_import_wh"] == 450
    other = get_household_reconciliation(chain.kv, chain.households[1].public)
    assert other["consent"] is None and other["totals"]["days"] == 0
    assert get_reconciliation(chain.kv)["consenting"] == 2
    # Each entry is readable by the household its prm/ entry names, and by no other.
    stats_key = key_reconcile_stats_entry(chain.get, chain.keys, True, "30000000000000")
    assert get_entry_reader(chain.kv, stats_key) == h0.public and not is_readable_by(chain.kv, stats_key, h2.public)
    assert get_rescanned_state_hash(chain.kv, chain.keys) == root
    assert chain.replay(chain.keys) == root


# -- a chain that does not seal: today's keys, byte for byte ----------------------------------------

def clear_scenario() -> Chain:
    """Registration, a meter change, a consent, a move-out and a key rotation."""
    genesis, keys = make_genesis(4, {"recovery_delay_s": 3600})
    chain = Chain(genesis)
    chain.block([register(chain, NEXT, 9)])
    chain.block([chain.registrar_tx(T.UpdateHousehold, REGISTRAR, key=keys[1].public, meter="021477770001", kva=9,
                                    peak_w=0, solidarity=False),
                 chain.registrar_tx(T.Consent, REGISTRAR, prm="30000000000000", granted=True, memo="")])
    chain.block([deregister(chain, keys[2]), rotate(chain, keys[3], NEW)])
    return chain


def test_a_chain_that_does_not_seal_keeps_its_keys_and_roots():
    chain = clear_scenario()
    # The root the code before keyed indexes computed for the same blocks (commit cc2e058).
    assert chain.state_hash().hex() == "2f39e7caf98ea2d1469262b2f2e259c3695cdcdd5340aa042328c0bcdfba8db1"
    meters = {key[len(L.METER):]: decode_value(raw) for key, raw in chain.kv.iter_prefix(L.METER)}
    prms = {key[len(L.PRM):]: decode_value(raw) for key, raw in chain.kv.iter_prefix(L.PRM)}
    held = records(chain)
    assert meters == {hh[L.HH_METER].encode(): addr for addr, hh in held.items()}
    assert prms == {hh[L.HH_PRM].encode(): addr for addr, hh in held.items()}
    assert b"021477770001" in meters and b"021400000001" not in meters and b"30000000000002" not in prms
    for meter in ("021400000000", "021477770001"):
        assert compute_index_entry(L.METER, meter, None) == L.key_meter(meter) == b"meter/" + meter.encode()
    assert key_meter_entry(chain.kv.get, None, False, "021400000000") == b"meter/021400000000"


def test_a_chain_that_does_not_seal_keeps_its_reconciliation_keys_and_roots():
    """Consents, one revoked, and three days of reconciliation on a clear chain: the keys
    are the PRM in clear and the root is the one the code before tags computed."""
    chain, _ = day_one()
    chain.block([], at=GENESIS_TIME + 3 * HALF + 301)
    for day in range(3):
        first = reconcile(chain, 0, GENESIS_TIME + day * HALF, [400 if day == 0 else 1], [0])
        more = [reconcile(chain, 2, GENESIS_TIME, [0], [250]), consent(chain, 1, granted=False)] if day == 0 else []
        chain.block([first, *more])
    # The root main computes for the same blocks (91b0694, before tags).
    assert chain.state_hash().hex() == "92f68900538f715eb5ccab534e7922c5df5c0fe1e3dbf5e2fd298a9e6cc7877c"
    assert sorted(key for prefix in (L.CONSENT, L.RECONCILE_STATS) for key, _ in chain.kv.iter_prefix(prefix)) == [
        b"cons/30000000000000", b"cons/30000000000002", b"cons/30000000000003", b"rcs/30000000000000",
        b"rcs/30000000000002"]
    assert decode_value(chain.kv.get(L.key_reconcile_stats("30000000000000")))[L.RC_DAYS] == 3
    assert get_reconciliation(chain.kv)["flagged"][0]["prm"] == "30000000000000"
