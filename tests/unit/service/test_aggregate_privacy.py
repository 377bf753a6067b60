"""Small-group aggregates on a chain that seals payloads (docs/privacy.md "Public
aggregates"): an interval fewer than ``min_aggregate`` households took part in leaks no
value through the public means: ``GET /proofs/{int/ key}``, the light protocol, the
treasury and the totals since genesis. A validator's real Node over LevelDB, sealed
readings committed through its ledger app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from node.home.homedir import KEY_FILE, create_network, load_household_spec
from node.home.keyfile import load_key
from node.api.proofs import get_committed_root
from node.api.views import get_aggregates_view, get_consumers_view, get_intervals_view
from node.service.lightserve import EntriesServer
from node.store.pruning import Pruning
from tests.support.fake_node import asgi_client
from tests.unit.service.test_pruning_node import Run
from tokens import layout as L
from tokens.kv import decode_value
from tokens.lightstate import GetEntries, ProvenEntries
from tokens.queries import get_sealing
from tokens.sealing import build_sealed, build_set_data_key
from tokens.statetree import compute_proof, encode_leaf
from tokens.txs import MeterReading
from wire import decode, sign_message
from wire.merkle import encode_proof, verify_proof

T0 = 1_700_000_000 - 1_700_000_000 % 86_400       # a UTC midnight: the treasury epoch is daily
DELTA = 1800
LEVY_BP = 1000


def make_run(tmp_path: Path, min_aggregate: int) -> Run:
    create_network(tmp_path, name="Testville", insee="12345", validators=1, households=2, base_port=41500,
                   genesis_time=T0, seal_payloads=True, params={"min_aggregate": min_aggregate})
    return Run(tmp_path, "validator-0", Pruning(keep_states=10_000))


class Sealed:
    """Sealed readings of the commune's households, after their data keys."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.keys = {n: load_key(run.commune / n / KEY_FILE) for n in ("household-0", "household-1")}
        # A sealing genesis seals each household's record: its home holds it (household.json).
        self.meters = {k.public: load_household_spec(run.home.genesis, run.commune / n).meter
                       for n, k in self.keys.items()}
        self.seq = {n: 0 for n in self.keys}
        self.index = {n: [0, 0] for n in self.keys}
        sealing = get_sealing(run.store.state)
        chain_id = run.home.genesis.chain_id
        run.commit(T0 + 1, [build_set_data_key(k, chain_id, 1, 0, bytes.fromhex(sealing["public"]),
                                               os.urandom(32)).encode() for k in self.keys.values()])

    def reading(self, name: str, t: int, imp: int = 0, exp: int = 0) -> bytes:
        key = self.keys[name]
        self.seq[name] += 1
        self.index[name][0] += imp
        self.index[name][1] += exp
        inner = MeterReading(signer=key.public, meter=self.meters[key.public], seq=self.seq[name], t=t,
                             import_wh=self.index[name][0], export_wh=self.index[name][1], sig=bytes(64))
        inner = sign_message(inner, self.run.home.genesis.chain_id, key)
        return build_sealed(inner, key, self.run.home.genesis.chain_id, 0, os.urandom(24)).encode()

    def settle_first_interval(self, imp: int = 300, exp: int = 0) -> None:
        """Interval 0: household-0 exports 400 Wh, household-1 imports ``imp`` (and exports
        ``exp``); then the block that settles it."""
        run = self.run
        run.commit(T0 + 10, [self.reading("household-0", T0 + 5), self.reading("household-1", T0 + 5)])
        run.commit(T0 + 900, [self.reading("household-0", T0 + 890, exp=400),
                              self.reading("household-1", T0 + 890, imp=imp, exp=exp)])
        run.commit(T0 + DELTA + 400)


def state_value(run: Run, key: bytes):
    raw = run.store.state.get(key)
    return None if raw is None else decode_value(raw)


def get(run: Run, path: str):
    async def fetch():
        async with asgi_client(run.node) as client:
            return await client.get(path)
    return trio.run(fetch)


def anonymous_entries(run: Run, keys: list[bytes], prefixes: list[bytes]) -> ProvenEntries:
    server = EntriesServer(run.store.snapshot, run.home.genesis.chain_id, now_ms=lambda: T0 * 1000)
    req = GetEntries(height=run.store.height() - 1, keys=tuple(keys), prefixes=tuple(prefixes), requester=None,
                     peer=b"peer", time_ms=T0 * 1000, nonce=os.urandom(16), sig=bytes(64))
    return decode(server.respond(req.encode(), "peer"), ProvenEntries, 10**7)


def one_household_interval(run: Run) -> Sealed:
    """household-0 alone exports 500 Wh in interval [T0, T0+Δ); then blocks settle it."""
    s = Sealed(run)
    run.commit(T0 + 10, [s.reading("household-0", T0 + 5)])
    run.commit(T0 + 900, [s.reading("household-0", T0 + 890, exp=500)])
    return s


@pytest.fixture
def lone(tmp_path: Path):
    run = make_run(tmp_path, 5)
    try:
        yield run, one_household_interval(run)
    finally:
        run.close()


def test_lone_interval_is_not_proven_to_the_public(lone):
    run, _ = lone
    ikey = L.key_interval(T0)
    open_height = run.store.height()
    run.commit(T0 + DELTA + 400)       # settles [T0, T0+Δ)
    run.commit(T0 + DELTA + 401)
    assert state_value(run, ikey)[L.IV_SUM_E] == 500 and state_value(run, ikey)[L.IV_SETTLED]
    # The public aggregates suppress it ...
    row = get(run, f"/aggregates?from={T0}&to={T0}").json()["intervals"][0]
    assert row["suppressed"] and row["sum_e"] is None and row["producers"] == 1
    # ... and no proof of its record, settled or open (running sums), goes to the public.
    for height in (None, open_height):
        path = f"/proofs/{ikey.hex()}" + ("" if height is None else f"?height={height}")
        resp = get(run, path)
        assert resp.status_code in (401, 403), resp.text
        assert "value" not in resp.json()
    # A producer's own "who used my energy" leaves ΣE out too (one other producer's E).
    me = load_key(run.commune / "household-0" / KEY_FILE).public
    doc = get_consumers_view(run.store.history, me, T0 // DELTA, None, 10, named=False)
    assert doc["export_wh"] == 500 and doc["sum_e"] is None
    assert get_consumers_view(run.store.history, me, T0 // DELTA, None, 10, named=True)["sum_e"] == 500
    # Nor through the light protocol, as a key or a prefix listing.
    answer = anonymous_entries(run, [ikey], [L.INTERVAL])
    assert answer.entries == () and answer.prefixes == ()
    assert set(answer.refused) == {ikey, L.INTERVAL}
    # The tree still holds it, salted: the state root is the rescanned one.
    assert run.store.verify_state_hash(run.node.keys) == run.store.state_hash()


def test_lone_interval_leaf_cannot_be_tested_against_guesses(lone):
    """A proof of another key may carry the int/ leaf's value hash (a neighbour's
    absence proof): with the salt it cannot be tested against a guessed record."""
    run, _ = lone
    run.commit(T0 + DELTA + 400)
    run.commit(T0 + DELTA + 401)
    ikey = L.key_interval(T0)
    record = run.store.state.get(ikey)
    assert decode_value(record)[L.IV_SUM_E] == 500
    # Its leaf as an unsalted hash of the record would be is nowhere in the tree ...
    assert run.store.state.get(L.TREE + encode_leaf(ikey, record)[1]) is None
    # ... and its proof, read by the operator, does not check without the salt.
    root = get_committed_root(run.store, run.store.height() - 1)
    value, proof = compute_proof(run.store.state, root, ikey)
    assert value == record
    assert not verify_proof(root, ikey, record, encode_proof(proof))


def test_treasury_and_totals_do_not_move_by_a_lone_interval(lone):
    run, _ = lone
    before = state_value(run, L.TREASURY), state_value(run, L.META_TOTALS)
    run.commit(T0 + DELTA + 400)       # settles: levy 50 Wh, ΣE 500
    assert state_value(run, L.key_interval(T0))[L.IV_LEVY] == 500 * LEVY_BP // 10_000
    assert (state_value(run, L.TREASURY), state_value(run, L.META_TOTALS)) == before
    # The day's epoch runs, but one producer's levy is not released on its own.
    run.commit(T0 + 86_400 + 10)
    assert state_value(run, L.META_NEXT_EPOCH) > T0 + 86_400
    assert (state_value(run, L.TREASURY), state_value(run, L.META_TOTALS)) == before
    funds = {k: decode_value(v) for k, v in run.store.state.iter_prefix(L.FUND)}
    assert all(f[0] == 0 for f in funds.values())
    assert run.store.verify_state_hash(run.node.keys) == run.store.state_hash()


def test_pooled_levies_reach_the_treasury_once_enough_households_made_them(tmp_path: Path):
    run = make_run(tmp_path, 2)
    try:
        s = Sealed(run)
        run.commit(T0 + 10, [s.reading("household-0", T0 + 5), s.reading("household-1", T0 + 5)])
        # Interval 0: household-0 exports, household-1 imports: one of each, below 2.
        run.commit(T0 + 900, [s.reading("household-0", T0 + 890, exp=400),
                              s.reading("household-1", T0 + 890, imp=300)])
        # Interval 1: the other way round.
        run.commit(T0 + DELTA + 900, [s.reading("household-0", T0 + DELTA + 890, imp=100),
                                      s.reading("household-1", T0 + DELTA + 890, exp=200)])
        run.commit(T0 + 2 * DELTA + 400)
        assert state_value(run, L.key_interval(T0 + DELTA))[L.IV_SETTLED]
        assert state_value(run, L.TREASURY)[0] == 0 and state_value(run, L.META_TOTALS) == [0, 0]
        # The epoch releases the day's pool: 2 producers and 2 consumers made it.
        run.commit(T0 + 86_400 + 10)
        levy = 400 * LEVY_BP // 10_000 + 200 * LEVY_BP // 10_000
        funds = {k: decode_value(v) for k, v in run.store.state.iter_prefix(L.FUND)}
        assert sum(f[0] for f in funds.values()) + state_value(run, L.TREASURY)[0] == levy
        assert state_value(run, L.META_TOTALS) == [600, 300 + 100]
        assert run.store.verify_state_hash(run.node.keys) == run.store.state_hash()
    finally:
        run.close()


def test_a_shown_sum_goes_straight_in_and_only_the_hidden_one_waits(tmp_path: Path):
    """Two producers, one importer (min_aggregate 2): ΣE is shown, so its levy and ΣE
    reach the treasury and the totals at once; M (= the one importer's ΣI) waits in the
    pool, and one importer is not enough to release it. Pooling the shown part too
    would give the hidden one back from the release by subtraction."""
    run = make_run(tmp_path, 2)
    try:
        s = Sealed(run)
        s.settle_first_interval(exp=200)
        levy = 400 * LEVY_BP // 10_000 + 200 * LEVY_BP // 10_000
        assert state_value(run, L.TREASURY)[0] == levy and state_value(run, L.META_TOTALS) == [600, 0]
        one = load_key(run.commune / "household-1" / KEY_FILE).public
        assert state_value(run, L.POOL)[L.PL_ALLOCATED:] == [300, sorted(s.keys[n].public for n in s.keys), [one]]
        assert state_value(run, L.POOL)[:L.PL_ALLOCATED] == [0, 0]
        run.commit(T0 + 86_400 + 10)        # the epoch: one importer, the pool waits
        assert state_value(run, L.META_TOTALS) == [600, 0] and state_value(run, L.POOL) is not None
        assert run.store.verify_state_hash(run.node.keys) == run.store.state_hash()
    finally:
        run.close()


def test_public_interval_is_proven_to_anyone_without_a_salt(tmp_path: Path):
    run = make_run(tmp_path, 1)
    try:
        s = Sealed(run)
        s.settle_first_interval()
        before = state_value(run, L.TREASURY)[0]
        assert before == 400 * LEVY_BP // 10_000      # a public interval's levy goes straight in
        run.commit(T0 + DELTA + 401)
        ikey = L.key_interval(T0)
        doc = get(run, f"/proofs/{ikey.hex()}").json()
        value = bytes.fromhex(doc["value"])
        assert decode_value(value)[L.IV_SUM_E] == 400
        assert verify_proof(bytes.fromhex(doc["root"]), ikey, value, bytes.fromhex(doc["proof"]))
        answer = anonymous_entries(run, [ikey], [])
        assert [e.key for e in answer.entries] == [ikey] and answer.refused == ()
    finally:
        run.close()


def test_light_household_keeps_its_own_hidden_intervals_without_their_record(lone):
    """Its household node (light, as on every sealing commune) is refused the lone
    interval's record, yet shows its own reading of it, settled, and archives it when
    it leaves the state."""
    from tests.unit.service.test_light import FakeNet, follow, light

    run, _ = lone
    run.commit(T0 + DELTA + 400)
    run.commit(T0 + DELTA + 401)
    node, client = light(run.commune, FakeNet(run), "household-0")
    me = node.key.public
    try:
        follow(client)
        assert node.store.state.get(L.key_interval(T0)) is None
        assert decode_value(node.store.state.get(L.key_entry(T0, me)))[L.IE_E] == 500
        curve = get_intervals_view(node.store.history, me, T0, T0 + DELTA, 10, light=True)
        assert [(r["start"], r["export_wh"], r["settled"]) for r in curve["intervals"]] == [(T0, 500, True)]
        # Two days on, the interval left the state: its entry goes to the archive.
        run.commit(T0 + 2 * 86_400 + 2 * DELTA)
        run.commit(T0 + 2 * 86_400 + 2 * DELTA + 1)
        follow(client)
        assert node.store.state.get(L.key_entry(T0, me)) is None
        assert node.store.archive.get(L.key_entry(T0, me)) is not None
        curve = get_intervals_view(node.store.history, me, T0, T0 + DELTA, 10, light=True)
        assert [(r["start"], r["export_wh"]) for r in curve["intervals"]] == [(T0, 500)]
    finally:
        node.store.close()


def test_snapshot_chunks_go_to_the_commune_keys_holders_only(lone):
    """A chunk holds every entry in clear (a lone interval's record among them): on a
    sealing chain a validator serves it to a holder's peer id only; the list of
    snapshots and the headers stay public."""
    from node.net import STATE_CHUNK, STATE_SNAPSHOTS, GetState, StateUnavailable, peer_id_of_key
    from node.service.statesync import respond_state
    from node.store.snapshots import SNAPSHOTS_DIR, take_snapshot

    run, _ = lone
    run.commit(T0 + DELTA + 400)
    run.commit(T0 + DELTA + 401)
    take_snapshot(run.store, run.home.path / SNAPSHOTS_DIR, keep=2)
    run.commit(T0 + DELTA + 402)
    listing = respond_state(run.store, run.home.path, GetState(kind=STATE_SNAPSHOTS, height=0, index=0), "anyone")
    assert listing
    chunk = GetState(kind=STATE_CHUNK, height=run.store.height() - 1, index=0)
    household = peer_id_of_key(load_key(run.commune / "household-0" / KEY_FILE).public)
    for peer in (None, "12D3KooWSomebodyElse", household):
        with pytest.raises(StateUnavailable, match="validators and auditors only"):
            respond_state(run.store, run.home.path, chunk, peer)
    validator = peer_id_of_key(run.validator.public)
    assert L.key_interval(T0) in respond_state(run.store, run.home.path, chunk, validator)


def test_light_household_shows_the_sums_settlement_flagged_public_without_counts(tmp_path: Path):
    """A light node cannot count the households, but a record its settlement flagged
    public was judged by the validators: its sums are shown, the counts stay null; the
    hidden interval next to it stays suppressed (its record never reached the node)."""
    from tests.unit.service.test_light import FakeNet, follow, light

    run = make_run(tmp_path, 2)
    try:
        s = Sealed(run)
        run.commit(T0 + 10, [s.reading("household-0", T0 + 5, exp=1), s.reading("household-1", T0 + 5, imp=1)])
        run.commit(T0 + 900, [s.reading("household-0", T0 + 890, imp=200, exp=400),
                              s.reading("household-1", T0 + 890, imp=300, exp=100)])
        # Interval 1: household-0 alone.
        run.commit(T0 + DELTA + 900, [s.reading("household-0", T0 + DELTA + 890, exp=50)])
        run.commit(T0 + 2 * DELTA + 400)
        run.commit(T0 + 2 * DELTA + 401)
        assert L.is_public_interval(state_value(run, L.key_interval(T0)))
        assert not L.is_public_interval(state_value(run, L.key_interval(T0 + DELTA)))
        node, client = light(run.commune, FakeNet(run), "household-0")
        try:
            follow(client)
            doc = get_aggregates_view(node.store.history, T0, T0 + DELTA, 48, light=True)
            assert not doc["counted"]
            rows = {r["start"]: r for r in doc["intervals"]}
            assert (rows[T0]["sum_e"], rows[T0]["sum_i"], rows[T0]["m"], rows[T0]["suppressed"]) == \
                (500, 500, 500, False)
            assert (rows[T0]["participants"], rows[T0]["producers"], rows[T0]["consumers"]) == (None, None, None)
            assert T0 + DELTA not in rows or (rows[T0 + DELTA]["sum_e"], rows[T0 + DELTA]["suppressed"]) == \
                (None, True)
        finally:
            node.store.close()
    finally:
        run.close()
