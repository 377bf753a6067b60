"""A holder's node at start after a cut (node/service/sealing.py ``prune_receive_keys``):
it deletes the receive keys that can only have opened epochs before the latest cut, and
keeps its published one and any key made since that cut (submitted, not yet committed)."""

from __future__ import annotations

import os

from node.home.receivekeys import load_receive_keys, new_receive_key, read_made_after_cut
from node.service.sealing import prune_receive_keys
from tokens import layout as L
from tokens.kv import MemoryKV, encode_value
from tokens.sealing import Keyring
from wire import Keypair

HOLDER = Keypair(bytes(range(32)))


def test_start_after_a_cut_deletes_old_unused_keys_and_keeps_the_published_and_the_pending(tmp_path):
    old, old_secret = new_receive_key(tmp_path)                         # before any cut: opened epoch 0
    published, published_secret = new_receive_key(tmp_path, 0)        # made after an earlier cut
    pending, pending_secret = new_receive_key(tmp_path, 2)              # made after the latest cut
    stale, stale_secret = new_receive_key(tmp_path, 1)                  # made before the latest cut, never published
    assert read_made_after_cut(tmp_path) == {old: None, published: 0, pending: 2, stale: 1}
    state = MemoryKV({L.META_DATA_CUT: encode_value([2, 40]),
                      L.key_receive_key(HOLDER.public): encode_value([7, published, 2])})
    keys = Keyring({2: os.urandom(32)}, holder=(HOLDER.seed, HOLDER.public),
                   receive={old: old_secret, published: published_secret, pending: pending_secret,
                            stale: stale_secret})
    deleted = prune_receive_keys(keys, state, HOLDER, tmp_path)
    assert sorted(p.name for p in deleted) == sorted(f"{k.hex()}.key" for k in (old, stale))
    assert set(keys.receive) == {published, pending}
    assert set(load_receive_keys(tmp_path)) == {published, pending}


def test_no_cut_no_deletion(tmp_path):
    old, old_secret = new_receive_key(tmp_path)
    keys = Keyring({0: os.urandom(32)}, holder=(HOLDER.seed, HOLDER.public), receive={old: old_secret})
    assert prune_receive_keys(keys, MemoryKV(), HOLDER, tmp_path) == []
    assert set(load_receive_keys(tmp_path)) == {old}
