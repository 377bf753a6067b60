"""node/commands/client.py: nonces from the clock or past the committed one, and the
one line a household reads when its clock runs ahead of the chain."""

from __future__ import annotations

import httpx
import pytest

from node.commands import client as C
from node.errors import UserError
from tokens.txs import Delegate
from wire import Keypair

KEY = Keypair(b"\x05" * 32)
CHAIN_MS = 1_760_000_000_000


def node(nonce: int | None, refuse: str | None = None, pending: int | None = None) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/status":
            return httpx.Response(200, json={"time_ms": CHAIN_MS})
        if request.url.path.startswith("/accounts/"):
            if nonce is None:
                return httpx.Response(404, json={"error": "unknown account"})
            return httpx.Response(200, json={"nonce": nonce, "pending_nonce": pending})
        return httpx.Response(400, json={"error": refuse})
    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("committed, expected", [
    (None, CHAIN_MS), (7, CHAIN_MS), (CHAIN_MS + 500_000, CHAIN_MS + 500_001),
], ids=["no_account", "small_nonce", "nonce_signed_under_a_clock_that_ran_ahead"])
def test_next_nonce_is_the_clock_or_past_the_committed_one(monkeypatch, committed, expected):
    monkeypatch.setattr(C, "read_nonce_ms", lambda: CHAIN_MS)
    with node(committed) as client:
        assert C.fetch_next_nonce(client, "http://node", KEY.public) == expected


@pytest.mark.parametrize("pending, expected", [
    (None, CHAIN_MS + 500_001), (CHAIN_MS + 500_003, CHAIN_MS + 500_004), (CHAIN_MS + 400_000, CHAIN_MS + 500_001),
], ids=["nothing_waits", "a_tx_waits_above_the_committed_nonce", "what_waits_is_below"])
def test_next_nonce_goes_past_what_waits_at_the_node(monkeypatch, pending, expected):
    """The household's node still waits for the block of its last transfer: a nonce one
    past the committed one would be spent by it (the e2e sealed-rekey rotation that
    never committed)."""
    monkeypatch.setattr(C, "read_nonce_ms", lambda: CHAIN_MS)
    with node(CHAIN_MS + 500_000, pending=pending) as client:
        assert C.fetch_next_nonce(client, "http://node", KEY.public) == expected


def test_invalid_account_answer_without_a_nonce_is_one_line():
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={}))) as client:
        with pytest.raises(UserError, match="no nonce"):
            C.fetch_next_nonce(client, "http://node", KEY.public)


def test_invalid_nonce_ahead_says_the_clock_is_ahead_and_by_how_much():
    tx = Delegate(signer=KEY.public, nonce=CHAIN_MS + 3_600_000, topic="*", to=None, sig=bytes(64))
    with node(0, refuse="nonce_ahead: nonce is 3600 s ahead of the chain's clock") as client:
        with pytest.raises(UserError) as info:
            C.post_tx(client, "http://node", tx)
    assert str(info.value).startswith("your clock is ahead of the chain's by 3600 s")


def test_invalid_other_refusals_keep_the_node_reason():
    tx = Delegate(signer=KEY.public, nonce=1, topic="*", to=None, sig=bytes(64))
    with node(0, refuse="stale_nonce: nonce 1 is not above the last one, 5") as client:
        with pytest.raises(UserError, match="refused the transaction .400.: stale_nonce"):
            C.post_tx(client, "http://node", tx)
