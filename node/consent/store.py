"""The household's consents, on its own node: a small LevelDB of its own in the home
(``consent/``), never in consensus state and never gossiped.

It keeps the clients the household registered, the grants it approved, the
authorization codes and tokens issued for them (only their SHA-256: a stolen copy of
this database opens nothing), and the log of every access to the household's data. On
any node (a validator's, an auditor's) it also keeps the log of privileged reads: what
the operator's token or a registrar's signature read of a household's data.
Records are JSON. Times are unix seconds, given by the caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plyvel

from node.errors import OneLineError

CONSENT_DIR = "consent"
CLIENT, GRANT, CODE, TOKEN, LOG = b"client/", b"grant/", b"code/", b"token/", b"log/"
LOG_SEQ = b"meta/log_seq"
# docs/privacy.md "Privileged reads": what the operator or a registrar read of the
# households' data through this node's API; read/ seq -> entry, and read_by/ household
# seq -> b"" so that a household lists the reads that named it.
READ, READ_BY, READ_SEQ = b"read/", b"read_by/", b"meta/read_seq"
MAX_LOG_ENTRIES = 100_000       # the oldest access entries leave the log beyond this many
MAX_CLIENTS = 1000

Record = dict[str, Any]


class ConsentError(OneLineError):
    """The consent database cannot be opened or holds what it should not."""


def compute_secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def encode_record(record: Record) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def decode_record(raw: bytes | None) -> Record | None:
    return None if raw is None else json.loads(raw)


class ConsentStore:
    """One household's clients, grants, codes, tokens and access log."""

    def __init__(self, db: plyvel.DB) -> None:
        self.db = db

    def iter_entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value, from one snapshot taken at the first step (for a backup:
        node/store/backup.py)."""
        snap = self.db.snapshot()
        try:
            yield from snap.iterator()
        finally:
            snap.close()

    def _get(self, prefix: bytes, key: str) -> Record | None:
        return decode_record(self.db.get(prefix + key.encode()))

    def _put(self, prefix: bytes, key: str, record: Record) -> None:
        self.db.put(prefix + key.encode(), encode_record(record), sync=True)

    def _scan(self, prefix: bytes) -> Iterator[Record]:
        for _, raw in self.db.iterator(prefix=prefix):
            yield json.loads(raw)

    # -- clients -------------------------------------------------------------------------

    def add_client(self, client: Record) -> None:
        if sum(1 for _ in self.db.iterator(prefix=CLIENT, include_value=False)) >= MAX_CLIENTS:
            raise ConsentError(f"at most {MAX_CLIENTS} clients: remove one first")
        self._put(CLIENT, client["client_id"], client)

    def get_client(self, client_id: str) -> Record | None:
        return self._get(CLIENT, client_id)

    def list_clients(self) -> list[Record]:
        return list(self._scan(CLIENT))

    def remove_client(self, client_id: str, now: int) -> tuple[Record, int] | None:
        """Remove a client the household no longer wants: every grant it holds is revoked
        from ``now`` on (kept, so the household still sees what it had granted), and its
        codes and tokens are forgotten, in one synced batch. The client and how many of its
        grants were still active; None if there is no such client."""
        client = self.get_client(client_id)
        if client is None:
            return None
        revoked = 0
        with self.db.write_batch(sync=True) as batch:
            for grant in self._scan(GRANT):
                if grant["client_id"] == client_id and grant["revoked"] is None:
                    revoked += now < grant["expires"]
                    batch.put(GRANT + grant["id"].encode(), encode_record(dict(grant, revoked=now)))
            for prefix in (CODE, TOKEN):
                for key, raw in self.db.iterator(prefix=prefix):
                    if json.loads(raw)["client_id"] == client_id:
                        batch.delete(key)
            batch.delete(CLIENT + client_id.encode())
        return client, revoked

    # -- grants, codes, tokens ---------------------------------------------------------

    def put_grant(self, grant: Record) -> None:
        self._put(GRANT, grant["id"], grant)

    def get_grant(self, grant_id: str) -> Record | None:
        return self._get(GRANT, grant_id)

    def list_grants(self) -> list[Record]:
        return sorted(self._scan(GRANT), key=lambda g: (g["created"], g["id"]))

    def revoke_grant(self, grant_id: str, now: int) -> Record | None:
        """Revoke a grant (and so every token of it) from ``now`` on; None if unknown."""
        grant = self.get_grant(grant_id)
        if grant is not None and grant["revoked"] is None:
            grant["revoked"] = now
            self.put_grant(grant)
        return grant

    def put_code(self, code: str, record: Record) -> None:
        self._put(CODE, compute_secret_hash(code), record)

    def get_code(self, code: str) -> Record | None:
        record = self._get(CODE, compute_secret_hash(code))
        return None if record is None else dict(record, code_sha256=compute_secret_hash(code))

    def mark_code_used(self, record: Record, now: int) -> None:
        """A code is kept once used, so that its replay is seen (and its grant revoked)."""
        kept = {k: v for k, v in record.items() if k != "code_sha256"}
        self._put(CODE, record["code_sha256"], dict(kept, used=now))

    def put_token(self, token: str, record: Record) -> None:
        self._put(TOKEN, compute_secret_hash(token), record)

    def get_token(self, token: str) -> Record | None:
        return self._get(TOKEN, compute_secret_hash(token))

    def sweep(self, before: int) -> int:
        """Forget the codes and tokens that stopped working before ``before``: a used code
        is kept until then so that its replay is still seen (and its grant revoked)."""
        with self.db.write_batch(sync=True) as batch:
            dropped = 0
            for prefix in (CODE, TOKEN):
                for key, raw in self.db.iterator(prefix=prefix):
                    if json.loads(raw)["expires"] < before:
                        batch.delete(key)
                        dropped += 1
        return dropped

    # -- the access log ----------------------------------------------------------------

    def append_log(self, entry: Record) -> int:
        raw = self.db.get(LOG_SEQ)
        seq = (0 if raw is None else int(raw)) + 1
        with self.db.write_batch(sync=True) as batch:
            batch.put(LOG + seq.to_bytes(8, "big"), encode_record(dict(entry, seq=seq)))
            batch.put(LOG_SEQ, str(seq).encode())
            if seq > MAX_LOG_ENTRIES:
                batch.delete(LOG + (seq - MAX_LOG_ENTRIES).to_bytes(8, "big"))
        return seq

    def read_log(self, before: int | None, limit: int) -> list[Record]:
        """The newest entries first, with seq below ``before``, at most ``limit``."""
        stop = LOG + (before if before is not None else 2**63).to_bytes(8, "big")
        out = []
        for _, raw in self.db.iterator(start=LOG, stop=stop, reverse=True):
            out.append(json.loads(raw))
            if len(out) >= limit:
                break
        return out


    # -- privileged reads -----------------------------------------------------------------

    def append_read(self, entry: Record, household: bytes | None) -> int:
        """One privileged read; ``household``: the one it named (None: none in particular)."""
        raw = self.db.get(READ_SEQ)
        seq = (0 if raw is None else int(raw)) + 1
        with self.db.write_batch(sync=True) as batch:
            batch.put(READ + seq.to_bytes(8, "big"), encode_record(dict(entry, seq=seq)))
            if household is not None:
                batch.put(READ_BY + household + seq.to_bytes(8, "big"), b"")
            batch.put(READ_SEQ, str(seq).encode())
            if seq > MAX_LOG_ENTRIES:
                old = (seq - MAX_LOG_ENTRIES).to_bytes(8, "big")
                dropped = decode_record(self.db.get(READ + old))
                batch.delete(READ + old)
                if dropped is not None and dropped.get("household"):
                    batch.delete(READ_BY + bytes.fromhex(dropped["household"]) + old)
        return seq

    def read_reads(self, household: bytes | None, before: int | None, limit: int) -> list[Record]:
        """The newest privileged reads first (seq below ``before``, at most ``limit``):
        every one, or those that named ``household``."""
        top = (before if before is not None else 2**63).to_bytes(8, "big")
        if household is None:
            return [json.loads(raw) for _, (_, raw) in
                    zip(range(limit), self.db.iterator(start=READ, stop=READ + top, reverse=True))]
        prefix = READ_BY + household
        out = []
        for key in self.db.iterator(start=prefix, stop=prefix + top, reverse=True, include_value=False):
            record = decode_record(self.db.get(READ + key[len(prefix):]))
            if record is not None:
                out.append(record)
            if len(out) >= limit:
                break
        return out


@contextmanager
def open_consent_store(home: Path) -> Iterator[ConsentStore]:
    path = Path(home) / CONSENT_DIR
    try:
        db = plyvel.DB(str(path), create_if_missing=True)
    except plyvel.Error as exc:
        raise ConsentError(f"cannot open the consent database {path}: {exc}") from None
    try:
        yield ConsentStore(db)
    finally:
        db.close()
