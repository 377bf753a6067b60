"""Ed25519 key files: JSON with the public key and seed, written with mode 0600."""

from __future__ import annotations

import json
import os
from pathlib import Path

from node.home.errors import HomeError
from wire import Keypair


def new_keypair() -> Keypair:
    return Keypair(os.urandom(32))


def save_key(path: Path, key: Keypair, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` atomically, readable by its owner only."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise HomeError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    doc = {"type": "ed25519", "public": key.public.hex(), "seed": key.seed.hex()}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_key(path: Path) -> Keypair:
    """Read a key file; any problem is a one-line ``HomeError``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        key = Keypair(bytes.fromhex(doc["seed"]))
    except FileNotFoundError:
        raise HomeError(f"key file not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HomeError(f"corrupt key file {path}: {exc}") from None
    if doc.get("public") != key.public.hex():
        raise HomeError(f"corrupt key file {path}: public key does not match the seed")
    return key
