"""A household node in light mode on a commune that seals payloads, across a rotation of
the commune data key (docs/privacy.md "Sealed payloads", "Household nodes"): it
publishes the household's data key of each epoch, refuses what the validators would
only ignore, and re-seals the readings a rotation overtook in flight. A real validator
Node over LevelDB commits the blocks; the light node follows it through the real
responders (tests/unit/service/test_light.py ``FakeNet``)."""

from __future__ import annotations

import os
import time

import pytest

from node.api.app import TxRefused
from node.meter.sealing import ChainSealing, make_data_key_tx
from node.service.lightnode import LightNode
from tests.unit.service.test_light import FakeNet, follow, light
from tests.unit.service.rotations import make_rotation
from tests.unit.service.test_pending_txs import commit_block
from tests.unit.service.test_sealed_node import commune, household  # noqa: F401 (fixtures)
from tokens import layout as L
from tokens.queries import get_household, get_sealing
from tokens.sealing import build_sealed, open_own_sealed
from tokens.txs import MeterReading, Sealed, SetDataKey, Transfer, decode_tx
from wire import sign_message
from wire.seal import NO_LINK, seal_link


def reading(node, commune, seq: int, epoch: int) -> bytes:
    key, meter = household(node, commune)
    inner = MeterReading(signer=key.public, meter=meter, seq=seq, t=int(time.time()) - 100 + seq, import_wh=1000 + seq,
                         export_wh=0, sig=bytes(64))
    return build_sealed(sign_message(inner, node.chain_id, key), key, node.chain_id, epoch, os.urandom(24)).encode()


def transfer(node, commune, nonce: int, epoch: int) -> bytes:
    key, _ = household(node, commune)
    inner = sign_message(Transfer(signer=key.public, nonce=nonce, to=node.key.public, cls="kwh", amount=1, memo="t",
                                  sig=b""), node.chain_id, key)
    return build_sealed(inner, key, node.chain_id, epoch, os.urandom(24)).encode()


def rotate(node, cut: bool = False) -> list[bytes]:
    """The next epoch of the commune key, sealed to the one validator; ``cut``: linking
    back to nothing (docs/privacy.md "Erasure"), after the validator's node published a
    fresh receive key in the same block."""
    vkey, new = node.key, os.urandom(32)
    epoch = max(node.keys.secrets)
    fresh = node.get_missing_receive_key() if cut else None
    receive = {vkey.public: decode_tx(fresh).public} if fresh else None
    tx = make_rotation(node.store.state, node.chain_id, [vkey], epoch + 1, new,
                       NO_LINK if cut else seal_link(new, node.keys.secrets[epoch], os.urandom(24)), receive=receive)
    return [fresh, tx] if fresh else [tx]


def step(node, commune, client, txs=()) -> None:
    """A block holding ``txs``, an empty one after it (whose header proves its state),
    and the light node follows."""
    commit_block(node, commune, list(txs))
    commit_block(node, commune, [])
    follow(client)


def pending_of(light: LightNode, kind) -> list:
    return [e for e in light.pending.entries() if isinstance(e.tx, kind)]


def refusal(light: LightNode, data: bytes) -> str:
    with pytest.raises(TxRefused) as caught:
        light.submit_tx(data)
    return caught.value.reason


@pytest.fixture
def followed(node, commune):  # noqa: F811 (fixtures)
    """The light node of household-0, following validator-0, with its data key of epoch 0
    in a block."""
    light_node, client = light(commune, FakeNet(node), "household-0")
    try:
        step(node, commune, client)
        yield light_node, client
    finally:
        light_node.store.close()


def commit_data_key(node, commune, light_node, client, epoch: int) -> None:  # noqa: F811
    [entry] = [e for e in pending_of(light_node, SetDataKey) if e.tx.epoch == epoch]
    step(node, commune, client, [entry.data])
    assert light_node.store.state.get(L.key_household_data_key(light_node.key.public, epoch)) is not None


def test_publishes_its_data_key_and_refuses_what_validators_would_only_ignore(node, commune, followed):  # noqa: F811
    light_node, client = followed
    [published] = pending_of(light_node, SetDataKey)
    assert published.tx.epoch == 0
    # Once pending, it does not go twice.
    light_node.publish_data_key()
    assert len(pending_of(light_node, SetDataKey)) == 1
    # Its key is not in a block yet: a sealed reading would wait at the validators.
    assert refusal(light_node, reading(node, commune, 1, 0)).startswith("no_data_key:")
    commit_data_key(node, commune, light_node, client, 0)
    assert light_node.submit_tx(reading(node, commune, 2, 0))
    assert refusal(light_node, reading(node, commune, 3, 1)).startswith("wrong_epoch:")


def test_a_second_data_key_of_an_epoch_is_refused_as_existing(node, commune, followed):  # noqa: F811
    """A meter agent told ``no_data_key`` posts the household's data key too: its node
    has one already (pending, then in a block), and says so."""
    light_node, client = followed
    key, _ = household(node, commune)
    sealing = ChainSealing(0, bytes.fromhex(get_sealing(node.store.state)["public"]))
    agent_key = make_data_key_tx(key, node.chain_id, int(time.time() * 1000), sealing).encode()
    assert refusal(light_node, agent_key).startswith("data_key_exists:")
    commit_data_key(node, commune, light_node, client, 0)
    assert refusal(light_node, agent_key).startswith("data_key_exists:")


@pytest.mark.parametrize("cut", [False, True], ids=["linked", "cut"])
def test_readings_in_flight_across_a_rotation_are_resealed_and_commit(node, commune, followed, cut):  # noqa: F811
    # A cut changes nothing for a household's node: it derives its keys from its key file.
    light_node, client = followed
    commit_data_key(node, commune, light_node, client, 0)
    # Committed, still in its pool until the next recheck: nothing to re-seal.
    done = reading(node, commune, 4, 0)
    light_node.submit_tx(done)
    step(node, commune, client, [done])
    # Acknowledged under epoch 0; the rotation commits before any block holds them.
    in_flight = reading(node, commune, 5, 0)
    light_node.submit_tx(in_flight)
    # Its nonce, free now, will be spent by the new data key (the clock in ms).
    late = transfer(node, commune, light_node.get_committed_nonce() + 1, 0)
    ahead = transfer(node, commune, 2 ** 62, 0)                # a nonce still free after it
    light_node.submit_tx(late)
    light_node.submit_tx(ahead)
    step(node, commune, client, rotate(node, cut))
    assert sorted(node.keys.secrets) == ([1] if cut else [0, 1])
    # It sees epoch 1 and publishes its key; a reading sealed under epoch 0 is refused now.
    assert [e.tx.epoch for e in pending_of(light_node, SetDataKey)] == [0, 1]   # 0 committed, not yet dropped
    assert refusal(light_node, reading(node, commune, 6, 0)).startswith("wrong_epoch:")
    # Nothing re-sealed before its data key of epoch 1 is in a block (the validators
    # would ignore it).
    assert {e.tx.epoch for e in pending_of(light_node, Sealed)} == {0}
    commit_data_key(node, commune, light_node, client, 1)
    sealed = pending_of(light_node, Sealed)
    assert {e.tx.epoch for e in sealed} == {1} and len(sealed) == 2
    inner = {type(open_own_sealed(light_node.key.seed, e.tx)).__name__: open_own_sealed(light_node.key.seed, e.tx)
             for e in sealed}
    assert set(inner) == {"MeterReading", "Transfer"}
    assert inner["MeterReading"] == open_own_sealed(light_node.key.seed, decode_tx(in_flight))
    assert inner["Transfer"].nonce == 2 ** 62        # the one whose nonce the data key spent was dropped
    # The re-sealed reading commits: nothing of it was lost to the rotation.
    [again] = [e for e in sealed if isinstance(open_own_sealed(light_node.key.seed, e.tx), MeterReading)]
    commit_block(node, commune, [again.data])
    assert get_household(node.store.state, light_node.key.public)["last_reading"]["seq"] == 5


def test_a_block_that_moves_a_data_key_makes_the_next_one_due(node, commune, followed):  # noqa: F811
    """A household's node sees a block's state only through the next header: after its
    data key (or a rotation) a quiet commune must still make that header, or the
    household could never seal again (docs/cadence.md)."""
    light_node, client = followed
    assert node.get_wait_s() != 0.0 and not node.is_ready()
    [entry] = pending_of(light_node, SetDataKey)
    commit_block(node, commune, [entry.data])
    assert node.get_wait_s() == 0.0 and node.is_ready()
    commit_block(node, commune, [])
    assert node.get_wait_s() != 0.0
    commit_block(node, commune, rotate(node))
    assert node.get_wait_s() == 0.0
    commit_block(node, commune, [])
    assert node.get_wait_s() != 0.0


def test_a_pending_tx_goes_again_once_per_check_period(node, commune, followed):  # noqa: F811
    """Gossip is best effort: the household's node sends what its state does not show
    committed again after PENDING_CHECK_S, looked at every PENDING_TICK_S (a 30 s tick
    sent some only after 60 s), and not at every tick after that."""
    from node.service.lightnode import PENDING_CHECK_S, PENDING_TICK_S
    light_node, client = followed
    commit_data_key(node, commune, light_node, client, 0)
    light_node.recheck_pending(time.monotonic())        # its data key, committed, leaves the pool
    light_node.submit_tx(reading(node, commune, 6, 0))
    start = time.monotonic()
    assert light_node.recheck_pending(start + PENDING_CHECK_S - 1) == (0, 0)
    assert light_node.recheck_pending(start + PENDING_CHECK_S + 1) == (1, 0)
    assert light_node.recheck_pending(start + PENDING_CHECK_S + 1 + PENDING_TICK_S) == (0, 0)
    assert light_node.recheck_pending(start + 2 * PENDING_CHECK_S + 2) == (1, 0)


def test_an_own_tx_with_a_spent_nonce_is_refused_and_the_next_nonce_goes_past_what_waits(
        node, commune, followed):  # noqa: F811
    """A validator only ignores a tx whose nonce is spent (a copy of one committed looks
    the same): the household's node refuses it with a reason, and its GET /accounts
    ``pending_nonce`` lets a client pick a nonce past its txs still waiting for a block
    (its proven state trails the chain: one past the committed nonce may be spent)."""
    light_node, client = followed
    commit_data_key(node, commune, light_node, client, 0)
    light_node.recheck_pending(time.monotonic())        # its data key, committed, leaves the pool
    own, committed = light_node.key.public, light_node.get_committed_nonce()
    assert committed > 0 and light_node.get_pending_nonce(own) is None
    assert refusal(light_node, transfer(node, commune, committed, 0)).startswith("stale_nonce:")
    light_node.submit_tx(transfer(node, commune, committed + 5, 0))
    light_node.submit_tx(reading(node, commune, 7, 0))          # a reading's seq is no nonce
    light_node.submit_tx(transfer(node, commune, committed + 2, 0))
    assert light_node.get_pending_nonce(own) == committed + 5
    assert light_node.get_pending_nonce(node.key.public) is None    # another's: not its to say
    # A reading alone waiting: nothing a nonce must go past.
    light_node.pending.remove([e.id for e in pending_of(light_node, Sealed)
                               if not isinstance(open_own_sealed(light_node.key.seed, e.tx), MeterReading)])
    assert len(light_node.pending) == 1 and light_node.get_pending_nonce(own) is None
