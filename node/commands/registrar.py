"""``voisinage registrar``: the mairie's registrar office (DESIGN §4 registrar transactions).

Each command builds one registrar-signed transaction of tokens/txs.py, signs it with
``--key`` (the registrar's key file; the node never holds it) and POSTs it to
``--node``; it prints the transaction id. Arguments are checked here with the
ledger's own rules before anything is sent, and the node checks everything again
(a duplicate meter or PRM, an unknown household, a signer who is not a registrar):
either way the refusal is one line and nothing changes on chain.

Changing the registrars themselves takes >= 2/3 of the validators (DESIGN §12):
``propose-set-change`` writes a RegistrarSetChange file (node/commands/cosigned.py),
each validator adds its signature with ``cosign``, and ``submit`` posts it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import typer

from node.commands.client import (
    NO_SIG, get_json, open_client, parse_key_hex, parse_node_url, submit,
)
from node.commands.options import NODE_OPTION, TOKEN_OPTION
from node.commands.cosigned import (
    Change, cosign_file, fetch_basis, submit_change, write_change,
)
from node.commands.tx import parse_amount, parse_class, parse_memo
from node.errors import UserError
from node.home.keyfile import load_key
from tokens.errors import InvalidTx
from tokens.rules_household import check_digits, check_kva
from tokens.rules_registrars import check_registrar_change
from tokens.txs import (
    Deregister, Issue, PublicService, RecoverKey, RegisterHousehold, RegistrarSetChange, Spend, UpdateHousehold,
)

registrar_app = typer.Typer(help="The registrar office: register, update, deregister and recover households, "
                                 "credit public service, spend from category funds, issue commune token classes; "
                                 "euro debt payments, payouts "
                                 "and the accountant's ledger; associations; registrar set changes.",
                            no_args_is_help=True)

KEY_OPTION = typer.Option(..., "--key", help="The registrar's key file.")
MAX_LABEL_BYTES = 64        # tokens/txs.py RegisterHousehold.label
HOUR_S = 3600


def parse_serial(value: str, digits: int, option: str) -> str:
    """A meter serial (12 digits) or PRM (14 digits), by the ledger's own rule."""
    try:
        check_digits(value, digits, option.lstrip("-"))
    except InvalidTx as exc:
        raise UserError(f"{option}: {exc.detail}") from None
    return value


def parse_kva(kva: int) -> int:
    try:
        check_kva(kva)
    except InvalidTx as exc:
        raise UserError(f"--kva: {exc.detail}") from None
    return kva


def parse_kwc(kwc: str) -> int:
    """Installed peak power in kWc (``3`` or ``3.5``), as whole watts."""
    try:
        watts = Decimal(kwc) * 1000
    except InvalidOperation:
        raise UserError(f"--kwc must be a number of kWc such as 3 or 3.5, not {kwc!r}") from None
    if not watts.is_finite() or watts < 0 or watts != watts.to_integral_value() or watts > 10**9:
        raise UserError(f"--kwc must be a non-negative number of kWc with at most 3 decimals, not {kwc!r}")
    return int(watts)


def parse_label(label: str) -> str:
    if not label.strip() or len(label.encode()) > MAX_LABEL_BYTES:
        raise UserError(f"--label must be 1 to {MAX_LABEL_BYTES} bytes")
    return label


def fetch_household(node: str, household: bytes, key: Path, token: str | None = None) -> dict[str, Any]:
    """The household as the node's committed state has it, read with a request signed by
    the registrar's ``key`` (a registrar reads the records it registered); unknown is one
    clear line."""
    with open_client() as client:
        doc = get_json(client, parse_node_url(node), f"/accounts/{household.hex()}", missing={},
                       signer=load_key(key), token=token)
    if not isinstance(doc, dict) or not isinstance(doc.get("household"), dict):
        raise UserError(f"{household.hex()} is not a registered household")
    return doc["household"]


@registrar_app.command("register")
def registrar_register(
    household_pub: str = typer.Option(..., "--household-pub", help="The household's public key (hex), "
                                                                     "from `keys new` on its own box."),
    meter: str = typer.Option(..., "--meter", help="Linky serial (ADCO/ADSC), 12 digits."),
    prm: str = typer.Option(..., "--prm", help="Delivery point (PRM), 14 digits."),
    label: str = typer.Option(..., "--label", help="A name for the dashboard (up to 64 bytes)."),
    kva: int = typer.Option(..., "--kva", help="Subscribed power, kVA."),
    kwc: str = typer.Option("0", "--kwc", help="Installed solar peak power, kWc (0: none)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Register a household: its key, meter, PRM, label, kVA and kWc."""
    target = parse_key_hex(household_pub, "--household-pub")
    fields = dict(key=target, meter=parse_serial(meter, 12, "--meter"), prm=parse_serial(prm, 14, "--prm"),
                  label=parse_label(label), kva=parse_kva(kva), peak_w=parse_kwc(kwc))
    typer.echo(submit(node, key, lambda signer, nonce: RegisterHousehold(
        signer=signer, nonce=nonce, sig=NO_SIG, **fields), token=token))


@registrar_app.command("update")
def registrar_update(
    household_pub: str = typer.Option(..., "--household-pub", help="The household's public key (hex)."),
    meter: str = typer.Option(None, "--meter", help="A new Linky serial (its first reading sets the baseline)."),
    kva: int = typer.Option(None, "--kva", help="A new subscribed power, kVA."),
    kwc: str = typer.Option(None, "--kwc", help="A new installed peak power, kWc."),
    solidarity: bool = typer.Option(None, "--solidarity/--no-solidarity",
                                    help="Flag (or unflag) the household as in need."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Change a household's meter, power or solidarity flag; what is not given stays."""
    target = parse_key_hex(household_pub, "--household-pub")
    if meter is None and kva is None and kwc is None and solidarity is None:
        raise UserError("give at least one of --meter, --kva, --kwc, --solidarity/--no-solidarity")
    new = {"meter": None if meter is None else parse_serial(meter, 12, "--meter"),
           "kva": None if kva is None else parse_kva(kva),
           "peak_w": None if kwc is None else parse_kwc(kwc), "solidarity": solidarity}
    current = fetch_household(node, target, key, token)
    fields = {name: current[name] if value is None else value for name, value in new.items()}
    typer.echo(submit(node, key, lambda signer, nonce: UpdateHousehold(
        signer=signer, nonce=nonce, key=target, sig=NO_SIG, **fields), token=token))


@registrar_app.command("public-service")
def registrar_public_service(
    to: str = typer.Option(..., "--to", help="The household on call (public key, hex)."),
    hours: int = typer.Option(..., "--hours", help="Whole hours of on-call duty."),
    memo: str = typer.Option("", "--memo", help="Up to 140 bytes, public."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Credit on-call duty (firefighters...) from the treasury at public_service_rate."""
    target = parse_key_hex(to, "--to")
    on_call_s = parse_amount(hours, "--hours") * HOUR_S
    parse_memo(memo)
    typer.echo(submit(node, key, lambda signer, nonce: PublicService(
        signer=signer, nonce=nonce, beneficiary=target, on_call_s=on_call_s, memo=memo, sig=NO_SIG), token=token))


@registrar_app.command("issue")
def registrar_issue(
    cls: str = typer.Option(..., "--class", help="A class of the commune that the registrar issues (e.g. points)."),
    to: str = typer.Option(..., "--to", help="The household or association credited (public key, hex)."),
    amount: int = typer.Option(..., "--amount", help="In the class's unit (docs/classes.md)."),
    memo: str = typer.Option("", "--memo", help="What it is for (up to 140 bytes)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Issue a commune-defined class: recycled material brought in, points earned."""
    parse_class(cls, "--class")
    target = parse_key_hex(to, "--to")
    parse_amount(amount, "--amount")
    parse_memo(memo)
    typer.echo(submit(node, key, lambda signer, nonce: Issue(
        signer=signer, nonce=nonce, cls=cls, to=target, amount=amount, memo=memo, sig=NO_SIG), token=token))


@registrar_app.command("spend")
def registrar_spend(
    category: str = typer.Option(..., "--category", help="The category fund to pay from (e.g. roads)."),
    to: str = typer.Option(..., "--to", help="The account paid (public key, hex)."),
    amount: int = typer.Option(..., "--amount", help="kwh, in Wh."),
    memo: str = typer.Option(..., "--memo", help="What it pays for (up to 140 bytes, public)."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Pay out of a category fund, publicly, with a memo."""
    target = parse_key_hex(to, "--to")
    parse_amount(amount, "--amount")
    parse_memo(memo)
    if not category or len(category.encode()) > 32:
        raise UserError("--category must be 1 to 32 bytes")
    typer.echo(submit(node, key, lambda signer, nonce: Spend(
        signer=signer, nonce=nonce, category=category, to=target, amount=amount, memo=memo, sig=NO_SIG),
        token=token))


@registrar_app.command("deregister")
def registrar_deregister(
    household_pub: str = typer.Option(..., "--household-pub", help="The household's public key (hex)."),
    memo: str = typer.Option("", "--memo", help="Why (a move...), up to 140 bytes, public."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """A household moves out: its meter and PRM are free from the next block; its account stays with its key."""
    target = parse_key_hex(household_pub, "--household-pub")
    parse_memo(memo)
    fetch_household(node, target, key, token)
    typer.echo(submit(node, key, lambda signer, nonce: Deregister(
        signer=signer, nonce=nonce, key=target, memo=memo, sig=NO_SIG), token=token))


@registrar_app.command("recover")
def registrar_recover(
    household_pub: str = typer.Option(..., "--household-pub", help="The household's lost key (hex)."),
    new_pub: str = typer.Option(..., "--new-pub", help="Its new public key (hex), from `keys new`."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Start a key recovery: it completes after recovery_delay_s unless the old key cancels it."""
    old = parse_key_hex(household_pub, "--household-pub")
    new = parse_key_hex(new_pub, "--new-pub")
    if old == new:
        raise UserError("--new-pub must differ from --household-pub")
    fetch_household(node, old, key, token)
    typer.echo(submit(node, key, lambda signer, nonce: RecoverKey(
        signer=signer, nonce=nonce, key=old, new_key=new, sig=NO_SIG), token=token))


@registrar_app.command("propose-set-change")
def registrar_propose_set_change(
    add: list[str] = typer.Option([], "--add", help="Public key (hex) of a registrar to add (repeatable)."),
    remove: list[str] = typer.Option([], "--remove", help="Public key (hex) of a registrar to remove (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Where to write the change for the validators to co-sign."),
    node: str = NODE_OPTION,
) -> None:
    """Write a registrar set change built on the node's registrars and next nonce."""
    chain_id, basis = fetch_basis(node, RegistrarSetChange)
    tx = RegistrarSetChange(nonce=basis["next_nonce"], add=tuple(parse_key_hex(k, "--add") for k in add),
                            remove=tuple(parse_key_hex(k, "--remove") for k in remove), sigs=())
    try:
        check_registrar_change([bytes.fromhex(k) for k in basis["registrars"]], tx)
    except InvalidTx as exc:
        raise UserError(f"{exc.reason}: {exc.detail}") from None
    change = Change(chain_id, tuple(bytes.fromhex(k) for k in basis["validators"]), basis["quorum"], tx)
    write_change(out, change)
    typer.echo(f"registrar change {tx.nonce} written to {out}: {change.quorum} of {len(change.validators)} "
               f"validators co-sign it with `voisinage registrar cosign --in {out} --key KEY --out FILE`")


@registrar_app.command("cosign")
def registrar_cosign(
    in_file: Path = typer.Option(..., "--in", help="The change (from propose-set-change or another cosign)."),
    key: Path = typer.Option(..., "--key", help="Your validator key file."),
    out: Path = typer.Option(..., "--out", help="Where to write the change with your signature."),
) -> None:
    """Validator: check a proposed registrar change and add your co-signature (offline)."""
    signed, count = cosign_file(in_file, RegistrarSetChange, key, out)
    typer.echo(f"registrar change {signed.tx.nonce}: {count} of {signed.quorum} signatures; written to {out}")


@registrar_app.command("submit")
def registrar_submit(
    in_file: Path = typer.Option(..., "--in", help="The co-signed registrar change."),
    node: str = NODE_OPTION, token: str | None = TOKEN_OPTION,
) -> None:
    """Check the co-signatures against the node's current validators, then post the change."""
    typer.echo(submit_change(in_file, RegistrarSetChange, node, token))


def register(app: typer.Typer) -> None:
    app.add_typer(registrar_app, name="registrar")
