"""A household node in light mode through its real code over a fake link (docs/privacy.md
"Household nodes"): a real commune, a validator's real LevelDB store with blocks and
real commits, the validator's real responders (``respond_state``, ``EntriesServer``),
and the household's ``LightClient`` on a real light store; the production HTTP app over
the ``LightNode``. The libp2p path is tests/integration/node/test_light_live.py."""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path

import pytest
import trio

from consensus.lightsync import SignedHeaders
from node.consent.signed import NONCE_BYTES, sign_target
from node.home.homedir import KEY_FILE, load_home
from node.home.keyfile import load_key
from node.net import STATE_HEADERS, GetState, PeerUnavailable, StateUnavailable
from node.service.errors import ServiceError
from node.service import lightclient
from node.service.lightclient import LightClient
from node.service.lightnode import LightNode, check_not_validator, open_light_store
from node.service.lightserve import EntriesServer
from node.service.statesync import respond_state
from node.store import layout as SL
from node.store.pruning import Pruning
from tests.support.fake_node import asgi_client
from tests.unit.service.test_pruning_node import GENESIS_TIME, RETENTION_S, Run, commune  # noqa: F401 (fixture)
from tokens import layout as L
from tokens.kv import decode_value, encode_value
from tokens.lightstate import GetEntries, ProvenEntries
from tokens.visibility import is_readable_by
from consensus.block import Block
from wire import MAX_BLOCK_BYTES, decode, sign_message

OWN = "household-0"


class FakeNet:
    """Validators answering through their real responders; ``tamper`` rewrites answers."""

    def __init__(self, run: Run, peers: tuple[str, ...] = ("validator",), tamper=None) -> None:
        self.run, self.peers = run, peers
        self.tamper = tamper or {}
        self.banned: dict[str, str] = {}
        self.peer_id = "12D3KooWLightHousehold"
        # The validator's keyring, as node run gives it: on a chain that seals, a household's
        # delivery point entries are found under the commune key (tokens/indexkeys.py).
        # ``run``: a Run, or a validator's Node itself (tests/unit/service/test_light_sealing.py).
        node = getattr(run, "node", run)
        self.servers = {p: EntriesServer(run.store.snapshot, run.home.genesis.chain_id,
                                         keyring=lambda: node.keys) for p in peers}
        self.asked: list[tuple[str, str]] = []

    def peer_heights(self) -> dict[str, int]:
        return {p: self.run.store.height() for p in self.peers}

    def banned_peers(self) -> list[str]:
        return sorted(self.banned)

    def ban_peer(self, peer: str, reason: str) -> None:
        self.banned[peer] = reason

    async def request_state(self, peer: str, kind: int, height: int = 0, index: int = 0) -> bytes:
        self.asked.append((peer, "state"))
        try:
            data = respond_state(self.run.store, self.run.home.path, GetState(kind=kind, height=height, index=index))
        except StateUnavailable as exc:
            raise PeerUnavailable(str(exc)) from None
        rewrite = self.tamper.get((peer, kind))
        return rewrite(data) if rewrite else data

    async def request_entries(self, peer: str, data: bytes) -> bytes:
        self.asked.append((peer, "entries"))
        try:
            answer = self.servers[peer].respond(data, self.peer_id)
        except StateUnavailable as exc:
            raise PeerUnavailable(str(exc)) from None
        rewrite = self.tamper.get((peer, "entries"))
        return rewrite(answer) if rewrite else answer


def feed(run: Run, blocks: int) -> None:
    """Household-0 exports and household-3 imports in two intervals, then idle blocks
    until both have left the state (RETENTION_S after their end)."""
    t0 = GENESIS_TIME
    run.commit(t0 + 1, [run.reading(n, t0 + 1, 0, 0) for n in ("household-0", "household-3")])
    for n in (1, 2, 3):
        t = t0 + 1 + n * 900
        run.commit(t + 1, [run.reading("household-0", t, 0, 100 * n), run.reading("household-3", t, 60 * n, 0)])
    for i in range(blocks):
        run.commit(t0 + 2 * 1800 + 400 + i * 60)


def light(commune: Path, net: FakeNet, name: str = OWN) -> tuple[LightNode, LightClient]:
    home = load_home(commune / name)
    node = LightNode(home, open_light_store(home))
    client = LightClient(home, node.store, net, node.key, node.notify_stored)
    return node, client


def follow(client: LightClient) -> None:
    async def steps():
        while await client.step():
            pass
    trio.run(steps)


@pytest.fixture
def validator(commune: Path):
    run = Run(commune, "validator-0", Pruning())
    yield run
    run.close()


def own_key(commune: Path, name: str = OWN) -> bytes:
    return load_key(commune / name / KEY_FILE).public


def test_follows_headers_and_holds_only_its_own_and_public_entries(commune: Path, validator: Run):
    feed(validator, 6)
    node, client = light(commune, FakeNet(validator))
    me = own_key(commune)
    try:
        follow(client)
        store, full = node.store, validator.store
        assert store.header_top() == full.height() and store.height() == full.height() - 1
        assert store.block(1) is None and store.pruned_header(full.height()) is not None
        # Its own entries are the validator's, byte for byte (proven at height top-1).
        # Its state root is the one the newest header carries: the validator's after top-1.
        assert store.state_hash() == decode(full.block(full.height()), Block, MAX_BLOCK_BYTES).header.state_hash
        for key in (L.key_account(me), L.key_household(me)):
            assert store.state.get(key) is not None
        assert decode_value(store.state.get(L.key_household(me)))[L.HH_EXPORT] == 300
        # Nothing it holds is another household's: every entry is public or its own.
        held = list(store.state.iter_prefix(b""))
        assert held and all(is_readable_by(full.state, key, me) for key, _ in held)
        others = [own_key(commune, n) for n in ("household-1", "household-2", "household-3")]
        assert not [key for key, _ in held for other in others if other in key]
    finally:
        node.store.close()


def test_api_shows_its_balance_and_curve_and_the_archive_keeps_what_left_the_state(commune: Path, validator: Run):
    feed(validator, 4)
    node, client = light(commune, FakeNet(validator))
    me = own_key(commune).hex()
    try:
        follow(client)              # while both intervals are still in the state
        for i in range(RETENTION_S // 60 + 5):
            validator.commit(GENESIS_TIME + 2 * 1800 + 700 + i * 60)
        follow(client)              # they left it: archived from what it held

        def signed(path: str) -> dict[str, str]:
            """Its household reads its own data by its signature (docs/privacy.md)."""
            return sign_target(node.key, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES))

        async def read():
            curve_path = f"/households/{me}/intervals?from={GENESIS_TIME}&to={GENESIS_TIME + 1800}"
            async with asgi_client(node) as http:
                return ((await http.get(f"/accounts/{me}", headers=signed(f"/accounts/{me}"))).json(),
                        (await http.get(curve_path, headers=signed(curve_path))).json(),
                        (await http.get("/status")).json(), (await http.get("/proofs/7472656173757279")))
        account, curve, status, proof = trio.run(read)
        full_account = decode_value(validator.store.state.get(L.key_account(bytes.fromhex(me))))
        assert account["balances"]["kwh"] == full_account[0] > 0
        assert [(r["start"] - GENESIS_TIME, r["export_wh"], r["settled"]) for r in curve["intervals"]] == \
            [(0, 100, True), (1800, 200, True)]
        assert node.store.state.get(L.key_entry(GENESIS_TIME, bytes.fromhex(me))) is None
        assert node.store.archive.get(L.key_entry(GENESIS_TIME, bytes.fromhex(me))) is not None
        assert status["light"] is True and status["height"] == validator.store.height() - 1
        assert proof.status_code == 410 and "light mode" in proof.json()["error"]
    finally:
        node.store.close()


def test_reopens_as_it_was_and_goes_on(commune: Path, validator: Run):
    feed(validator, 3)
    node, client = light(commune, FakeNet(validator))
    follow(client)
    top, root = node.store.header_top(), node.store.state_hash()
    node.store.close()
    validator.commit(GENESIS_TIME + 9000)
    node, client = light(commune, FakeNet(validator))
    try:
        assert node.store.header_top() == top and node.store.state_hash() == root
        follow(client)
        assert node.store.header_top() == top + 1
    finally:
        node.store.close()


def flip_value(data: bytes) -> bytes:
    """An answer whose first proven value is changed: the proof no longer reaches the root."""
    answer = decode(data, ProvenEntries, len(data))
    first = next(e for e in answer.entries if e.value)
    forged = dataclasses.replace(first, value=first.value[:-1] + bytes([first.value[-1] ^ 1]))
    return dataclasses.replace(answer, entries=(forged,) + tuple(e for e in answer.entries if e is not first)).encode()


def test_invalid_proof_bans_the_peer_and_another_one_is_asked(commune: Path, validator: Run, monkeypatch):
    feed(validator, 3)
    net = FakeNet(validator, peers=("zz-liar", "aa-honest"), tamper={("zz-liar", "entries"): flip_value})
    # Peers are asked in random order: here the liar first.
    monkeypatch.setattr(lightclient.random, "shuffle", lambda peers: peers.sort(reverse=True))
    node, client = light(commune, net)
    try:
        follow(client)
        assert list(net.banned) == ["zz-liar"] and "does not reach the state root" in net.banned["zz-liar"]
        assert ("aa-honest", "entries") in net.asked
        # The liar's headers were the real ones (each checked), so they were kept.
        assert node.store.height() == validator.store.height() - 1
        assert node.store.state.get(L.key_account(own_key(commune))) == \
            validator.store.state.get(L.key_account(own_key(commune)))
    finally:
        node.store.close()


def forge_header(data: bytes) -> bytes:
    """Headers with a changed state root: the validators' commit signs another block id."""
    headers = decode(data, SignedHeaders, len(data)).headers
    last = headers[-1]
    forged = dataclasses.replace(last, header=dataclasses.replace(last.header, state_hash=bytes(32)))
    return SignedHeaders(headers=headers[:-1] + (forged,)).encode()


def test_invalid_forged_header_bans_the_peer_and_keeps_nothing_of_it(commune: Path, validator: Run):
    feed(validator, 3)
    net = FakeNet(validator, peers=("zz-forger",), tamper={("zz-forger", STATE_HEADERS): forge_header})
    node, client = light(commune, net)
    try:
        follow(client)
        assert list(net.banned) == ["zz-forger"]
        assert node.store.header_top() == 0 and node.store.height() == 0
    finally:
        node.store.close()


def request(commune: Path, validator: Run, keys, peer="12D3KooWLightHousehold", signer=OWN, **changes) -> bytes:
    key = load_key(commune / signer / KEY_FILE)
    req = GetEntries(height=validator.store.height() - 1, keys=tuple(keys), prefixes=(), requester=key.public,
                     peer=peer.encode(), time_ms=changes.pop("time_ms", None) or time.time_ns() // 10**6,
                     nonce=changes.pop("nonce", bytes(16)), sig=b"")
    return sign_message(dataclasses.replace(req, **changes), validator.home.genesis.chain_id, key).encode()


def test_server_answers_own_and_public_entries_and_refuses_another_households(commune: Path, validator: Run):
    feed(validator, 2)
    server = EntriesServer(validator.store.snapshot, validator.home.genesis.chain_id)
    me, other = own_key(commune), own_key(commune, "household-3")
    data = server.respond(request(commune, validator, [L.key_account(me), L.TREASURY, L.key_account(other),
                                                       L.key_entry(GENESIS_TIME, other)]), "12D3KooWLightHousehold")
    answer = decode(data, ProvenEntries, len(data))
    assert [e.key for e in answer.entries] == [L.key_account(me), L.TREASURY]
    assert set(answer.refused) == {L.key_account(other), L.key_entry(GENESIS_TIME, other)}
    # Nothing of household-3's reaches the asker but the keys it named itself.
    assert other not in b"".join(e.key + (e.value or b"") + e.proof for e in answer.entries)


@pytest.mark.parametrize("case, match", [
    ("replayed", "replayed nonce"),
    ("other peer", "names another peer"),
    ("stale", "more than a minute off"),
    ("bad signature", "bad signature"),
])
def test_invalid_entries_request_is_refused(commune: Path, validator: Run, case: str, match: str):
    feed(validator, 1)
    server = EntriesServer(validator.store.snapshot, validator.home.genesis.chain_id)
    data = request(commune, validator, [L.TREASURY], nonce=b"\x07" * 16)
    if case == "replayed":
        server.respond(data, "12D3KooWLightHousehold")
    elif case == "other peer":
        data = request(commune, validator, [L.TREASURY], peer="12D3KooWSomeoneElse")
    elif case == "stale":
        data = request(commune, validator, [L.TREASURY], time_ms=1_000)
    else:
        data = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(StateUnavailable, match=match):
        server.respond(data, "12D3KooWLightHousehold")


def test_anonymous_request_gets_public_entries_only(commune: Path, validator: Run):
    feed(validator, 1)
    server = EntriesServer(validator.store.snapshot, validator.home.genesis.chain_id)
    me = own_key(commune)
    req = GetEntries(height=validator.store.height() - 1, keys=(L.TREASURY, L.key_account(me)), prefixes=(L.FUND,),
                     requester=None, peer=b"anon", time_ms=time.time_ns() // 10**6, nonce=bytes(16),
                     sig=bytes(64))
    answer = decode(server.respond(req.encode(), "anon"), ProvenEntries, 1 << 22)
    assert [e.key for e in answer.entries] == [L.TREASURY] and answer.refused == (L.key_account(me),)
    assert answer.prefixes[0].complete and len(answer.prefixes[0].entries) == 6


def test_invalid_light_mode_for_a_validator_or_a_full_home(commune: Path, validator: Run):
    home = load_home(commune / "validator-0")
    with pytest.raises(ServiceError, match="validator cannot run in light mode"):
        open_light_store(home)
    Run(commune, "household-1", Pruning()).close()      # a full household node's home
    with pytest.raises(ServiceError, match="full node's store"):
        open_light_store(load_home(commune / "household-1"))
    fresh = load_home(commune / "household-2")
    store = open_light_store(fresh)
    try:
        check_not_validator(fresh, store)
        with pytest.raises(ServiceError, match="validator cannot run in light mode"):
            check_not_validator(home, store)
    finally:
        store.close()


def test_invalid_verify_of_a_light_home(commune: Path, validator: Run):
    from node.service.verify import VerifyError, verify_home
    feed(validator, 2)
    node, client = light(commune, FakeNet(validator))
    follow(client)
    node.store.close()
    with pytest.raises(VerifyError, match="light mode holds no block to replay"):
        verify_home(commune / OWN)


def test_e2e_light_store_check_names_what_the_validators_tree_holds(commune: Path, validator: Run):
    """node/e2e/checks.py: a light store whose own entry is not the validator's is
    reported with what the validator's tree holds at the light node's root, which tells
    a light-side fault from a validator whose entries left its own tree."""
    from node.e2e.checks import check_light_store
    feed(validator, 6)
    node, client = light(commune, FakeNet(validator))
    me = own_key(commune)
    try:
        follow(client)
        store = node.store
        assert check_light_store(OWN, store, me, validator.store).violations == []
        start = min(L.from_u64(k[len(L.INTERVAL_ENTRY):len(L.INTERVAL_ENTRY) + 8])
                    for k, _ in store.state.iter_prefix(L.INTERVAL_ENTRY) if k.endswith(me))
        key = L.key_entry(start, me)
        held = decode_value(store.state.get(key))
        store._db.put(SL.STATE + key, encode_value([held[0] + 7, *held[1:]]))     # not what the chain holds
        [violation] = check_light_store(OWN, store, me, validator.store).violations
        assert f"interval {start}: its own entry" in violation
        assert f"the validators' tree at the light node's height {store.height()} holds {held[:4]}" in violation
    finally:
        node.store.close()
