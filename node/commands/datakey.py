"""``voisinage validator rotate-data-key | cosign-data-key | submit-data-key |
publish-receive-key``: a new epoch of
the commune data key, sealed to the latest validator set and the auditors appointed by
passed proposals (docs/privacy.md "Rotation", "Auditors").

After a validator set change, one operator writes the rotation with its own key file:
a fresh secret sealed to every validator of the latest set, and the link that boxes the
current secret (opened from the operator's own sealed copy) under the new one. Each
co-signer checks, offline, that its own copy opens to the announced public key and
that the link opens to the secret it holds, then signs; ``submit-data-key`` checks the
co-signatures against the node's current set and posts it. The ledger checks only
the structure (to whom, by whom): what a sealed copy holds, only its holder can check.

After an erasure the rotation is a *cut* (docs/privacy.md "Erasure"): its link is
``NO_LINK``, and the co-signers check only their own copy.

Each holder's copy is sealed to the receive key it published (docs/privacy.md "Receive
keys"), which its node keeps in ``<home>/receive_keys``; to its identity key only if it
published none, which the command says. A cut seals only to receive keys no earlier
epoch went to: the holders' nodes publish a fresh one after each rotation. A holder
whose node cannot run yet (a validator or auditor just added, before the rotation that
gives it a copy) publishes one with ``publish-receive-key``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from node.commands.client import get_chain_id, get_chain_time_s, get_json, open_client, parse_node_url, post_tx
from node.commands.cosigned import Change, check_ready, cosign_change, read_change, write_change
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.errors import UserError
from node.home.errors import HomeError
from node.home.keyfile import load_key
from node.home.receivekeys import RECEIVE_DIR, load_receive_keys, new_receive_key
from node.meter.sealing import ChainSealing, parse_commune_sealing
from tokens import layout as L
from tokens.kv import decode_value
from tokens.sealing import Keyring, seal_to_holders
from tokens.txs import RotateDataKey, SetReceiveKey
from wire import Keypair, sign_message
from wire.seal import NO_LINK, SealError, compute_commune_public, open_link, seal_link


def fetch_rotation_basis(node: str, key: Keypair,
                         token: str | None = None) -> tuple[bytes, dict[str, Any], ChainSealing, bytes]:
    """The chain id, the validator change basis (with ``auditors``, the auditors' keys),
    the current epoch, and the operator's own sealed copy of the current secret (read
    from the state through GET /proofs, an entry no household owns: the node's operator
    token opens it)."""
    url = parse_node_url(node)
    with open_client() as client:
        chain_id = get_chain_id(client, url)
        basis = get_json(client, url, "/validators/change")
        commune = get_json(client, url, "/commune")
        try:
            sealing = parse_commune_sealing(commune)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if isinstance(basis, dict) and sealing is not None:
            basis["auditors"] = [a["key"] for a in commune["sealing"].get("auditors") or ()]
            basis["cut_due"] = commune["sealing"].get("cut_due") is True
            basis["receive"] = commune["sealing"].get("receive") or {}
        if sealing is None:
            raise UserError("this chain does not seal payloads: it has no commune data key to rotate")
        proof = get_json(client, url, f"/proofs/{L.key_data_key_sealed(sealing.epoch, key.public).hex()}",
                         token=token)
    if not isinstance(basis, dict) or not {"validators", "latest", "quorum"} <= set(basis):
        raise UserError("GET /validators/change: the node's answer lacks the validator set")
    value = proof.get("value") if isinstance(proof, dict) else None
    if not isinstance(value, str):
        raise UserError(f"your key {key.public.hex()[:16]}… holds no copy of the commune data key of epoch "
                        f"{sealing.epoch} (or its block is not yet under a committed header: try again in a block)")
    return chain_id, basis, sealing, decode_value(bytes.fromhex(value))


def read_receive_keys_of(key_file: Path, directory: Path | None) -> dict[bytes, bytes]:
    """The receive keys kept beside ``key_file`` (its home's ``receive_keys``), or in ``directory``."""
    try:
        return load_receive_keys(directory if directory is not None else Path(key_file).parent / RECEIVE_DIR)
    except HomeError as exc:
        raise UserError(str(exc)) from None


def open_own_copy(key: Keypair, sealed: bytes, public: bytes, receive: dict[bytes, bytes] | None = None,
                  named: Any = ...) -> bytes:
    """The secret in this holder's copy: with the receive key ``named`` (None: the
    identity key), or by default with any of ``receive``, then the identity key."""
    secret = Keyring(holder=(key.seed, key.public), receive=receive).open_copy(0, sealed, public, named)
    if secret is None:
        raise UserError("your sealed copy of the commune data key does not open with this key file or its receive "
                        "keys, to the secret of the announced public key")
    return secret


def get_receive_publics(basis: dict[str, Any], holders: tuple[bytes, ...]) -> dict[bytes, bytes]:
    """Each holder's published receive key (GET /commune ``sealing.receive``); a cut
    refuses one that an earlier epoch went to (the ledger would: ``stale_receive_key``)."""
    published, stale = {}, []
    for holder in holders:
        entry = (basis.get("receive") or {}).get(holder.hex())
        if not isinstance(entry, dict):
            continue
        try:
            published[holder] = bytes.fromhex(entry["public"])
        except (KeyError, TypeError, ValueError):
            raise UserError("GET /commune: sealing.receive holds a key that is not hex") from None
        if basis.get("cut_due") and entry.get("used") is not None:
            stale.append(f"{holder.hex()[:16]}… (used for epoch {entry['used']})")
    if stale:
        raise UserError(f"a cut seals only to receive keys no earlier epoch went to, and these holders' are not "
                        f"fresh: {', '.join(stale)}; their nodes publish a fresh one a block after each rotation "
                        "(docs/privacy.md \"Receive keys\"): try again then")
    return published


def build_rotation(key: Keypair, basis: dict[str, Any], sealing: ChainSealing, own: bytes,
                   auditors: list[str] = (), receive: dict[bytes, bytes] | None = None) -> RotateDataKey:
    """A new epoch sealed to the latest validator set and the auditors (docs/privacy.md
    "Auditors"), each copy to the holder's published receive key; a cut, linking back
    to nothing, when an erasure made one due ("Erasure"). ``receive``: the operator's
    own receive keys, which open its copy of the current epoch."""
    old = open_own_copy(key, own, sealing.public, receive)
    new = os.urandom(32)
    holders = tuple(bytes.fromhex(k) for k in sorted(set(basis["latest"]) | set(auditors)))
    link = NO_LINK if basis.get("cut_due") else seal_link(new, old, os.urandom(24))
    sealed, named = seal_to_holders(holders, get_receive_publics(basis, holders), new,
                                    [os.urandom(32) for _ in holders])
    return RotateDataKey(nonce=sealing.epoch + 1, public=compute_commune_public(new), holders=holders,
                         sealed=sealed, receive=named, link=link, sigs=())


def describe_identity_copies(tx: RotateDataKey) -> str | None:
    """One line on the copies sealed to identity keys, or None when there is none."""
    bare = [h.hex()[:8] for h, r in zip(tx.holders, tx.receive) if r is None]
    if not bare:
        return None
    return (f"{len(bare)} holder(s) published no receive key ({', '.join(bare)}): their copy is sealed to their "
            "identity key, whose key file keeps opening this epoch after a cut (docs/privacy.md \"Receive keys\")")


def check_rotation(change: Change, key: Keypair, old: bytes | None, receive: dict[bytes, bytes] | None = None) -> None:
    """A co-signer's offline check: its copy opens to the new public key, with the
    receive key it names (one of ``receive``) or the identity key, and the link opens to
    the secret it holds now (when it holds one)."""
    tx: RotateDataKey = change.tx
    if key.public not in tx.holders:
        raise UserError(f"your key {key.public.hex()[:16]}… is not among the holders: the rotation must seal the "
                        "new key to every validator of the latest set and every auditor")
    index = tx.holders.index(key.public)
    named = tx.receive[index]
    if named is not None and named not in (receive or {}):
        raise UserError(f"your copy is sealed to the receive key {named.hex()[:16]}…, which is not among your "
                        "receive keys (--receive-keys, by default receive_keys beside the key file)")
    new = open_own_copy(key, tx.sealed[index], tx.public, receive, named)
    if old is not None and tx.link != NO_LINK:
        try:
            linked = open_link(new, tx.link)
        except SealError:
            raise UserError("the link does not open with the new secret") from None
        if linked != old:
            raise UserError("the link does not hold the current commune secret: old sealed payloads would be lost")


def describe(change: Change) -> str:
    tx: RotateDataKey = change.tx
    cut = ("; a cut: it links back to no older epoch, whose secrets and receive keys the nodes delete once it "
           "commits" if tx.link == NO_LINK else "")
    return (f"commune data key epoch {tx.nonce} ({tx.public.hex()[:16]}…), sealed to "
            f"{', '.join(h.hex()[:8] for h in tx.holders)}{cut}")


def is_fresh(entry: Any, held: dict[bytes, bytes]) -> bool:
    """Whether a holder's published receive key (GET /commune ``sealing.receive``) is
    one no epoch went to yet and whose secret is ``held`` here."""
    return (isinstance(entry, dict) and entry.get("used") is None and isinstance(entry.get("public"), str)
            and bytes.fromhex(entry["public"]) in held)


def build_receive_key_tx(key: Keypair, chain_id: bytes, entry: Any, chain_ms: int, directory: Path) -> SetReceiveKey:
    """A fresh receive key saved in ``directory``, and its SetReceiveKey, its nonce above
    the published one's and the chain's clock (ms)."""
    public, _ = new_receive_key(directory)
    published = entry.get("nonce") if isinstance(entry, dict) else None
    nonce = max(chain_ms, (published if type(published) is int else 0) + 1)
    return sign_message(SetReceiveKey(signer=key.public, nonce=nonce, public=public, sig=bytes(64)), chain_id, key)


RECEIVE_OPTION = typer.Option(None, "--receive-keys",
                              help="The directory of your receive keys (default: receive_keys beside the key file, "
                                   "as in a node home).")


def register(app: typer.Typer) -> None:
    @app.command("rotate-data-key")
    def rotate_data_key(
        key: Path = typer.Option(..., "--key", help="Your validator key file (opens your copy of the current key)."),
        out: Path = typer.Option(..., "--out", help="Where to write the rotation for the validators to co-sign."),
        receive_keys: Path = RECEIVE_OPTION,
        node: str = NODE_OPTION, token: str | None = TOKEN_OPTION,
    ) -> None:
        """After a validator or auditor set change: a new commune data key for the latest
        validator set and the auditors."""
        signer = load_key(key)
        chain_id, basis, sealing, own = fetch_rotation_basis(node, signer, token)
        tx = build_rotation(signer, basis, sealing, own, basis.get("auditors", []),
                            read_receive_keys_of(key, receive_keys))
        change = Change(chain_id, tuple(bytes.fromhex(k) for k in basis["validators"]), basis["quorum"], tx)
        write_change(out, change)
        note = describe_identity_copies(tx)
        if note is not None:
            typer.echo(note, err=True)
        typer.echo(f"{describe(change)}; written to {out}: {change.quorum} of {len(change.validators)} validators "
                   f"co-sign it with `voisinage validator cosign-data-key --in {out} --key KEY --out FILE`")

    @app.command("cosign-data-key")
    def cosign_data_key(
        in_file: Path = typer.Option(..., "--in", help="The rotation (from rotate-data-key or another cosign)."),
        key: Path = typer.Option(..., "--key", help="Your validator key file."),
        out: Path = typer.Option(..., "--out", help="Where to write the rotation with your signature."),
        node: str | None = typer.Option(None, "--node", help="Optional: a node to read your copy of the current "
                                        "key from, to check that the link keeps old payloads readable."),
        receive_keys: Path = RECEIVE_OPTION,
        token: str | None = TOKEN_OPTION,
    ) -> None:
        """Validator: check that your copy of the new key opens, then co-sign (offline)."""
        change = read_change(in_file, RotateDataKey)
        signer = load_key(key)
        receive = read_receive_keys_of(key, receive_keys)
        old = None
        if node is not None:
            _, _, sealing, own = fetch_rotation_basis(node, signer, token)
            old = open_own_copy(signer, own, sealing.public, receive)
        check_rotation(change, signer, old, receive)
        signed, count = cosign_change(change, key)
        write_change(out, signed)
        typer.echo(f"{describe(signed)}; {count} of {signed.quorum} signatures; written to {out}")

    @app.command("publish-receive-key")
    def publish_receive_key(
        key: Path = typer.Option(..., "--key", help="Your validator or auditor key file."),
        receive_keys: Path = RECEIVE_OPTION,
        node: str = NODE_OPTION, token: str | None = TOKEN_OPTION,
    ) -> None:
        """Publish a fresh receive key that the next epochs are sealed to (docs/privacy.md
        "Receive keys"), when you have none fresh; a running holder's node does it itself."""
        signer = load_key(key)
        directory = receive_keys if receive_keys is not None else Path(key).parent / RECEIVE_DIR
        held = read_receive_keys_of(key, directory)
        url = parse_node_url(node)
        with open_client() as client:
            chain_id = get_chain_id(client, url)
            commune = get_json(client, url, "/commune")
            sealing = commune.get("sealing") if isinstance(commune, dict) else None
            if not isinstance(sealing, dict):
                raise UserError("this chain does not seal payloads: it has no commune data key to receive")
            entry = (sealing.get("receive") or {}).get(signer.public.hex())
            if is_fresh(entry, held):
                typer.echo(f"your receive key {entry['public'][:16]}… is published, held in {directory} and unused: "
                           "nothing to do")
                return
            tx = build_receive_key_tx(signer, chain_id, entry, get_chain_time_s(client, url) * 1000, directory)
            tx_id = post_tx(client, url, tx, token)
        typer.echo(f"receive key {tx.public.hex()[:16]}… saved in {directory} and published (tx {tx_id[:16]}…): "
                   "the next epochs of the commune data key are sealed to it")

    @app.command("submit-data-key")
    def submit_data_key(
        in_file: Path = typer.Option(..., "--in", help="The co-signed rotation."),
        node: str = NODE_OPTION, token: str | None = TOKEN_OPTION,
    ) -> None:
        """Check the co-signatures against the node's current set, then post the rotation."""
        change = read_change(in_file, RotateDataKey)
        url = parse_node_url(node)
        with open_client() as client:
            chain_id = get_chain_id(client, url)
            basis = get_json(client, url, "/validators/change")
            try:
                sealing = parse_commune_sealing(get_json(client, url, "/commune"))
            except ValueError as exc:
                raise UserError(str(exc)) from None
            if sealing is None:
                raise UserError("this chain does not seal payloads")
            check_ready(change, chain_id, {**basis, "next_nonce": sealing.epoch + 1})
            typer.echo(post_tx(client, url, change.tx, token))
