"""POST /txs against live node processes: a household node takes a batch of signed
meter readings, judges each one, and the ones it took reach a block.

The shared ``livenet`` fixture keeps posting household readings with its own
sequence numbers, and readings must rise in seq and t: readings of ours would make
its feeder's stale (or the reverse). So this module runs its own commune, the same
LiveNet with the feeder left out. The batch goes to household-0, which does not
subscribe to the tx topic (it publishes through gossipsub's fanout): the readings
can only reach a block through the validator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from node.net.messages import TxBatch
from tests.support.livenet import LiveNet
from tests.support.wait import wait_for
from tokens.txs import MeterReading
from wire import Keypair, compute_id, sign_message

pytestmark = pytest.mark.integration

HH0 = "household-0"
INTERVAL_S = 1800
COMMIT_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def quiet_net(tmp_path_factory) -> Iterator[LiveNet]:
    """The live commune with no meter feeder: this module writes the only readings."""
    with LiveNet(tmp_path_factory.mktemp("batch") / "net", feed=False) as net:
        yield net


def wait_early_in_an_interval(net: LiveNet) -> int:
    """The chain time (s) once it is in the first two thirds of a settlement interval.
    A reading's interval is closed to it once the interval ends (plus 300 s grace): this
    leaves the commit at least 900 chain s (7.5 s at SPEED 120) after the post."""
    def early() -> int | None:
        now_s = net.clock.now_ms() // 1000
        return now_s if now_s % INTERVAL_S <= INTERVAL_S * 2 // 3 else None
    # A safety net: at most a third of an interval (5 s at SPEED 120) passes first.
    return wait_for(early, 60, "the first two thirds of a settlement interval")


def readings(net: LiveNet, key: Keypair, meter: str, now_s: int, count: int) -> list[bytes]:
    """Signed cumulative readings 1 s of chain time apart, +1 Wh each (under any cap)."""
    out = []
    for i in range(count):
        tx = MeterReading(signer=key.public, meter=meter, seq=i + 1, t=now_s + i, import_wh=5_000 + i,
                          export_wh=0, sig=bytes(64))
        out.append(sign_message(tx, net.genesis.chain_id, key).encode())
    return out


def tamper(net: LiveNet, key: Keypair, meter: str, seq: int, t: int) -> bytes:
    """A reading that was signed, then had one signature byte changed."""
    tx = sign_message(MeterReading(signer=key.public, meter=meter, seq=seq, t=t, import_wh=5_000 + seq,
                                   export_wh=0, sig=bytes(64)), net.genesis.chain_id, key)
    sig = bytearray(tx.sig)
    sig[0] ^= 0x01
    return dataclasses.replace(tx, sig=bytes(sig)).encode()


def post_batch(net: LiveNet, name: str, txs: list[bytes]) -> httpx.Response:
    return httpx.post(net.url(name) + "/txs", content=TxBatch(txs=tuple(txs)).encode(),
                      headers={"content-type": "application/msgpack"}, timeout=10)


def committed_reading_ids(net: LiveNet, name: str, addr: str) -> set[str]:
    # Readings are their household's: read signed by it (docs/privacy.md).
    doc = net.get_json(name, f"/txs?account={addr}&readings=true&limit=100", signer=net.name_of(addr)) or {"txs": []}
    return {t["id"] for t in doc["txs"] if t["type"] == "tx/reading"}


def test_a_batch_of_readings_is_judged_per_tx_and_what_was_taken_is_committed(quiet_net: LiveNet):
    net = quiet_net
    key, meter, addr = net.key(HH0), net.meter_serial(HH0), net.address(HH0)
    now_s = wait_early_in_an_interval(net)
    good = readings(net, key, meter, now_s, 4)
    bad = tamper(net, key, meter, seq=5, t=now_s + 4)

    # All valid: every one taken.
    first = post_batch(net, HH0, good[:2])
    assert first.status_code == 202, first.text
    assert first.json() == {"ids": [compute_id(tx).hex() for tx in good[:2]], "accepted": 2, "refused": []}

    # A repeat (in this batch, and of the batch before) is no refusal; a bad signature is.
    sent = [good[1], good[2], good[2], bad, good[3]]
    second = post_batch(net, HH0, sent)
    assert second.status_code == 202, second.text
    doc = second.json()
    assert doc["ids"] == [compute_id(tx).hex() for tx in sent]
    assert doc["accepted"] == 4
    assert [(r["index"], r["status"]) for r in doc["refused"]] == [(3, 400)]
    assert doc["refused"][0]["error"].startswith("bad_signature")

    # The four good readings reach a block, through the validator; the tampered one never.
    want = {compute_id(tx).hex() for tx in good}
    wait_for(lambda: committed_reading_ids(net, HH0, addr) >= want, COMMIT_TIMEOUT_S,
             "the batch's readings committed", net.logs)
    assert compute_id(bad).hex() not in committed_reading_ids(net, HH0, addr)
    last = net.get_json(HH0, f"/accounts/{addr}", signer=HH0)["household"]["last_reading"]
    assert (last["seq"], last["t"], last["import_wh"]) == (4, now_s + 3, 5_003)
    # The validator committed the same readings.
    wait_for(lambda: committed_reading_ids(net, "validator-0", addr) >= want, COMMIT_TIMEOUT_S,
             "the validator to show the readings", net.logs)


def test_invalid_batch_after_commit_is_refused_per_tx_not_as_a_whole(quiet_net: LiveNet):
    net = quiet_net
    key, meter, addr = net.key(HH0), net.meter_serial(HH0), net.address(HH0)
    committed = net.get_json(HH0, f"/accounts/{addr}")["household"]["last_reading"]["seq"]
    # An old reading (a replay: seq not above the committed one, or t long settled) is
    # refused with 400 for that tx; the answer itself is still 202.
    stale = sign_message(MeterReading(signer=key.public, meter=meter, seq=max(committed, 1), t=1, import_wh=0,
                                      export_wh=0, sig=bytes(64)), net.genesis.chain_id, key).encode()
    resp = post_batch(net, HH0, [stale])
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 0
    assert [(r["index"], r["status"]) for r in resp.json()["refused"]] == [(0, 400)]
    garbage = httpx.post(net.url(HH0) + "/txs", content=b"\x93\xa1x\x01\x02", timeout=10)
    assert garbage.status_code == 400 and garbage.json()["error"].startswith("malformed")
