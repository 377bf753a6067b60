"""An auditor appointed by a passed proposal, on a validator's real store (LevelDB):
the node's keyring, and ``node verify --key`` with the auditor's key (docs/privacy.md
"Auditors")."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from node.home.homedir import KEY_FILE, create_network
from node.home.keyfile import load_key
from node.service.node import Node
from node.service.sealing import NoCommuneKey, open_node_keyring
from node.service.verify import VerifyError, verify_home
from tests.unit.service.rotations import make_rotation
from consensus.block import (
    ZERO_ID, Block, Commit, CommitSig, Header, compute_block_id, compute_tx_root, compute_validators_hash,
)
from consensus.vote import PRECOMMIT, Vote
from wire import decode
from tokens import txs as T
from tokens.queries import get_sealing
from tokens.rules_auditors import AuditorProposal
from tokens.sealing import build_sealed, build_set_data_key
from wire import Keypair, sign_message
from wire.seal import seal_link


def commit_at(node: Node, commune: Path, txs: list[bytes], time_s: int) -> None:
    """Commit the next block at chain time ``time_s``, proposed and precommitted by
    validator-0, carrying the last commit (node verify checks it)."""
    vkey = load_key(commune / "validator-0" / KEY_FILE)
    height = node.store.height() + 1
    last = decode(node.store.get_stored_block(height - 1).commit, Commit) if height > 1 else None
    header = Header(chain_id=node.chain_id, height=height, time_ms=time_s * 1000,
                    parent=node.store.last_block_id() or ZERO_ID, tx_root=compute_tx_root(txs),
                    state_hash=node.store.state_hash(), proposer=vkey.public,
                    next_validators=compute_validators_hash(node.app.validator_set(height + 1)), version=1)
    block = Block(header=header, txs=tuple(txs), last_commit=last, evidence=())
    block_id = compute_block_id(block)
    vote = sign_message(Vote(kind=PRECOMMIT, height=height, round=0, block_id=block_id, validator=vkey.public,
                             sig=bytes(64)), node.chain_id, vkey)
    commit = Commit(height=height, round=0, block_id=block_id, sigs=(CommitSig(validator=vkey.public, sig=vote.sig),))
    node.app.commit(block, commit, ())


@pytest.fixture
def commune(tmp_path: Path) -> Path:
    root = tmp_path / "commune"
    create_network(root, name="Testville", insee="12345", validators=1, households=2, base_port=40300,
                   genesis_time=int(time.time()) - 600, seal_payloads=True)
    return root


def test_auditor_holds_the_key_after_the_rotation_and_verifies_the_chain(node, commune, tmp_path):
    chain_id = node.chain_id
    vkey = load_key(commune / "validator-0" / KEY_FILE)
    households = [load_key(commune / f"household-{i}" / KEY_FILE) for i in range(2)]
    auditor, outsider = Keypair(os.urandom(32)), Keypair(os.urandom(32))
    sealing = get_sealing(node.store.state)
    public = bytes.fromhex(sealing["public"])
    t = int(time.time())
    commit_at(node, commune, [build_set_data_key(k, chain_id, 1, 0, public, os.urandom(32)).encode()
                              for k in households], t)
    transfer = T.Transfer(signer=households[0].public, nonce=2, to=households[1].public, cls="kwh", amount=5,
                          memo="", sig=bytes(64))
    proposal = sign_message(T.Propose(signer=households[1].public, nonce=2, param="auditors",
                                      value=AuditorProposal((auditor.public,), ()).to_value(), voting_end=t + 30,
                                      sig=bytes(64)), chain_id, households[1])
    commit_at(node, commune, [build_sealed(transfer, households[0], chain_id, 0, os.urandom(24)).encode(),
                              proposal.encode()], t + 1)
    commit_at(node, commune, [sign_message(T.Vote(signer=k.public, nonce=3, proposal=proposal.id(), choice="yes",
                                                  sig=bytes(64)), chain_id, k).encode() for k in households], t + 2)
    commit_at(node, commune, [], t + 31)       # the tally
    sealing = get_sealing(node.store.state)
    assert [a["key"] for a in sealing["auditors"]] == [auditor.public.hex()] and sealing["rotation_due"]
    # Appointed, but no copy yet: its node is refused at start, its verify in one line.
    with pytest.raises(NoCommuneKey):
        open_node_keyring(node.genesis, node.store.state, auditor)

    old = node.keys.secrets[0]
    new = os.urandom(32)
    # The auditor's node is not running: it published no receive key, its copy goes to
    # its identity key.
    rotation = make_rotation(node.store.state, chain_id, [vkey], 1, new, seal_link(new, old, os.urandom(24)),
                             holders=[vkey.public, auditor.public])
    commit_at(node, commune, [rotation], t + 32)
    assert not get_sealing(node.store.state)["rotation_due"]
    assert sorted(open_node_keyring(node.genesis, node.store.state, auditor).secrets) == [0, 1]
    node.store.close()

    report = verify_home(commune / "validator-0", key=auditor)
    assert report.blocks == 5 and report.txs == 7
    with pytest.raises(VerifyError, match="neither a validator's nor an auditor's"):
        verify_home(commune / "validator-0", key=outsider)
