"""A household node's light store (docs/privacy.md "Household nodes").

The same LevelDB layout as a full node's (node/store/layout.py), holding less:

- the header and commit of every height it followed (``H/``, ``c/``, ``h/``, ``i/``),
  each verified against the validator sets from genesis before it is kept, up to
  ``m/header_top``; never a block body;
- under ``s/``, only the state entries it follows (its own and the public ones it
  shows), each proven against the state root of a verified header; ``m/height`` is the
  height of that state and ``m/state_hash`` its root, which the header of height+1
  carries;
- under ``a/``, its own interval history once it left the state.

So the HTTP API, the dashboard and the consent routes read it as they read a full
store. Each step is one synced write batch: a crash loses nothing verified.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from node.store import layout as L
from node.store.layout import Height
from node.store.store import Store, StoreError, _check_hash, _put_writes

ZERO_ID = bytes(L.HASH_LEN)


class LightStore(Store):
    """Open with ``LightStore.open_home``; ``init_light`` on an empty one."""

    def init_light(self, chain_id: bytes, writes: Mapping[bytes, bytes], state_hash: bytes) -> None:
        """Height 0: the genesis entries it follows and the genesis state root."""
        # No state tree is kept here: GET /proofs answers "pruned" at every height.
        self.init_genesis(chain_id, writes, state_hash, {
            L.META_LIGHT: b"\x01", L.META_HEADER_TOP: L.encode_height(0),
            L.META_TREE_FROM: L.encode_height(L.MAX_HEIGHT), L.META_BLOCKS_FROM: L.encode_height(L.MAX_HEIGHT)})

    def header_top(self) -> Height:
        raw = self._db.get(L.META_HEADER_TOP)
        return Height(0) if raw is None else L.decode_height(raw)

    def top_block_id(self) -> bytes:
        """The id of the highest verified header (32 zero bytes at genesis)."""
        top = self.header_top()
        return ZERO_ID if top == 0 else self.block_id(top)

    def add_headers(self, headers: Sequence[tuple[int, bytes, bytes, bytes]]) -> None:
        """Verified (height, block id, header bytes, commit bytes), consecutive from the
        top, in one synced batch."""
        top = self.header_top()
        batch = self._db.write_batch(sync=True)
        for height, block_id, header, commit in headers:
            if height != top + 1:
                raise StoreError(f"cannot keep the header of height {height}: the top is {top}")
            _check_hash(block_id, "block id")
            batch.put(L.key_header(height), header)
            batch.put(L.key_commit(height), commit)
            batch.put(L.key_block_id(height), block_id)
            batch.put(L.key_height_of(block_id), L.encode_height(height))
            top = height
        batch.put(L.META_HEADER_TOP, L.encode_height(top))
        batch.write()

    def set_state(self, height: int, state_hash: bytes, writes: Mapping[bytes, bytes | None],
                  archive: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """The followed entries as of ``height`` (proven against ``state_hash``, which the
        kept header of height+1 carries), and what left the state into the archive."""
        _check_hash(state_hash, "state hash")
        if not self.height() <= height < self.header_top():
            raise StoreError(f"cannot hold the state of height {height}: at {self.height()}, headers "
                             f"up to {self.header_top()}")
        batch = self._db.write_batch(sync=True)
        _put_writes(batch, writes)
        for key, value in archive:
            batch.put(L.key_archive(key), value)
        batch.put(L.META_HEIGHT, L.encode_height(height))
        batch.put(L.META_STATE_HASH, state_hash)
        if height > 0:
            batch.put(L.META_BLOCK_ID, self.block_id(height))
        batch.write()
        self._height, self._state_hash = Height(height), state_hash
