"""Length-prefixed frames on a libp2p stream: a 4-byte big-endian length, then the bytes.

Every read has an explicit size limit; callers put deadlines around reads and writes
with trio cancel scopes.
"""

from __future__ import annotations

from typing import Protocol

from wire import DecodeError, Message, decode

from node.net.errors import RemoteProtocolError

_LEN_BYTES = 4


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


def encode_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(_LEN_BYTES, "big") + payload


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Read exactly ``n`` bytes; a stream that ends early broke the protocol."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        chunk = await stream.read(remaining)
        if not chunk:
            raise RemoteProtocolError(f"stream ended {remaining} bytes short of a frame")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


async def read_frame(stream: ByteStream, limit: int) -> bytes:
    """Read one frame of at most ``limit`` bytes, refusing a larger one before reading it."""
    size = int.from_bytes(await read_exactly(stream, _LEN_BYTES), "big")
    if size > limit:
        raise RemoteProtocolError(f"frame of {size} bytes exceeds the limit of {limit}")
    return await read_exactly(stream, size)


async def write_message(stream: ByteStream, msg: Message) -> None:
    await stream.write(encode_frame(msg.encode()))


async def read_message(stream: ByteStream, expect: tuple[type[Message], ...], limit: int) -> Message:
    """Read and strictly decode one framed message of one of the ``expect`` types."""
    data = await read_frame(stream, limit)
    try:
        return decode(data, expect=expect, limit=limit)
    except DecodeError as exc:
        raise RemoteProtocolError(f"bad message: {exc.reason}") from None
