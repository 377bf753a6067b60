"""``voisinage consent ...`` and ``voisinage account curve``: the household's own data and
the consents it grants, on its own node (docs/privacy.md "Consent and Data Connect").

Every request is signed here with the household's key file (node/consent/signed.py);
the key never leaves this process. Failures are one line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import typer

from node.clock import compute_local_day_start, compute_paris_offset_s
from node.commands.account import account_app
from node.commands.client import describe_unreachable, get_json, open_client, parse_node_url
from node.commands.options import NODE_OPTION
from node.consent.dataconnect import HALF_S, MEASURES
from node.consent.signed import NONCE_BYTES, sign_request
from node.errors import UserError
from node.home.keyfile import load_key
from wire import Keypair

consent_app = typer.Typer(help="Consents to read the household's data: clients, approvals, grants, the access log.",
                          no_args_is_help=True)
client_app = typer.Typer(help="Third-party clients the household registers on its node.", no_args_is_help=True)
consent_app.add_typer(client_app, name="client")

KEY_OPTION = typer.Option(..., "--key", help="The household's key file (the node's household).")
JSON_OPTION = typer.Option(False, "--json", help="Print the node's JSON.")


def describe_refusal(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    if isinstance(doc, dict):
        return str(doc.get("error_description") or doc.get("error") or doc)[:300]
    return str(doc)[:200]


def send_signed(client: httpx.Client, url: str, key: Keypair, method: str, path: str,
                params: list[tuple[str, str]] | str = ()) -> httpx.Response:
    """One request signed by the household's key; any answer but 2xx or 302 is one line."""
    query = params if isinstance(params, str) else urlencode(params)
    headers = sign_request(key, method, path, query, int(time.time()), secrets.token_bytes(NONCE_BYTES))
    try:
        resp = client.request(method, f"{url}{path}" + (f"?{query}" if query else ""), headers=headers)
    except httpx.HTTPError as exc:
        raise describe_unreachable(url, exc) from None
    if not (200 <= resp.status_code < 300 or resp.status_code == 302):
        raise UserError(f"{method} {path} answered {resp.status_code}: {describe_refusal(resp)}")
    return resp


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what} must be a date YYYY-MM-DD, not {text!r}") from None


def fetch_own_prm(client: httpx.Client, url: str, key: Keypair) -> str:
    doc = get_json(client, url, f"/accounts/{key.public.hex()}", signer=key)
    household = doc.get("household") if isinstance(doc, dict) else None
    if isinstance(household, dict) and doc.get("redacted"):
        # The node answered the public part: another household's node serves only its own.
        raise UserError(f"{key.public.hex()[:16]}… is not this node's household: ask your own node")
    if not isinstance(household, dict) or not household.get("prm"):
        raise UserError(f"{key.public.hex()[:16]}… is not a registered household on this chain")
    return str(household["prm"])


def format_curve(doc: dict[str, Any]) -> list[str]:
    reading = doc["usage_point"][0]["meter_reading"]
    first = compute_local_day_start(dt.date.fromisoformat(reading["start"]))
    lines = [f"usage point {reading['usage_point_id']}  {reading['start']} to {reading['end']} (excluded), "
             f"mean W per half hour, {reading['reading_type'].get('flow_direction')}"]
    for r in reading["interval_reading"]:
        start = first + (int(r["rank"]) - 1) * HALF_S
        local = dt.datetime.fromtimestamp(start + compute_paris_offset_s(start), dt.timezone.utc)
        lines.append(f"{local:%Y-%m-%d %H:%M}  {int(r['value']):>7} W  {int(r['value']) // 2:>6} Wh")
    if not reading["interval_reading"]:
        lines.append("no settled half hour in this period")
    return lines


@account_app.command("curve")
def account_curve(
    key: Path = KEY_OPTION, node: str = NODE_OPTION,
    first: str = typer.Option(..., "--from", help="First local day, YYYY-MM-DD."),
    last: str = typer.Option(..., "--to", help="Last local day, YYYY-MM-DD (included; at most 7 days)."),
    production: bool = typer.Option(False, "--production", help="The production curve instead of consumption."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The household's own half-hourly curve in Data Connect shape, by a request signed with its key."""
    start, end = parse_day(first, "--from"), parse_day(last, "--to") + dt.timedelta(days=1)
    measure = next(m for m in MEASURES if m.scope == ("production_load_curve" if production
                                                       else "consumption_load_curve"))
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        prm = fetch_own_prm(client, url, keypair)
        resp = send_signed(client, url, keypair, "GET", "/dataconnect" + measure.path,
                           [("usage_point_id", prm), ("start", start.isoformat()), ("end", end.isoformat())])
    doc = resp.json()
    typer.echo(json.dumps(doc, indent=2) if as_json else "\n".join(format_curve(doc)))


@client_app.command("add")
def client_add(
    name: str = typer.Option(..., "--name", help="Who the client is, as you will see it in grants and the log."),
    redirect_uri: str = typer.Option(..., "--redirect-uri", help="Where the client receives codes (https)."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """Register a third party's client: prints its client_id and client_secret (shown only once)."""
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        doc = send_signed(client, url, keypair, "POST", "/consent/clients",
                          [("name", name), ("redirect_uri", redirect_uri)]).json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"client_id      {doc['client_id']}\nclient_secret  {doc['client_secret']}  (shown once)\n"
               f"authorize at   {url}/oauth/authorize  token at {url}/oauth/token")


CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{22}")   # secrets.token_urlsafe(16), as the node makes them


@client_app.command("remove")
def client_remove(
    client_id: str = typer.Option(..., "--client", help="The client's id (voisinage consent grants)."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION,
) -> None:
    """Remove a client: every grant it holds is revoked at once, its tokens stop working."""
    if not CLIENT_ID.fullmatch(client_id):
        raise UserError(f"--client {client_id!r} is not a client id (22 letters, digits, '-' or '_': "
                        "voisinage consent grants lists yours)")
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        doc = send_signed(client, url, keypair, "POST", f"/consent/clients/{client_id}/remove").json()
    typer.echo(f"removed client {doc['client_id']} ({doc['name']}): {doc['revoked_grants']} active grant(s) revoked")


def split_authorize_url(url: str, node: str) -> str:
    """The query of an authorization URL on this node."""
    parts = urlsplit(url)
    if parts.path != "/oauth/authorize" or f"{parts.scheme}://{parts.netloc}" != node:
        raise UserError(f"--url must be {node}/oauth/authorize?..., the address the client sent you to")
    return parts.query


@consent_app.command("approve")
def consent_approve(
    url: str = typer.Option(..., "--url", help="The authorization URL the client sent you to."),
    deny: bool = typer.Option(False, "--deny", help="Refuse instead (the client gets access_denied)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION,
) -> None:
    """Show what a client asks (client, scopes, duration), then approve it with your key:
    prints the redirect the client receives, with its code."""
    base, keypair = parse_node_url(node), load_key(key)
    query = split_authorize_url(url, base)
    with open_client() as client:
        # The request names the household's usage point: it is shown to the household only.
        asked = send_signed(client, base, keypair, "GET", "/oauth/authorize", query).json()
        typer.echo(f"{asked['client_name']} ({asked['client_id']}) asks to read {', '.join(asked['scopes'])} "
                   f"of usage point {asked['usage_point_id']} for {asked['duration_days']} days")
        if not yes and not deny and not typer.confirm("Approve?"):
            deny = True
        decision = urlencode([("decision", "deny" if deny else "approve")])
        done = send_signed(client, base, keypair, "POST", "/oauth/authorize", f"{query}&{decision}")
    typer.echo(f"{'denied' if deny else 'approved'}: redirect to {done.headers.get('location', '?')}")


def format_grant(grant: dict[str, Any]) -> str:
    def day(t: int) -> str:
        return dt.datetime.fromtimestamp(t, dt.timezone.utc).date().isoformat()
    return (f"{grant['id']}  {grant['status']:<8} {grant['client_name']} ({grant['client_id']})  "
            f"{' '.join(grant['scopes'])}  {grant['prm']}  {day(grant['created'])} to {day(grant['expires'])}")


@consent_app.command("grants")
def consent_grants(key: Path = KEY_OPTION, node: str = NODE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The grants you approved (active, expired, revoked) and your registered clients."""
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        doc = send_signed(client, url, keypair, "GET", "/consent/grants").json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    lines = [format_grant(g) for g in doc["grants"]] or ["no grant"]
    lines += [f"client {c['client_id']}  {c['name']}  {c['redirect_uri']}" for c in doc["clients"]]
    typer.echo("\n".join(lines))


@consent_app.command("revoke")
def consent_revoke(
    grant: str = typer.Option(..., "--grant", help="The grant's id (voisinage consent grants)."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION,
) -> None:
    """Revoke a grant: every token of it stops working at once."""
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        doc = send_signed(client, url, keypair, "POST", f"/consent/grants/{grant}/revoke").json()
    typer.echo(format_grant(doc))


@consent_app.command("log")
def consent_log(
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="How many entries, newest first."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """Every read of your data through the Data Connect routes: who, when, which scope and dates, the answer."""
    url, keypair = parse_node_url(node), load_key(key)
    with open_client() as client:
        doc = send_signed(client, url, keypair, "GET", "/consent/log", [("limit", str(limit))]).json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    lines = [f"{dt.datetime.fromtimestamp(e['t'], dt.timezone.utc):%Y-%m-%d %H:%M:%S}Z  "
             f"{e['client_name'] or e['who']:<20} {e['scope']:<24} {e['start']} to {e['end']}  {e['status']}"
             for e in doc["entries"]]
    typer.echo("\n".join(lines) or "no access yet")


@consent_app.command("reads")
def consent_reads(
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="How many entries, newest first."),
    key: Path = KEY_OPTION, node: str = NODE_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """What a node's operator (the mairie's API token) or a registrar read of your data through
    that node: ask each validator's node (docs/privacy.md "Privileged reads")."""
    url, keypair = parse_node_url(node), load_key(key)
    path = f"/households/{keypair.public.hex()}/reads"
    with open_client() as client:
        doc = send_signed(client, url, keypair, "GET", path, [("limit", str(limit))]).json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    lines = [f"{dt.datetime.fromtimestamp(e['t'], dt.timezone.utc):%Y-%m-%d %H:%M:%S}Z  "
             f"{e['who'] if e['registrar'] is None else 'registrar ' + e['registrar'][:16]:<26} "
             f"{e['method']} {e['path']}{'?' + e['query'] if e['query'] else ''}  {e['status']}"
             for e in doc["entries"]]
    typer.echo("\n".join(lines) or "no privileged read of your data on this node")


def register(app: typer.Typer) -> None:
    app.add_typer(consent_app, name="consent")
