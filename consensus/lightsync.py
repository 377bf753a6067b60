"""Light-client header verification through validator-set changes only (docs/statesync.md).

A node that joins by state sync trusts genesis and nothing else. Each header commits
to the set that signs the next height (``Header.next_validators``), so the client
needs only the headers where that set changes: each is checked against the set it
already trusts (>= quorum of it signed the header's commit), and the new set's keys
must hash to what the header commits to. ``verify_set_changes`` walks those from
genesis; ``verify_trusted_header`` then checks any later header (the one carrying a
snapshot's state root) against the set in force at its height. A peer that forges a
change, skips one, or sends a header its set did not sign gets ``InvalidBlock``.
``HEADER_RULES`` gives the same checks to the ledger's light clients of other communes
(tokens.ibc.HeaderVerifier), which carry headers and commits as bytes.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from wire import KEY, MAX_TX_BYTES, List, Message, Nested, decode, field_of, register
from wire.limits import MAX_HEADER_BYTES
from wire.units import Height

from consensus.block import (
    MAX_COMMIT_SIGS, Commit, Header, compute_block_id, compute_validators_hash, verify_commit,
)
from consensus.errors import InvalidBlock

MAX_SET_CHANGES = 4096      # one response; a commune changes its validators a few times a year


@register("ls/set-change")
@dataclass(frozen=True)
class SetChange(Message):
    """A header whose next set differs from its own, its commit, and the next set's keys."""

    header: Header = field_of(Nested(Header))
    commit: Commit = field_of(Nested(Commit))
    validators: tuple[bytes, ...] = field_of(List(KEY, MAX_COMMIT_SIGS))


@register("ls/set-changes")
@dataclass(frozen=True)
class SetChanges(Message):
    """Every set change a node knows of, in height order (a response to GetSetChanges)."""

    changes: tuple[SetChange, ...] = field_of(List(Nested(SetChange), MAX_SET_CHANGES))


@register("ls/signed-header")
@dataclass(frozen=True)
class SignedHeader(Message):
    """A header and its commit: what a light client checks with ``verify_trusted_header``."""

    header: Header = field_of(Nested(Header))
    commit: Commit = field_of(Nested(Commit))


@dataclass(frozen=True)
class TrustedSet:
    """The validators that sign every height from ``from_height`` until the next set's."""

    from_height: Height
    validators: tuple[bytes, ...]


def get_trusted_set(sets: Sequence[TrustedSet], height: Height) -> tuple[bytes, ...]:
    """The verified set that signs ``height``: the last one starting at or below it."""
    found = None
    for entry in sets:
        if entry.from_height <= height:
            found = entry.validators
    if found is None:
        raise InvalidBlock(f"no trusted validator set for height {height}")
    return found


def verify_set_change(chain_id: bytes, trusted: tuple[bytes, ...], after: Height, change: SetChange) -> TrustedSet:
    """One set change on top of a set trusted from ``after`` on: signed by it, and the new
    set is the one the header commits to."""
    header = change.header
    if header.chain_id != chain_id:
        raise InvalidBlock("set change header is for another chain")
    if header.height < after:
        raise InvalidBlock(f"set change at height {header.height} is not after height {after}")
    # >= quorum of the set we trust signed this header (Tendermint light client, sequential step).
    verify_commit(trusted, chain_id, header.height, compute_block_id(header), change.commit)
    if len(set(change.validators)) != len(change.validators) or not change.validators:
        raise InvalidBlock("set change lists an empty set or one key twice")
    if compute_validators_hash(change.validators) != header.next_validators:
        raise InvalidBlock(f"forged set change at height {header.height}: "
                           "the keys do not hash to the header's next validators")
    return TrustedSet(Height(header.height + 1), tuple(change.validators))


def verify_set_changes(chain_id: bytes, genesis_validators: Sequence[bytes],
                       changes: Sequence[SetChange]) -> list[TrustedSet]:
    """The validator sets from genesis on, each verified by the one before it."""
    if len(changes) > MAX_SET_CHANGES:
        raise InvalidBlock(f"more than {MAX_SET_CHANGES} set changes")
    sets = [TrustedSet(Height(1), tuple(genesis_validators))]
    for change in changes:
        sets.append(verify_set_change(chain_id, sets[-1].validators, sets[-1].from_height, change))
    return sets


def verify_trusted_header(chain_id: bytes, sets: Sequence[TrustedSet], header: Header, commit: Commit) -> None:
    """``header`` is signed by >= quorum of the set at its height, and commits to the next
    set the verified changes say: otherwise the peer left a change out."""
    if header.chain_id != chain_id:
        raise InvalidBlock("header is for another chain")
    verify_commit(get_trusted_set(sets, header.height), chain_id, header.height,
                  compute_block_id(header), commit)
    if header.next_validators != compute_validators_hash(get_trusted_set(sets, Height(header.height + 1))):
        raise InvalidBlock(f"header {header.height} commits to a next validator set the set changes "
                           "did not show: a change is missing")


MAX_SIGNED_HEADERS = 256    # one GetState(STATE_HEADERS) answer, as block sync's batch


@register("ls/signed-headers")
@dataclass(frozen=True)
class SignedHeaders(Message):
    """Consecutive headers with their commits: what a household node follows the chain by."""

    headers: tuple[SignedHeader, ...] = field_of(List(Nested(SignedHeader), MAX_SIGNED_HEADERS))


def verify_header_chain(chain_id: bytes, sets: Sequence[TrustedSet], parent_height: Height, parent_id: bytes,
                        headers: Sequence[SignedHeader]) -> bytes:
    """Headers that follow the trusted one (``parent_height``, ``parent_id``: 32 zero
    bytes at genesis) one by one, each signed by >= quorum of the set at its height and
    committing to the next set the verified changes say. Returns the last one's id."""
    height, block_id = parent_height, parent_id
    for signed in headers:
        header = signed.header
        if header.height != height + 1:
            raise InvalidBlock(f"expected the header of height {height + 1}, got {header.height}")
        if header.parent != block_id:
            raise InvalidBlock(f"header {header.height} does not follow the trusted header of height {height}")
        verify_trusted_header(chain_id, sets, header, signed.commit)
        height, block_id = header.height, compute_block_id(header)
    return block_id
class HeaderRules:
    """This chain family's header rules, for the ledger (tokens.ibc.HeaderVerifier): a
    header and a commit decode strictly, and a commit makes a header final when >= quorum
    of the set signed it. Raises ``DecodeError`` or ``InvalidBlock`` (both ValueError)."""

    def decode_header(self, data: bytes) -> Header:
        return decode(data, Header, MAX_HEADER_BYTES)

    def verify_commit(self, header: Header, commit: bytes, validators: Sequence[bytes]) -> bytes:
        block_id = compute_block_id(header)
        verify_commit(validators, header.chain_id, header.height, block_id, decode(commit, Commit, MAX_TX_BYTES))
        return block_id

    def compute_validators_hash(self, validators: Sequence[bytes]) -> bytes:
        return compute_validators_hash(validators)


HEADER_RULES = HeaderRules()
