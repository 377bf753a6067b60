"""Golden vectors: one deterministic sample per registered message type.

`python -m tests.unit.wire.vectors` rewrites vectors.json from the current schemas;
run it only when a schema change is intended, and review the diff: the vectors pin
the wire format, so any unintended change to an encoding makes the tests fail.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from wire.message import BOOL, I64, U64, Bytes, Kind, List, Message, Nested, Opt, Str, registered

VECTORS = Path(__file__).with_name("vectors.json")
# Modules that register message types; each type must have a golden vector.
MESSAGE_MODULES = ["tokens.txs", "tokens.snapshot", "consensus.messages", "consensus.block", "consensus.privval",
                   "consensus.lightsync", "tokens.lightstate",
                   "node.net.messages"]


def load_all_types() -> dict[str, type[Message]]:
    for name in MESSAGE_MODULES:
        importlib.import_module(name)
    return registered()


def sample(kind: Kind, seed: int) -> Any:
    """A deterministic, valid value for ``kind``."""
    if kind is U64:
        return 1000 + seed
    if kind is I64:
        return -1 - seed
    if kind is BOOL:
        return seed % 2 == 0
    if isinstance(kind, Bytes):
        size = kind.size if kind.size is not None else min(kind.max, 5)
        return bytes((seed + i) % 256 for i in range(size))
    if isinstance(kind, Str):
        return "ab" if kind.max_bytes >= 2 else "a"
    if isinstance(kind, Opt):
        return sample(kind.inner, seed)
    if isinstance(kind, List):
        return (sample(kind.inner, seed),)
    if isinstance(kind, Nested):
        return sample_message(kind.classes[0], seed)
    if isinstance(getattr(kind, "values", None), frozenset):   # an enumerated integer kind
        return min(kind.values)
    raise TypeError(f"no sample for {kind!r}")


def sample_message(cls: type[Message], seed: int = 0) -> Message:
    return cls(**{name: sample(kind, seed + i) for i, (name, kind) in enumerate(cls._KINDS)})


def to_json(value: Any) -> Any:
    """Readable JSON for a decoded value: messages as {tag, fields}, bytes as hex."""
    if isinstance(value, Message):
        return {"tag": value.TAG, "fields": {n: to_json(getattr(value, n)) for n, _ in value._KINDS}}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def build() -> dict[str, Any]:
    out = {}
    for tag, cls in sorted(load_all_types().items()):
        msg = sample_message(cls)
        out[tag] = {"encoded": msg.encode().hex(), "decoded": to_json(msg)}
    return out


if __name__ == "__main__":
    VECTORS.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {VECTORS}")
