"""A co-signed ``RotateDataKey`` for the service tests, sealed as ``validator
rotate-data-key`` seals it: each holder's copy to its published receive key, or to its
identity key if it published none (docs/privacy.md "Receive keys")."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

from tokens import txs as T
from tokens.kv import KV
from tokens.sealing import read_receive_keys, seal_to_holders
from wire import Keypair
from wire.crypto import signing_bytes
from wire.seal import compute_commune_public


def make_rotation(state: KV, chain_id: bytes, signers: Sequence[Keypair], epoch: int, new: bytes, link: bytes,
                  holders: Sequence[bytes] | None = None, receive: Mapping[bytes, bytes] | None = None) -> bytes:
    """Epoch ``epoch`` of secret ``new`` sealed to ``holders`` (default: the signers),
    co-signed by every signer; ``receive`` overrides the published receive keys (one
    published in the same block, before the rotation)."""
    holders = tuple(sorted(holders or (k.public for k in signers)))
    published = {h: record[0] for h, record in read_receive_keys(state).items()}
    published.update(receive or {})
    sealed, named = seal_to_holders(holders, published, new, [os.urandom(32) for _ in holders])
    tx = T.RotateDataKey(nonce=epoch, public=compute_commune_public(new), holders=holders, sealed=sealed,
                         receive=named, link=link, sigs=())
    sigs = tuple(T.ValidatorSig(validator=k.public, sig=k.sign(signing_bytes(chain_id, tx)))
                 for k in sorted(signers, key=lambda k: k.public))
    return dataclasses.replace(tx, sigs=sigs).encode()
