"""node/service gossip handlers: hostile input gets a verdict, never an exception (DESIGN §7 REJECT/IGNORE)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from consensus.events import Start
from consensus.messages import Proposal
from consensus.vote import PRECOMMIT, PREVOTE, DuplicateVote, Vote
from node.home.homedir import KEY_FILE, create_network, load_home
from node.home.keyfile import load_key
from node.net import Outcome, TxBatch, TxBatcher, Verdict
from node.service.checks import get_consensus_fault
from node.service.node import Node
from node.service.runner import open_store
from tokens.txs import Delegate, MeterReading, Spend, Transfer
from wire import Keypair, sign_message


@pytest.fixture(scope="module")
def commune(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("commune")
    create_network(root, name="Testville", insee="12345", validators=4, households=1, base_port=40000)
    return root


@pytest.fixture(scope="module")
def node(commune: Path):
    home = load_home(commune / "validator-0")
    store = open_store(home)
    yield Node(home, store)
    store.close()


def keys(commune: Path) -> list[Keypair]:
    return [load_key(commune / f"validator-{i}" / KEY_FILE) for i in range(4)]


def vote(key: Keypair, chain_id: bytes, height: int = 1, round: int = 0, kind: int = PREVOTE,
         block_id: bytes | None = b"\x11" * 32) -> Vote:
    v = Vote(kind=kind, height=height, round=round, block_id=block_id, validator=key.public, sig=bytes(64))
    return sign_message(v, chain_id, key)


def reading(commune: Path, chain_id: bytes, signer: Keypair | None = None) -> bytes:
    house = load_home(commune / "household-0").genesis.households[0]
    key = load_key(commune / "household-0" / KEY_FILE)
    tx = MeterReading(signer=house.key, meter=house.meter, seq=1, t=1, import_wh=0, export_wh=0, sig=b"")
    return sign_message(tx, chain_id, signer or key).encode()


def assert_verdict(verdict: object) -> Verdict:
    assert isinstance(verdict, Verdict)
    return verdict


@pytest.mark.parametrize("handler", ["on_tx", "on_consensus", "on_evidence"])
@given(data=st.binary(max_size=2048))
def test_invalid_random_bytes_get_a_verdict_on_every_topic(node, handler: str, data: bytes) -> None:
    assert assert_verdict(getattr(node, handler)("peer", data)).outcome is not Outcome.ACCEPT


@given(st.data())
def test_invalid_mutated_consensus_messages_get_a_verdict(node, commune, data) -> None:
    chain_id = node.chain_id
    good = vote(keys(commune)[1], chain_id).encode()
    index = data.draw(st.integers(0, len(good) - 1))
    byte = data.draw(st.integers(0, 255))
    mutated = good[:index] + bytes([byte]) + good[index + 1:]
    verdict = assert_verdict(node.on_consensus("peer", mutated))
    if mutated != good:
        assert verdict.outcome is not Outcome.ACCEPT


def test_valid_vote_of_a_validator_is_accepted(node, commune) -> None:
    assert node.on_consensus("peer", vote(keys(commune)[2], node.chain_id).encode()).outcome is Outcome.ACCEPT


def test_invalid_vote_of_a_non_validator_is_rejected(node) -> None:
    forger = Keypair(hashlib.sha256(b"forger").digest())
    verdict = node.on_consensus("peer", vote(forger, node.chain_id).encode())
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, "invalid_vote")


def test_invalid_vote_with_a_bad_signature_is_rejected(node, commune) -> None:
    v = dataclasses.replace(vote(keys(commune)[1], node.chain_id), round=1)   # signed for round 0
    assert node.on_consensus("peer", v.encode()).outcome is Outcome.REJECT


def test_invalid_forged_vote_too_far_ahead_is_ignored_not_rejected(node) -> None:
    # Past h+2 the validator set is unknown: an honest relay must not be penalised.
    forger = Keypair(hashlib.sha256(b"forger").digest())
    verdict = node.on_consensus("peer", vote(forger, node.chain_id, height=50).encode())
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, "too_far_ahead")


def test_invalid_proposal_of_a_non_validator_is_rejected(node) -> None:
    forger = Keypair(hashlib.sha256(b"forger").digest())
    block = node.app.propose(1, 0, None, ())          # as validator-0 would build it
    fake = Proposal(height=1, round=0, pol_round=-1, block=block, proposer=forger.public, sig=bytes(64))
    fake = sign_message(fake, node.chain_id, forger)
    assert get_consensus_fault(fake, node.chain_id, node.app.validator_set) == "invalid_vote"
    assert node.on_consensus("peer", fake.encode()).outcome is Outcome.REJECT


def test_evidence_of_an_old_height_within_evidence_age_is_judged(node, commune) -> None:
    key = keys(commune)[3]
    a = vote(key, node.chain_id, kind=PRECOMMIT, block_id=b"\x01" * 32)
    b = vote(key, node.chain_id, kind=PRECOMMIT, block_id=b"\x02" * 32)
    first, second = sorted([a, b], key=lambda v: v.block_id)
    ev = DuplicateVote(vote_a=first, vote_b=second)
    assert get_consensus_fault(ev, node.chain_id, node.app.validator_set) == ""
    assert node.on_evidence("peer", ev.encode()).outcome is Outcome.ACCEPT


def test_invalid_tx_batch_entries_forged_signature_is_rejected(node, commune) -> None:
    forger = Keypair(hashlib.sha256(b"forger").digest())
    verdict = node.on_tx("peer", reading(commune, node.chain_id, signer=forger))
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECT, "bad_signature")


def test_invalid_tx_from_an_unknown_signer_is_rejected(node, commune) -> None:
    forger = Keypair(hashlib.sha256(b"forger").digest())
    tx = sign_message(Transfer(signer=forger.public, nonce=1, to=forger.public, cls="kwh", amount=1,
                               memo="", sig=b""), node.chain_id, forger)
    assert node.on_tx("peer", tx.encode()).outcome is Outcome.REJECT


def test_a_registrar_tx_from_a_non_registrar_is_ignored_not_penalised(node, commune) -> None:
    # A registrar removed one block ago signed it: the peer that relayed it may be honest.
    former = Keypair(hashlib.sha256(b"former registrar").digest())
    tx = sign_message(Spend(signer=former.public, nonce=1, category="roads", to=former.public, amount=1,
                            memo="", sig=b""), node.chain_id, former)
    verdict = node.on_tx("peer", tx.encode())
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, "not_registrar")


def test_invalid_tx_batch_given_as_a_tx_is_malformed(node, commune) -> None:
    batch = TxBatch(txs=(reading(commune, node.chain_id),)).encode()
    assert node.on_tx("peer", batch).outcome is Outcome.REJECT


async def test_a_proposal_of_the_current_height_makes_a_loaded_batch_leave(commune, autojump_clock) -> None:
    # node/net/batcher.py: under load a batch leaves on the cue of a proposal of the
    # current height (once CUE_MIN_AGE_S old), not after its whole delay.
    home, proposer_home = load_home(commune / "household-0"), load_home(commune / "validator-1")
    store, proposer_store = open_store(home), open_store(proposer_home)
    try:
        node = Node(home, store)
        node.engine.step(Start(1, None))
        block = Node(proposer_home, proposer_store).app.propose(1, 0, None, ())
        published: list[float] = []

        async def publish(data: bytes) -> None:
            published.append(trio.current_time())

        batcher = TxBatcher(publish, delay_s=0.75)
        node.net = SimpleNamespace(batcher=batcher)   # the network's batcher, without its host
        proposer = keys(commune)[1]                    # proposer of height 1, round 0
        proposal = sign_message(Proposal(height=1, round=0, pol_round=-1, block=block,
                                         proposer=proposer.public, sig=bytes(64)), node.chain_id, proposer)
        async with trio.open_nursery() as nursery:
            await nursery.start(batcher.run)
            await batcher.add(b"tx-0")                 # idle: leaves at once
            await trio.sleep(0.1)
            start = trio.current_time()
            await batcher.add(b"tx-1")                 # under load: waits for a cue or 0.75 s
            await trio.sleep(0.3)
            assert node.on_consensus("peer", proposal.encode()).outcome is Outcome.ACCEPT
            await trio.sleep(0.01)
            assert published[1:] == [pytest.approx(start + 0.3)]
            nursery.cancel_scope.cancel()
    finally:
        store.close()
        proposer_store.close()


def test_invalid_tx_with_a_nonce_ahead_of_the_chain_is_ignored_not_rejected(node, commune) -> None:
    # DESIGN §7: too far in the future is IGNORE; the signer's clock, not the peer, is at fault.
    key = load_key(commune / "household-0" / KEY_FILE)
    ahead = node.clock.now_ms() + 365 * 86_400_000
    tx = Delegate(signer=key.public, nonce=ahead, topic="*", to=None, sig=b"")
    verdict = assert_verdict(node.on_tx("peer", sign_message(tx, node.chain_id, key).encode()))
    assert (verdict.outcome, verdict.reason) == (Outcome.IGNORE, "nonce_ahead")
