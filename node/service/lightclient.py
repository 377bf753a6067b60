"""Following the chain as a household node in light mode (docs/privacy.md "Household nodes").

The node trusts genesis and >= 2/3 of each validator set's signatures, nothing else:

1. the validator-set changes from genesis, each signed by the set before it
   (consensus/lightsync.py), kept in the home;
2. every header since, in order, each signed by >= quorum of the set at its height and
   linked to the one before (``verify_header_chain``); no block body is fetched;
3. the entries it follows at the height below the newest header: its own (account,
   household record, key status, ballot, gifts, delegations, interval entries, consent
   and reconciliation) and the public ones it shows, each checked against the state root
   that header carries (tokens/lightstate.py). Its own entries are asked for by a request
   signed with the household key; a validator answers them to nobody else.

A peer that sends a forged header chain or a proof that does not reach the root is
banned and the next peer is asked. A home whose key file now holds the household's new
key (after ``keys rotate`` or a completed recovery: docs/privacy.md "Moving a household
to a new key") follows that key's entries, and its first refresh drops what it held of
the former key's (``get_former_key_writes``); the archive keeps them. Its own interval entries that leave the state
(``history_retention_s``) go to the archive, as a full household node's do.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable

import trio

from consensus.block import Header, compute_block_id
from consensus.errors import InvalidBlock
from consensus.lightsync import (
    MAX_SIGNED_HEADERS, SetChanges, SignedHeaders, TrustedSet, verify_header_chain, verify_set_changes,
)
from node.net import STATE_HEADERS, STATE_SET_CHANGES, NetError
from node.service.statesync import load_set_changes, save_set_changes
from node.store.light import LightStore
from tokens import layout as TL
from tokens.kv import decode_value
from tokens.lightstate import (
    MAX_ENTRY_KEYS, GetEntries, InvalidProof, ProvenEntries, get_own_salt_of, verify_entries,
)
from tokens.queries import get_params
from tokens.visibility import (
    PUBLIC_FOLLOWED_PREFIXES, PUBLIC_KEYS, get_interval_keys, get_own_keys, get_own_prefixes,
)
from wire import MAX_BLOCK_BYTES, DecodeError, Keypair, decode, sign_message
from wire.seal import derive_household_keys

log = logging.getLogger("voisinage.light")

FOLLOW_S = 1.0              # between two looks at the peers' heights
RECHECK_EVERY = 30          # refreshes between two re-reads of every interval held (reconciliation)


class LightError(Exception):
    """A peer could not be followed this time (no answer, a refusal): try another."""


class KeyReplaced(LightError):
    """The proven state says this home's key was replaced (a rotation or a completed
    recovery): the household's entries live under ``new`` now, and this node, which
    follows the key file of its home, has nothing more to follow until it restarts with
    the new key file (docs/privacy.md "Moving a household to a new key")."""

    def __init__(self, new: bytes, height: int) -> None:
        super().__init__(f"this household's key was replaced by {new.hex()[:16]}… at height {height}: put the new "
                         "key file in this node's home as key.json and start the node again")
        self.new = new


def get_replacement(values, own: bytes) -> tuple[bytes, int] | None:
    """(new key, height) when the proven status of ``own`` says it was rotated, else None."""
    raw = values.get(TL.key_status(own))
    status = None if raw is None else decode_value(raw)
    if status is None or status[0] != TL.KS_ROTATED:
        return None
    return status[1], status[2]


def get_followed_keys(store: LightStore, own: bytes, top_time_s: int, full: bool) -> tuple[list[bytes], list[bytes]]:
    """(single keys, prefixes) to read at the next height: public and own entries, and
    the intervals still open, about to leave the state, or (``full``) every one held."""
    state = store.state
    # Its record first: its delivery point entries, asked by its key (``own_prm``), are
    # judged against it in the same answer.
    keys = list(PUBLIC_KEYS) + list(get_own_keys(own))
    params = get_params(state)
    delta, retention = params["settlement_interval_s"], params["history_retention_s"]
    settled = decode_value(state.get(TL.META_SETTLED)) if state.get(TL.META_SETTLED) else 0
    held = [TL.from_u64(k[len(TL.INTERVAL):]) for k, _ in state.iter_prefix(TL.INTERVAL)]
    # Its own entries of intervals whose record it may not hold (docs/privacy.md "Public
    # aggregates"): read again too, so corrections and their leaving the state are seen.
    held += [TL.from_u64(k[len(TL.INTERVAL_ENTRY):len(TL.INTERVAL_ENTRY) + 8])
             for k, _ in state.iter_prefix(TL.INTERVAL_ENTRY) if k[-32:] == own]
    first = max(settled - delta, top_time_s - retention, 0) // delta * delta
    starts = set(range(first, top_time_s + 1, delta))
    starts |= {s for s in held if full or s + delta + retention <= top_time_s + 2 * delta}
    for start in sorted(starts):
        keys += get_interval_keys(own, start)
    prefixes = list(PUBLIC_FOLLOWED_PREFIXES) + list(get_own_prefixes(own))
    return keys, prefixes


BY_PRM_HELD = (TL.PRM, TL.CONSENT, TL.RECONCILE_STATS)


def compute_state_writes(store: LightStore, verified: list
                         ) -> tuple[dict[bytes, bytes | None], list[tuple[bytes, bytes]]]:
    """The state writes an answer makes, and the held interval entries it shows have left
    the state (to archive, as they were last held). Its delivery point entries are all
    there are of it: any other held (a PRM changed, a household gone) is dropped."""
    writes: dict[bytes, bytes | None] = {}
    archive = []
    for answer in verified:
        if answer.by_prm is not None:
            for prefix in BY_PRM_HELD:
                writes.update((key, None) for key, _ in store.state.iter_prefix(prefix) if key not in answer.by_prm)
            writes.update(answer.by_prm)
        for key, value in answer.values.items():
            held = store.state.get(key)
            if value is None and held is not None and key.startswith((TL.INTERVAL, TL.INTERVAL_ENTRY)):
                archive.append((key, held))
            writes[key] = value
        for prefix, (found, complete) in answer.listed.items():
            if complete:
                for key, _ in store.state.iter_prefix(prefix):
                    if key not in found:
                        writes[key] = None
            writes.update(found)
    return writes, archive


def get_former_keys(store: LightStore, own: bytes) -> set[bytes]:
    """The household keys other than ``own`` whose own entries the store holds. A light
    store holds no other household's entry, so these are keys this home followed before
    the household moved to ``own``."""
    former = set()
    for prefix in (*TL.OWNED_AT, TL.HOUSEHOLD_DATA_KEY):
        for key, _ in store.state.iter_prefix(prefix):
            owner = key[len(prefix):len(prefix) + TL.ADDR_LEN] if prefix == TL.HOUSEHOLD_DATA_KEY \
                else TL.get_key_owner(key)
            if owner is not None and owner != own:
                former.add(owner)
    return former


def get_former_key_writes(store: LightStore, former: set[bytes]) -> dict[bytes, None]:
    """Deletes of every entry the store holds of the ``former`` keys: the validators moved
    the household's entries to its new key, which the node follows now; the former key
    keeps only a ``rotated`` status and its data keys, which are no longer its to show."""
    writes: dict[bytes, None] = {}
    for prefix in (*TL.OWNED_AT, TL.HOUSEHOLD_DATA_KEY, TL.BALLOT, TL.DELEGATION):
        for key, _ in store.state.iter_prefix(prefix):
            owner = TL.get_key_owner(key) if prefix in TL.OWNED_AT else key[len(prefix):len(prefix) + TL.ADDR_LEN]
            if owner in former:
                writes[key] = None
    return writes


class LightClient:
    """The one task that moves a light store forward (``net``: node.net.Network)."""

    def __init__(self, home, store: LightStore, net, key: Keypair, on_stored: Callable[[], None],
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.home, self.store, self.net, self.key = home, store, net, key
        self.chain_id = home.genesis.chain_id
        self.genesis_set = [v.key for v in home.genesis.validators]
        self.on_stored, self.now_ms = on_stored, now_ms
        self.changes = load_set_changes(home.path)
        self.sets: list[TrustedSet] = verify_set_changes(self.chain_id, self.genesis_set, self.changes)
        self.refreshes = 0
        self.refused_peers = 0
        # docs/privacy.md "Private state leaves": its own leaves' salt, from its key file.
        self.salt = derive_household_keys(key.seed, 0)[1]
        self.seals = home.genesis.seals_payloads
        self.former = get_former_keys(store, key.public)
        self.replaced_by: bytes | None = None       # set once the proven state says this key was replaced
        if self.former:
            log.info("this home held the entries of %d former key(s) of the household: it follows %s… now and drops "
                     "them at its next refresh", len(self.former), key.public.hex()[:16])

    async def follow(self) -> None:
        while True:
            await self.step()
            await trio.sleep(FOLLOW_S)

    def is_refresh_due(self) -> bool:
        """The entries are read at the height below the newest verified header."""
        return self.store.header_top() - 1 > self.store.height()

    async def step(self) -> bool:
        """Headers up to a peer's height, then the entries below the newest header, from
        the first peer that serves them. Peers able to serve are asked in random order:
        households spread over the validators, and one lying peer cannot stay first. True
        when the store moved."""
        banned = set(self.net.banned_peers())
        top, due = self.store.header_top(), self.is_refresh_due()
        able = [(p, h) for p, h in self.net.peer_heights().items()
                if p not in banned and (h > top or (due and h >= top))]
        random.shuffle(able)
        for peer, best in able:
            try:
                return await self.step_from(peer, best)
            except KeyReplaced as exc:
                if self.replaced_by != exc.new:
                    log.error("%s", exc)
                self.replaced_by = exc.new
                return False
            except (NetError, DecodeError, LightError) as exc:
                log.warning("following %s failed: %s", peer[:12], exc)
            except (InvalidBlock, InvalidProof) as exc:
                log.warning("peer %s sent a bad header chain or proof (%s): banned", peer[:12], exc)
                self.net.ban_peer(peer, f"bad light answer: {exc}")
        return False

    async def step_from(self, peer: str, best: int) -> bool:
        while self.store.header_top() < best and await self.fetch_headers(peer, best):
            pass
        if not self.is_refresh_due():
            return False
        await self.refresh(peer)
        self.on_stored()
        return True

    # ---- headers ----

    async def fetch_sets(self, peer: str) -> None:
        raw = await self.net.request_state(peer, STATE_SET_CHANGES)
        changes = decode(raw, SetChanges, len(raw)).changes
        self.sets = verify_set_changes(self.chain_id, self.genesis_set, changes)
        if changes != self.changes:
            self.changes = changes
            save_set_changes(self.home.path, SetChanges(changes=changes))
            log.info("validator sets from genesis checked through %d changes", len(changes))

    async def fetch_headers(self, peer: str, best: int) -> bool:
        """One batch of headers from ``peer``, verified and kept; False if it had none."""
        top = self.store.header_top()
        count = min(MAX_SIGNED_HEADERS, best - top)
        raw = await self.net.request_state(peer, STATE_HEADERS, top + 1, count)
        headers = decode(raw, SignedHeaders, len(raw)).headers
        if not headers:
            return False
        parent = self.store.top_block_id()
        try:
            verify_header_chain(self.chain_id, self.sets, top, parent, headers)
        except InvalidBlock:
            # A set change we have not seen yet: ask for the changes, then judge again.
            await self.fetch_sets(peer)
            verify_header_chain(self.chain_id, self.sets, top, parent, headers)
        self.store.add_headers([(s.header.height, compute_block_id(s.header), s.header.encode(), s.commit.encode())
                                for s in headers])
        return True

    def header_at(self, height: int) -> Header:
        return decode(self.store.pruned_header(height), Header, MAX_BLOCK_BYTES)

    # ---- entries ----

    def build_request(self, height: int, keys: list[bytes], prefixes: list[bytes], own_prm: bool = False
                      ) -> GetEntries:
        req = GetEntries(height=height, keys=tuple(keys), prefixes=tuple(prefixes), requester=self.key.public,
                         peer=self.net.peer_id.encode(), time_ms=self.now_ms(), nonce=os.urandom(16), sig=b"",
                         own_prm=own_prm)
        return sign_message(req, self.chain_id, self.key)

    async def ask(self, peer: str, root: bytes, height: int, keys: list[bytes], prefixes: list[bytes],
                  own_prm: bool = False):
        """``own_prm``: its delivery point entries too (tokens/lightstate.py), with its record in ``keys``."""
        raw = await self.net.request_entries(peer, self.build_request(height, keys, prefixes, own_prm).encode())
        answer = decode(raw, ProvenEntries, len(raw))
        verified = verify_entries(root, height, keys, prefixes, answer,
                                  get_own_salt_of(answer, self.key.public, self.salt),
                                  self.key.public if own_prm else None)
        # Moved to a new key: the entries of this key's record are refused now, and that
        # is not a peer hiding them.
        replaced = get_replacement(verified.values, self.key.public)
        if replaced is not None:
            raise KeyReplaced(*replaced)
        # On a chain that seals, an interval's record is refused while it is open or when
        # fewer than min_aggregate households made it up (docs/privacy.md "Public
        # aggregates"): nobody outside the validators reads it. Any other refusal hides
        # an entry this household may read.
        hiding = [key for key in verified.refused if not (self.seals and key.startswith(TL.INTERVAL))]
        if hiding:
            self.refused_peers += 1
            raise LightError(f"refused {len(hiding)} entries this household may read")
        return verified

    async def refresh(self, peer: str) -> None:
        """The followed entries at the height below the newest header, proven against its root."""
        top = self.store.header_top()
        header = self.header_at(top)
        height, root = top - 1, header.state_hash
        self.refreshes += 1
        keys, prefixes = get_followed_keys(self.store, self.key.public, header.time_ms // 1000,
                                           full=self.refreshes % RECHECK_EVERY == 1)
        answers = []
        for i in range(0, len(keys), MAX_ENTRY_KEYS):
            answers.append(await self.ask(peer, root, height, keys[i:i + MAX_ENTRY_KEYS],
                                          prefixes if i == 0 else [], own_prm=i == 0))
        writes, archive = compute_state_writes(self.store, answers)
        writes = get_former_key_writes(self.store, self.former) | writes
        self.store.set_state(height, root, writes, archive)
        self.former = set()
        if archive:
            log.info("archived %d of this household's interval entries that left the state", len(archive))
        log.debug("state of height %d: %d entries proven against %s", height, len(writes), root.hex()[:12])

