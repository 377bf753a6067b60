"""``voisinage tx``: a household's value transactions, signed locally and posted (DESIGN §4, §9).

Each command builds one transaction of tokens/txs.py, signs it with ``--key`` (the
node never holds the key) and POSTs the signed bytes to ``--node``; it prints the
transaction id. Amounts are integers in the class's unit: ``kwh`` in Wh, ``hour``
in minutes, a class the commune defines in its genesis unit (docs/classes.md). Relative deadlines (``--days``, ``--hours``) count from the node's
chain clock.

A ``Service`` carries two signatures, the beneficiary's (who pays) and the
provider's. When both keys are on one machine, ``--provider-key`` co-signs
locally. Otherwise ``tx service`` without it writes the half-signed transaction
(hex) to ``--out``; the provider checks and co-signs it with ``tx cosign``, which
posts it. On a chain that seals payloads the file also holds the service sealed by the
beneficiary, and the provider's signature is added sealed to the commune key
(``SealedCosigned``, docs/privacy.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from node.commands.client import (
    NO_SIG, fetch_deadline, fetch_next_nonce, fetch_sealing, get_chain_id, open_client, parse_key_hex,
    parse_node_url, post_tx, publish_data_key, sign_tx, submit,
)
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.errors import UserError
from node.home.keyfile import load_key
from tokens.genesis import CLASS_NAME_RE
from tokens.rules_assoc import compute_fund_address
from tokens.sealing import add_cosig, build_sealed_cosigned
from tokens.txs import (
    SOLIDARITY, Accept, CancelRecovery, Offer, RevokeGift, SealedCosigned, Service, StandingGift, Transfer, Tx,
    decode_tx,
)
from wire import DecodeError, verify_signature
from wire.crypto import signing_bytes
from wire.limits import MAX_TX_BYTES

tx_app = typer.Typer(help="Household transactions: transfer, gift, revoke-gift, service, cosign, offer, accept, "
                          "cancel-recovery, redeem.",
                     no_args_is_help=True)

TOTAL_BP = 10_000
MAX_MEMO_BYTES = 140         # DESIGN §4: memo <= 140 bytes
MAX_U64 = 2**64 - 1
DAY_S, HOUR_S = 86_400, 3_600

KEY_OPTION = typer.Option(..., "--key", help="Your key file (the signer, who pays).")


# --- checking arguments (before any I/O) ---------------------------------------------------

def parse_class(cls: str, what: str) -> str:
    # Which classes the commune defines is the node's to say (unknown_class); here only
    # the name's form (docs/classes.md).
    if not CLASS_NAME_RE.fullmatch(cls):
        raise UserError(f"{what} must be kwh (Wh), hour (minutes) or a class of the commune "
                        f"(1 to 8 lowercase letters, digits or _), not {cls!r}")
    return cls


def parse_amount(amount: int, what: str) -> int:
    if not 0 < amount <= MAX_U64:
        raise UserError(f"{what} must be a positive integer")
    return amount


def parse_memo(memo: str) -> str:
    if len(memo.encode()) > MAX_MEMO_BYTES:
        raise UserError(f"--memo is {len(memo.encode())} bytes; at most {MAX_MEMO_BYTES}")
    return memo


def parse_gift_target(to: str) -> bytes:
    """A gift's beneficiary key: 'solidarity', 'fund:NAME' (tokens/rules_assoc.py) or a key."""
    if to == "solidarity":
        return SOLIDARITY
    if to.startswith("fund:"):
        name = to[len("fund:"):]
        if not name or len(name.encode()) > 32:
            raise UserError(f"--to fund:NAME needs a category name of 1 to 32 bytes, not {to!r}")
        return compute_fund_address(name)
    return parse_key_hex(to, "--to (a key, 'fund:NAME' or 'solidarity')")


# --- commands ---------------------------------------------------------------------------------

@tx_app.command("transfer")
def tx_transfer(
    to: str = typer.Option(..., "--to", help="Recipient's public key (hex)."),
    amount: int = typer.Option(..., "--amount", help="Wh for kwh, minutes for hour, the class's unit otherwise."),
    cls: str = typer.Option("kwh", "--class", help="kwh, hour or a class of the commune (e.g. points)."),
    memo: str = typer.Option("", "--memo", help="Up to 140 bytes, public."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Send kwh, hour or a class of the commune to another account (down to your credit limit)."""
    target = parse_key_hex(to, "--to")
    parse_class(cls, "--class")
    parse_amount(amount, "--amount")
    parse_memo(memo)
    typer.echo(submit(node, key, lambda signer, nonce: Transfer(
        signer=signer, nonce=nonce, to=target, cls=cls, amount=amount, memo=memo, sig=NO_SIG), token=token))


@tx_app.command("gift")
def tx_gift(
    to: str = typer.Option(..., "--to", help="Beneficiary: a household's or association's public key (hex); "
                           "'fund:NAME' for a category fund (e.g. fund:energy); or 'solidarity': shared "
                           "equally among the households the mairie flags as in need, at each mint."),
    bp: int = typer.Option(..., "--bp", help="Basis points of each of your future mints (100 = 1 %)."),
    until: int | None = typer.Option(None, "--until", min=0, help="Unix time the gift ends."),
    days: int | None = typer.Option(None, "--days", min=1, help="Or: days from now (chain clock)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Give a share of your future production to a neighbour, an association, a category
    fund or the households in need, until a date (a standing gift)."""
    beneficiary = parse_gift_target(to)
    if not 0 < bp <= TOTAL_BP:
        raise UserError(f"--bp must be between 1 and {TOTAL_BP}")
    end = fetch_deadline(node, until, None if days is None else days * DAY_S, ("--until", "--days"))
    typer.echo(submit(node, key, lambda signer, nonce: StandingGift(
        signer=signer, nonce=nonce, beneficiary=beneficiary, bp=bp, until=end, sig=NO_SIG), token=token))


@tx_app.command("revoke-gift")
def tx_revoke_gift(
    gift: str = typer.Option(..., "--gift", help="Id (hex) of the StandingGift transaction."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """End one of your standing gifts."""
    gift_id = parse_key_hex(gift, "--gift")
    typer.echo(submit(node, key, lambda signer, nonce: RevokeGift(
        signer=signer, nonce=nonce, gift=gift_id, sig=NO_SIG), token=token))


@tx_app.command("service")
def tx_service(
    provider: str = typer.Option(..., "--provider", help="Public key (hex) of who did the service."),
    minutes: int = typer.Option(..., "--minutes", help="Minutes of hour you pay the provider."),
    memo: str = typer.Option("", "--memo", help="What was done; up to 140 bytes, public."),
    provider_key: Path | None = typer.Option(None, "--provider-key",
                                             help="The provider's key file, to co-sign here "
                                                  "(both keys on one machine)."),
    out: Path | None = typer.Option(None, "--out", help="Without --provider-key: write the half-signed tx here "
                                    "for the provider to run `voisinage tx cosign --tx FILE`."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Time bank: pay a neighbour minutes of hour for a service. Both of you sign."""
    provider_pub = parse_key_hex(provider, "--provider")
    parse_amount(minutes, "--minutes")
    parse_memo(memo)
    if (provider_key is None) == (out is None):
        raise UserError("give --provider-key (co-sign here) or --out FILE (the provider co-signs with `tx cosign`)")

    def build(signer: bytes, nonce: int) -> Service:
        return Service(signer=signer, nonce=nonce, provider=provider_pub, minutes=minutes, memo=memo,
                       provider_sig=NO_SIG, sig=NO_SIG)

    if provider_key is not None:
        cosigner = load_key(provider_key)
        if cosigner.public != provider_pub:
            raise UserError(f"--provider-key holds {cosigner.public.hex()[:16]}…, not the --provider key")
        typer.echo(submit(node, key, build, token=token, cosigners=((cosigner, "provider_sig"),)))
        return
    write_half_signed(node, key, build, out)


def write_half_signed(node: str, key_path: Path, build, out: Path) -> None:
    """Sign as the beneficiary only and write the tx (hex) for the provider to co-sign. On a
    chain that seals payloads a second line holds it sealed (``SealedCosigned``, the
    provider's signature still to come): the provider reads the first, signs it, and
    seals its signature to the commune key (docs/privacy.md "What is sealed")."""
    key = load_key(key_path)
    url = parse_node_url(node)
    with open_client() as client:
        chain_id = get_chain_id(client, url)
        sealing = fetch_sealing(client, url)
        after = -1 if sealing is None else publish_data_key(client, url, key, chain_id, sealing)
        tx = sign_tx(build(key.public, max(after + 1, fetch_next_nonce(client, url, key.public))), key, chain_id)
    lines = [tx.encode().hex()]
    if sealing is not None:
        lines.append(build_sealed_cosigned(tx, key, chain_id, sealing.epoch, os.urandom(24)).encode().hex())
    try:
        out.write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    sealed = " (sealed: only your data key, the validators and the auditors open it)" if sealing else ""
    typer.echo(f"half-signed service written to {out}{sealed}; the provider runs: "
               f"voisinage tx cosign --tx {out} --key PROVIDER_KEY --node URL")


def decode_line(path: Path, text: str) -> Tx:
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise UserError(f"{path} does not hold a hex transaction: {exc}") from None
    if len(data) > MAX_TX_BYTES:
        raise UserError(f"{path}: a transaction is at most {MAX_TX_BYTES} bytes")
    try:
        return decode_tx(data)
    except DecodeError as exc:
        raise UserError(f"{path}: not a transaction: {exc.reason}") from None


def read_half_signed(path: Path) -> tuple[Service, SealedCosigned | None]:
    """The service, and its sealed envelope when the beneficiary's chain seals payloads."""
    try:
        lines = path.read_text().split()
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} does not hold a hex transaction: {getattr(exc, 'strerror', None) or exc}") from None
    if not 1 <= len(lines) <= 2:
        raise UserError(f"{path}: a half-signed service is one line of hex, or two on a chain that seals payloads")
    tx = decode_line(path, lines[0])
    if not isinstance(tx, Service):
        raise UserError(f"{path}: a {tx.TAG} transaction, not a service")
    envelope = decode_line(path, lines[1]) if len(lines) == 2 else None
    if envelope is not None and not (isinstance(envelope, SealedCosigned) and envelope.signer == tx.signer
                                     and envelope.nonce == tx.nonce):
        raise UserError(f"{path}: the second line is not this service's sealed envelope")
    return tx, envelope


@tx_app.command("cosign")
def tx_cosign(
    tx_file: Path = typer.Option(..., "--tx", help="The half-signed service written by `tx service --out`."),
    node: str = NODE_OPTION,
    key: Path = typer.Option(..., "--key", help="Your key file (the provider)."),
    token: str | None = TOKEN_OPTION,
) -> None:
    """Provider: check a half-signed service, add your signature, and post it (on a chain
    that seals payloads, your signature goes sealed to the commune key)."""
    tx, envelope = read_half_signed(tx_file)
    provider = load_key(key)
    if provider.public != tx.provider:
        raise UserError(f"this service names provider {tx.provider.hex()[:16]}…, not your key")
    url = parse_node_url(node)
    with open_client() as client:
        chain_id = get_chain_id(client, url)
        if not verify_signature(tx.signer, signing_bytes(chain_id, tx), tx.sig):
            raise UserError("the beneficiary's signature does not verify on this node's chain")
        sealing = fetch_sealing(client, url)
        signed = (sign_tx(tx, provider, chain_id, "provider_sig") if sealing is None
                  else cosign_sealed(tx, envelope, provider, chain_id, sealing))
        typer.echo(f"service: {tx.signer.hex()[:16]}… pays you {tx.minutes} min, memo {tx.memo!r}", err=True)
        typer.echo(post_tx(client, url, signed, token))


def cosign_sealed(tx: Service, envelope: SealedCosigned | None, provider, chain_id: bytes,
                  sealing) -> SealedCosigned:
    """The envelope with the provider's signature over ``tx`` sealed to the commune key."""
    if envelope is None:
        raise UserError("this chain seals household payloads and the file holds the service in clear only: the "
                        "beneficiary writes it again with `voisinage tx service --out` (which seals its part)")
    if not verify_signature(envelope.signer, signing_bytes(chain_id, envelope), envelope.sig):
        raise UserError("the beneficiary's signature of the sealed envelope does not verify on this node's chain")
    if envelope.epoch != sealing.epoch:
        raise UserError(f"the service was sealed under epoch {envelope.epoch} of the commune data key, now at "
                        f"{sealing.epoch}: the beneficiary writes it again with `voisinage tx service --out`")
    return add_cosig(envelope, tx, provider, chain_id, sealing.public, os.urandom(32))


@tx_app.command("offer")
def tx_offer(
    give_amount: int = typer.Option(..., "--give-amount", help="What you give, in its class's unit (Wh, minutes ...)."),
    give_cls: str = typer.Option(..., "--give-class", help="kwh, hour or a class of the commune."),
    want_amount: int = typer.Option(..., "--want-amount", help="What you want in return."),
    want_cls: str = typer.Option(..., "--want-class", help="kwh, hour or a class of the commune."),
    counterparty: str | None = typer.Option(None, "--counterparty", help="Only this household may accept (hex)."),
    expires: int | None = typer.Option(None, "--expires", min=0, help="Unix time the offer lapses."),
    hours: int | None = typer.Option(None, "--hours", min=1, help="Or: hours from now (chain clock)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Offer an exchange between classes at your price; `tx accept` settles both legs at once."""
    parse_class(give_cls, "--give-class")
    parse_class(want_cls, "--want-class")
    parse_amount(give_amount, "--give-amount")
    parse_amount(want_amount, "--want-amount")
    other = None if counterparty is None else parse_key_hex(counterparty, "--counterparty")
    end = fetch_deadline(node, expires, None if hours is None else hours * HOUR_S, ("--expires", "--hours"))
    typer.echo(submit(node, key, lambda signer, nonce: Offer(
        signer=signer, nonce=nonce, give_cls=give_cls, give_amount=give_amount, want_cls=want_cls,
        want_amount=want_amount, counterparty=other, expires=end, sig=NO_SIG), token=token))


@tx_app.command("accept")
def tx_accept(
    offer: str = typer.Option(..., "--offer", help="Id (hex) of the Offer transaction."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Accept an open offer: both legs move in the same block, or neither."""
    offer_id = parse_key_hex(offer, "--offer")
    typer.echo(submit(node, key, lambda signer, nonce: Accept(
        signer=signer, nonce=nonce, offer=offer_id, sig=NO_SIG), token=token))


@tx_app.command("cancel-recovery")
def tx_cancel_recovery(node: str = NODE_OPTION, key: Path = typer.Option(..., "--key", help="Your key file: the "
                                                                          "key a registrar is recovering."),
                       token: str | None = TOKEN_OPTION) -> None:
    """Cancel a key recovery of your household that you did not ask for."""
    typer.echo(submit(node, key, lambda signer, nonce: CancelRecovery(signer=signer, nonce=nonce, sig=NO_SIG),
                      token=token))


def register(app: typer.Typer) -> None:
    app.add_typer(tx_app, name="tx")
