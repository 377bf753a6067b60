"""Talking to a node's HTTP API from the household CLI: read JSON, sign locally, post txs.

Shared by ``voisinage tx``, ``gov``, ``status`` and ``account``. The household's key
never leaves this process (DESIGN §9: "the node never holds anyone else's key"):
a transaction is built here, signed with the key file, and only its signed bytes
are posted. Every failure is a ``UserError``: one line, never a traceback.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from node.api.status import parse_status_chain_id
from node.consent.signed import NONCE_BYTES, sign_target
from node.errors import UserError
from node.home.homedir import DEFAULT_HTTP_PORT
from node.home.keyfile import load_key
from node.meter.sealing import (
    NEEDS_DATA_KEY, ChainSealing, is_sealed_on, make_data_key_tx, parse_commune_sealing, seal_tx,
)
from tokens.sealing import build_commune_sealed
from tokens.txs import COMMUNE_SEALABLE_SET, Tx
from wire import Keypair, sign_message

DEFAULT_NODE = f"http://127.0.0.1:{DEFAULT_HTTP_PORT}"
HTTP_TIMEOUT_S = 10.0
NO_SIG = bytes(64)
TOKEN_ENV = "VOISINAGE_API_TOKEN"
# How long a sealed tx waits for the household's freshly published data key to commit.
DATA_KEY_WAIT_S = 60.0


def parse_node_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise UserError(f"--node must be an http:// or https:// URL, not {url!r}")
    return url.rstrip("/")


def describe_error(resp: httpx.Response) -> str:
    """The node's ``{"error": ...}`` text, or the start of whatever it answered."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        return str(doc["error"])[:200]
    return resp.text[:200] or resp.reason_phrase


def describe_unreachable(url: str, exc: httpx.HTTPError) -> UserError:
    return UserError(f"cannot reach the node at {url}: {str(exc)[:120] or type(exc).__name__}")


def build_read_headers(path: str, signer: Keypair | None, token: str | None) -> dict[str, str]:
    """Who reads (docs/privacy.md "Who sees what through the API"): a household's private
    data answers a request signed by its key (``signer``, signed here, the key never sent)
    or the node operator's API token."""
    headers = sign_target(signer, "GET", path, int(time.time()), secrets.token_bytes(NONCE_BYTES)) if signer else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def get_json(client: httpx.Client, url: str, path: str, missing: Any = None, *, signer: Keypair | None = None,
             token: str | None = None) -> Any:
    """GET a JSON document from the node (``missing`` on a 404, if given), signed by
    ``signer`` and/or with the operator's ``token``; any failure is one line."""
    try:
        resp = client.get(f"{url}{path}", headers=build_read_headers(path, signer, token))
    except httpx.HTTPError as exc:
        raise describe_unreachable(url, exc) from None
    if resp.status_code == 404 and missing is not None:
        return missing
    if resp.status_code in (401, 403) and signer is None and not token:
        raise UserError(f"GET {path} answered {resp.status_code}: {describe_error(resp)} "
                        "(give the household's --key, or the node's --api-token)")
    if resp.status_code != 200:
        raise UserError(f"GET {path} answered {resp.status_code}: {describe_error(resp)}")
    try:
        return resp.json()
    except ValueError:
        raise UserError(f"GET {path}: the node's answer is not JSON") from None


def get_status(client: httpx.Client, url: str) -> dict[str, Any]:
    doc = get_json(client, url, "/status")
    if not isinstance(doc, dict):
        raise UserError("GET /status: the node's answer is not a JSON object")
    return doc


def get_chain_id(client: httpx.Client, url: str) -> bytes:
    """The chain id the node serves, from GET /status: every signature is bound to it."""
    try:
        return parse_status_chain_id(get_status(client, url))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def get_chain_time_s(client: httpx.Client, url: str) -> int:
    """The node's chain clock in unix seconds: relative deadlines (``--days``) count from it,
    so they also hold on a development chain whose clock runs faster (``time_scale``)."""
    doc = get_status(client, url)
    if type(doc.get("time_ms")) is not int:
        raise UserError("GET /status: no time_ms in the node's answer")
    return doc["time_ms"] // 1000


def fetch_deadline(node: str, at: int | None, relative_s: int | None, names: tuple[str, str]) -> int:
    """An absolute unix time: given directly, or ``relative_s`` after the chain's now."""
    if (at is None) == (relative_s is None):
        raise UserError(f"give exactly one of {names[0]} or {names[1]}")
    if at is not None:
        return at
    with open_client() as client:
        return get_chain_time_s(client, parse_node_url(node)) + relative_s


def post_tx(client: httpx.Client, url: str, tx: Tx, token: str | None = None) -> str:
    """POST an already-signed tx; the node answers 202 with the id, or 4xx with a reason."""
    refused = try_post_tx(client, url, tx, token)
    if refused is not None:
        raise UserError(f"the node refused the transaction {refused}")
    return tx.id().hex()


def try_post_tx(client: httpx.Client, url: str, tx: Tx, token: str | None = None) -> str | None:
    """POST an already-signed tx: None when taken, else why not: ``(status): code: detail``."""
    headers = {"content-type": "application/msgpack"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        resp = client.post(f"{url}/tx", content=tx.encode(), headers=headers)
    except httpx.HTTPError as exc:
        raise describe_unreachable(url, exc) from None
    if resp.status_code not in (200, 202):
        reason = describe_error(resp)
        if reason.startswith("nonce_ahead:"):
            raise describe_clock_ahead(client, url, getattr(tx, "nonce", 0))
        return f"({resp.status_code}): {reason}"
    return None


def describe_clock_ahead(client: httpx.Client, url: str, nonce_ms: int) -> UserError:
    """tokens/ledger.py check_not_ahead refused our clock-derived nonce: say by how much."""
    ahead_s = (nonce_ms - get_chain_time_s(client, url) * 1000) // 1000
    return UserError(f"your clock is ahead of the chain's by {ahead_s} s: the node refuses nonces that far "
                     "ahead; set this computer's clock right (NTP) and sign again")


def read_nonce_ms() -> int:
    """tokens/txs.py: nonces rise with gaps allowed, so a clock in ms serves."""
    return time.time_ns() // 1_000_000


def fetch_next_nonce(client: httpx.Client, url: str, signer: bytes) -> int:
    """The clock in ms, or one past the committed nonce, or past the highest nonce of the
    signer's txs waiting at the node (``pending_nonce``), whichever is highest: after a
    clock that ran ahead is set back, the signer is not locked out until it catches up,
    and a tx sent just after another (its household's node still waiting for the block
    that commits it) is not stale on arrival."""
    path = f"/accounts/{signer.hex()}"
    # An unknown account (404) has nonce 0.
    doc = get_json(client, url, path, missing={"nonce": 0})
    committed = doc.get("nonce") if isinstance(doc, dict) else None
    if type(committed) is not int:
        raise UserError(f"GET {path}: no nonce in the node's answer")
    pending = doc.get("pending_nonce")
    return max(read_nonce_ms(), committed + 1, pending + 1 if type(pending) is int else 0)


def sign_tx(unsigned: Tx, key: Keypair, chain_id: bytes, sig_field: str = "sig") -> Tx:
    return sign_message(unsigned, chain_id, key, sig_field)


def open_client() -> httpx.Client:
    return httpx.Client(timeout=HTTP_TIMEOUT_S)


def submit(node: str, key_path: Path, build: Callable[[bytes, int], Tx], *, token: str | None = None,
           cosigners: tuple[tuple[Keypair, str], ...] = ()) -> str:
    """Sign ``build(signer, nonce)`` with the key file (and each ``(key, sig_field)``
    co-signer), POST it, and return the tx id (hex). On a chain that seals payloads, a
    household payload is posted sealed, and a registrar tx that names a household's
    personal data sealed to the commune key (docs/privacy.md "What is sealed")."""
    url = parse_node_url(node)
    key = load_key(key_path)
    with open_client() as client:
        chain_id = get_chain_id(client, url)

        def make(nonce: int) -> Tx:
            tx = build(key.public, nonce)
            for cosigner, field in cosigners:
                tx = sign_tx(tx, cosigner, chain_id, field)
            return sign_tx(tx, key, chain_id)

        tx = make(fetch_next_nonce(client, url, key.public))
        if type(tx) in COMMUNE_SEALABLE_SET:
            sealing = fetch_sealing(client, url)
            if sealing is not None:
                tx = build_commune_sealed(tx, key, chain_id, sealing.epoch, sealing.public, secrets.token_bytes(32))
        elif is_sealed_on(tx):
            sealing = fetch_sealing(client, url)
            if sealing is not None:
                return post_sealed(client, url, key, chain_id, make, tx, sealing, token)
        return post_tx(client, url, tx, token)


def fetch_sealing(client: httpx.Client, url: str) -> ChainSealing | None:
    """Whether the node's chain seals household payloads, and under which key now."""
    try:
        return parse_commune_sealing(get_json(client, url, "/commune"))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def post_sealed(client: httpx.Client, url: str, key: Keypair, chain_id: bytes, make: Callable[[int], Tx], tx: Tx,
                sealing: ChainSealing, token: str | None = None) -> str:
    """docs/privacy.md: post ``tx`` sealed under the household's data key. If the chain
    has no data key of this epoch for the household, publish it first, wait for its
    block, and post the tx again built by ``make`` with a nonce after the key's."""
    envelope = seal_tx(tx, key, chain_id, sealing)
    refused = try_post_tx(client, url, envelope, token)
    if refused is None:
        return envelope.id().hex()
    if not any(code in refused for code in NEEDS_DATA_KEY):
        raise UserError(f"the node refused the sealed transaction {refused}")
    sealing = fetch_sealing(client, url) or sealing
    key_nonce = publish_data_key(client, url, key, chain_id, sealing, token)
    envelope = seal_tx(make(max(key_nonce + 1, fetch_next_nonce(client, url, key.public))), key, chain_id, sealing)
    deadline = time.monotonic() + DATA_KEY_WAIT_S
    while (refused := try_post_tx(client, url, envelope, token)) is not None:
        if "no_data_key" not in refused or time.monotonic() > deadline:
            raise UserError(f"the node refused the sealed transaction {refused}")
        time.sleep(0.5)     # the data key waits for its block
    return envelope.id().hex()


def publish_data_key(client: httpx.Client, url: str, key: Keypair, chain_id: bytes, sealing: ChainSealing,
                     token: str | None = None) -> int:
    """Post the household's data key of the current epoch unless the chain holds it
    already; returns the nonce a tx sealed after it must exceed."""
    key_nonce = fetch_next_nonce(client, url, key.public)
    published = try_post_tx(client, url, make_data_key_tx(key, chain_id, key_nonce, sealing), token)
    if published is not None and "data_key_exists" not in published:
        raise UserError(f"the node refused this household's data key {published}")
    return key_nonce


def parse_key_hex(text: str, what: str) -> bytes:
    """A 32-byte key or id given as 64 hex characters."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} must be 64 hex characters, not {text!r}")
    return raw
