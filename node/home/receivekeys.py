"""A holder's receive keys (docs/privacy.md "Receive keys"): X25519 key pairs that the
commune data key's copies are sealed to, kept apart from the identity key in
``<home>/receive_keys/<public hex>.key`` (JSON, mode 0600, written atomically), and
deleted once a cut makes the epochs they opened unneeded.

Deleting overwrites the file with zeros before unlinking it; on a copy-on-write or
flash file system the old blocks may still outlive that, which the file system, not
this module, decides.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from node.home.errors import HomeError
from wire.seal import compute_commune_public

RECEIVE_DIR = "receive_keys"
_NAME = re.compile(r"^([0-9a-f]{64})\.key$")


def get_receive_dir(home: Path) -> Path:
    return Path(home) / RECEIVE_DIR


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_receive_key(directory: Path, secret: bytes, made_after_cut: int | None = None) -> bytes:
    """Write the receive key of X25519 ``secret`` into ``directory``, atomically and
    readable by its owner only, before anything is sealed to it; returns its public key.
    ``made_after_cut``: the epoch of the chain's latest cut when it was made (None: before
    any), so that a node restarted after a later cut tells a key made since, which no
    epoch before that cut can have gone to, from one it must delete (``prune``)."""
    public = compute_commune_public(secret)
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{public.hex()}.key"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"type": "x25519-receive", "public": public.hex(), "secret": secret.hex(),
                   "made_after_cut": made_after_cut}, fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    _fsync_dir(directory)
    return public


def new_receive_key(directory: Path, made_after_cut: int | None = None) -> tuple[bytes, bytes]:
    """A fresh receive key, saved: (public, secret)."""
    secret = os.urandom(32)
    return save_receive_key(directory, secret, made_after_cut), secret


def read_made_after_cut(directory: Path) -> dict[bytes, int | None]:
    """Each receive key file's ``made_after_cut`` (None where absent: a key made before any
    cut, or by a version that did not write it). Files ``load_receive_keys`` checked."""
    made: dict[bytes, int | None] = {}
    directory = Path(directory)
    if not directory.is_dir():
        return made
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match is None:
            continue
        try:
            value = json.loads(path.read_text()).get("made_after_cut")
        except (OSError, ValueError, AttributeError):
            value = None
        made[bytes.fromhex(match.group(1))] = value if type(value) is int else None
    return made


def load_receive_keys(directory: Path) -> dict[bytes, bytes]:
    """Every receive key in ``directory`` (none if it does not exist): public -> secret.
    A file that is not one is a one-line ``HomeError``."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    keys = {}
    for path in sorted(directory.iterdir()):
        match = _NAME.match(path.name)
        if match is None:
            continue
        try:
            doc = json.loads(path.read_text())
            secret = bytes.fromhex(doc["secret"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HomeError(f"corrupt receive key file {path}: {exc}") from None
        if len(secret) != 32 or compute_commune_public(secret).hex() != match.group(1):
            raise HomeError(f"corrupt receive key file {path}: its secret is not the one of its name")
        keys[bytes.fromhex(match.group(1))] = secret
    return keys


def delete_receive_keys(directory: Path, publics: list[bytes]) -> list[Path]:
    """Overwrite then delete the files of ``publics`` in ``directory``; returns those deleted."""
    gone = []
    for public in publics:
        path = Path(directory) / f"{public.hex()}.key"
        try:
            size = path.stat().st_size
            with open(path, "r+b") as fh:
                fh.write(bytes(size))
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()
        except FileNotFoundError:
            continue
        gone.append(path)
    if gone:
        _fsync_dir(Path(directory))
    return gone
