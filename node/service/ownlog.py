"""A validator's own signed consensus messages of the height being decided, on disk.

The double-sign record (signstate.py) stops a restarted validator from signing
anything that conflicts with what it signed before the crash, but it keeps only a
hash: the messages themselves die with the process. If enough validators crash at
once after prevoting at round r, none may prevote again at r and nobody holds their
old votes, so Algorithm 1 never sees 2f+1 prevotes to time out on: the height never
ends. (Measured: kill -9 all 4 validators while 2 had prevoted, restart them, and the
chain halted forever.) CometBFT replays its write-ahead log; we keep the messages
this validator signed at the current height, and after a restart feed them back to
the engine and gossip them again.

Order, so that no kill -9 anywhere can release a message the record does not cover:
the message is written here first, then the record is fsynced, then it is sent. At
restore, a message beyond the record (killed in between: never sent) is dropped, so
every message fed back is one the record already forbids contradicting.
"""

from __future__ import annotations

import logging
from pathlib import Path

from consensus.messages import Proposal, decode_consensus
from consensus.privval import SignState, get_sign_step
from consensus.vote import Vote, compute_sign_hash
from node.service.signstate import write_durably
from wire import DecodeError, signing_bytes

log = logging.getLogger("voisinage.node")

OWN_FILE = "own_signed.bin"
LENGTH_BYTES = 4


class OwnMessages:
    """The signed messages of one height, rewritten durably on each new signature."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / OWN_FILE
        self.height = 0
        self.messages: list[bytes] = []

    def record(self, height: int, data: bytes) -> None:
        """Keep ``data`` (a Vote or Proposal this validator just signed at ``height``)."""
        if height != self.height:
            self.height, self.messages = height, []
        self.messages.append(data)
        write_durably(self.path, encode_frames(self.messages))


def encode_frames(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(LENGTH_BYTES, "big") + m for m in messages)


def decode_frames(data: bytes) -> list[bytes]:
    """Length-prefixed frames; a torn or garbled file raises ValueError."""
    frames, at = [], 0
    while at < len(data):
        if at + LENGTH_BYTES > len(data):
            raise ValueError("truncated frame length")
        size = int.from_bytes(data[at:at + LENGTH_BYTES], "big")
        at += LENGTH_BYTES
        if at + size > len(data):
            raise ValueError("truncated frame")
        frames.append(data[at:at + size])
        at += size
    return frames


def load_own_messages(home: Path, chain_id: bytes, height: int, me: bytes,
                      record: SignState) -> list[Vote | Proposal]:
    """This validator's signed votes and proposals of ``height`` from before a restart,
    those the double-sign ``record`` covers.

    The file only ever helps liveness, so a damaged one is reported and skipped."""
    path = Path(home) / OWN_FILE
    try:
        frames = decode_frames(path.read_bytes())
        messages = [decode_consensus(frame) for frame in frames]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, DecodeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []
    return [m for m in messages if is_own_at(m, height, me) and is_covered(m, chain_id, record)]


def is_covered(msg: Vote | Proposal, chain_id: bytes, record: SignState) -> bool:
    """DESIGN §6: the record was saved for this message or for a later one."""
    hrs = (msg.height, msg.round, get_sign_step(msg))
    last = (record.height, record.round, record.step)
    if hrs == last:
        return compute_sign_hash(signing_bytes(chain_id, msg)) == record.sign_hash
    return hrs < last


def is_own_at(msg: object, height: int, me: bytes) -> bool:
    if isinstance(msg, Vote):
        return msg.height == height and msg.validator == me
    if isinstance(msg, Proposal):
        return msg.height == height and msg.proposer == me
    return False
