"""GET /proofs/{key} on a live node, checked as a light client would (DESIGN §12
"Provable state", docs/state.md): the header that carries the root is committed by a
quorum of the validators, and the proof verifies against that root alone."""

from __future__ import annotations

import httpx

from consensus.block import Commit, CommitSig, Header, compute_block_id, verify_commit
from tests.integration.api.conftest import OPERATOR_TOKEN
from tests.support.livenet import LiveNet
from tests.support.wait import wait_for
from tokens.kv import decode_value
from tokens.layout import key_account
from wire.merkle import verify_proof

HH0 = "household-0"


def get_committed_header(livenet: LiveNet, height: int) -> Header:
    """The header of block ``height``, after checking its commit against the validators."""
    block = livenet.get_json(HH0, f"/blocks/{height}")
    h = block["header"]
    header = Header(chain_id=bytes.fromhex(h["chain_id"]), height=h["height"], time_ms=h["time_ms"],
                    parent=bytes.fromhex(h["parent"]), tx_root=bytes.fromhex(h["tx_root"]),
                    state_hash=bytes.fromhex(h["state_hash"]), proposer=bytes.fromhex(h["proposer"]),
                    next_validators=bytes.fromhex(h["next_validators"]), version=h["version"])
    c = block["commit"]
    commit = Commit(height=c["height"], round=c["round"], block_id=bytes.fromhex(c["block_id"]),
                    sigs=tuple(CommitSig(bytes.fromhex(s["validator"]), bytes.fromhex(s["sig"])) for s in c["sigs"]))
    validators = [bytes.fromhex(v["key"]) for v in livenet.get_json(HH0, "/validators")["validators"] if v["active"]]
    verify_commit(validators, header.chain_id, height, compute_block_id(header), commit)
    return header


def check_proof(livenet: LiveNet, doc: dict) -> bytes | None:
    """The proven value (None: proven absent), after checking it against its header."""
    header = get_committed_header(livenet, doc["header_height"])
    assert doc["header_height"] == doc["height"] + 1
    assert header.state_hash.hex() == doc["root"]
    value = None if doc["value"] is None else bytes.fromhex(doc["value"])
    assert verify_proof(header.state_hash, bytes.fromhex(doc["key"]), value, bytes.fromhex(doc["proof"]))
    return value


def test_an_account_is_proven_against_a_committed_header(livenet: LiveNet):
    wait_for(lambda: livenet.height(HH0) >= 3, 60, "three blocks", livenet.logs)
    key = key_account(livenet.key(HH0).public)
    # A household's entry is proven to that household (by its signature), not to anyone.
    assert livenet.get(HH0, f"/proofs/{key.hex()}").status_code == 401
    doc = livenet.get_json(HH0, f"/proofs/{key.hex()}", signer=HH0)
    value = check_proof(livenet, doc)
    assert value is not None and len(decode_value(value)) == 3      # [kwh, hour, nonce]


def test_absence_and_past_heights_are_proven(livenet: LiveNet):
    wait_for(lambda: livenet.height(HH0) >= 3, 60, "three blocks", livenet.logs)
    absent = httpx.get(f"{livenet.url(HH0)}/proofs/{key_account(bytes(32)).hex()}", timeout=10,
                       headers={"authorization": f"Bearer {OPERATOR_TOKEN}"}).json()
    assert check_proof(livenet, absent) is None
    # A past height within what this household node keeps (the last 10 state versions
    # by default; below, 410: tests/integration/node/test_pruning_live.py).
    past = livenet.height(HH0) - 3
    doc = livenet.get_json(HH0, f"/proofs/{b'meta/height'.hex()}?height={past}")
    assert decode_value(check_proof(livenet, doc)) == past


def test_a_state_no_committed_header_carries_yet_is_404(livenet: LiveNet):
    far = livenet.height(HH0) + 1000
    r = httpx.get(f"{livenet.url(HH0)}/proofs/{b'meta/height'.hex()}", params={"height": far}, timeout=10)
    assert r.status_code == 404 and "header" in r.json()["error"]
    assert httpx.get(f"{livenet.url(HH0)}/proofs/ABCD", timeout=10).status_code == 400
