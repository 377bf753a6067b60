"""``voisinage gov``: the household's governance commands and the offline tally (DESIGN §5, §9).

``delegate``, ``allocate``, ``propose`` and ``vote`` build a transaction from
tokens/txs.py, sign it locally with the household's key (the node never holds
it) and POST it to the node; ``show`` reads the standing allocation and the
proposals; ``tally`` runs governance/ on a JSON case, offline, for audits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from governance.delegation import TOPICS
from governance.errors import GovernanceError
from governance.markets import TOTAL_BP
from governance.offline import run_case
from governance.proposals import CHOICES
from node.commands.client import (
    NO_SIG, fetch_deadline, get_json, open_client, parse_key_hex, parse_node_url, submit,
)
from node.commands.options import NODE_OPTION
from node.errors import UserError
from tokens.errors import InvalidTx
from tokens.genesis import DEFAULT_PARAMS
from tokens.rules_auditors import AUDITORS_PARAM
from tokens.rules_registrars import REGISTRARS_PARAM, RegistrarProposal, check_registrar_change
from tokens.txs import AllocationBallot, BallotEntry, Delegate, Propose, Vote

gov_app = typer.Typer(help="Liquid democracy: delegate, allocate, propose, vote, show; offline tally.",
                      no_args_is_help=True)

MAX_CASE_BYTES = 64 * 1024 * 1024
MAX_VALUE_BYTES = 1024      # tokens/txs.py Propose.value


# --- offline tally -------------------------------------------------------------------

def fail_input(message: str) -> NoReturn:
    """Invalid input to the offline tally: one line, exit 2 (DESIGN §9)."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def read_case(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_CASE_BYTES:
            fail_input(f"{path} is larger than {MAX_CASE_BYTES // (1024 * 1024)} MiB")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        fail_input(f"case file not found: {path}")
    except (OSError, UnicodeDecodeError) as exc:
        fail_input(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        fail_input(f"{path} is not valid JSON: {str(exc)[:120]}")


@gov_app.command("tally")
def gov_tally(path: Path = typer.Option(..., "--input", help="Case file (JSON): voters, weights, "
                                        "delegations, and ballots or votes.")) -> None:
    """Tally a JSON case offline with the ledger's code and print the result as JSON."""
    doc = read_case(path)
    try:
        result = run_case(doc)
    except GovernanceError as exc:
        fail_input(str(exc))
    typer.echo(json.dumps(result, indent=2))


# --- building the transactions ------------------------------------------------------------

def build_delegate(signer: bytes, nonce: int, topic: str, to: bytes | None) -> Delegate:
    if topic not in TOPICS:
        raise UserError(f"--topic must be one of {', '.join(TOPICS)}, not {topic!r}")
    return Delegate(signer=signer, nonce=nonce, topic=topic, to=to, sig=NO_SIG)


def parse_bp(text: str) -> int:
    try:
        bp = int(text)
    except ValueError:
        raise UserError(f"--bps: {text!r} is not an integer") from None
    if bp < 0:
        raise UserError(f"--bps: {bp} is negative")
    return bp


def parse_bps(text: str, categories: list[str]) -> dict[str, int]:
    """``pensions=4000,energy=1000,...`` (an omitted category gets 0), or one value per
    category in the node's current order; by name either way, summing to 10 000."""
    parts = [part.strip() for part in text.split(",")]
    named = ["=" in part for part in parts]
    if any(named) and not all(named):
        raise UserError("--bps: give every entry as name=bp, or only numbers in the categories' order")
    if all(named):
        pairs = [part.split("=", 1) for part in parts]
        ballot = {name.strip(): parse_bp(bp) for name, bp in pairs}
        if len(ballot) != len(pairs):
            raise UserError("--bps: a category is named twice")
    elif len(parts) != len(categories):
        raise UserError(f"--bps: {len(parts)} numbers for {len(categories)} categories "
                        f"({', '.join(categories)}); or give name=bp entries")
    else:
        ballot = dict(zip(categories, (parse_bp(part) for part in parts)))
    unknown = sorted(set(ballot) - set(categories))
    if unknown:
        raise UserError(f"--bps: no category {unknown[0]!r}; the categories are {', '.join(categories)}")
    if sum(ballot.values()) != TOTAL_BP:
        raise UserError(f"--bps must sum to {TOTAL_BP}, not {sum(ballot.values())}")
    return ballot


def build_ballot(signer: bytes, nonce: int, ballot: dict[str, int]) -> AllocationBallot:
    # tokens/rules_gov.py check_ballot_entries: sorted by name, zero entries left out.
    entries = tuple(BallotEntry(category=name, bp=bp) for name, bp in sorted(ballot.items()) if bp)
    return AllocationBallot(signer=signer, nonce=nonce, entries=entries, sig=NO_SIG)


def fetch_categories(node: str) -> list[str]:
    """The allocation categories, in order, as the node sees them now."""
    with open_client() as client:
        doc = get_json(client, parse_node_url(node), "/governance/allocation")
    names = doc.get("categories") if isinstance(doc, dict) else None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise UserError("GET /governance/allocation: no categories in the node's answer")
    return names


def parse_canonical_value(text: str) -> str:
    """A parameter value as canonical JSON text (tokens/txs.py Propose.value)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise UserError(f"--value must be JSON (quote text: '\"mean\"'), not {text!r}") from None
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(canonical.encode()) > MAX_VALUE_BYTES:
        raise UserError(f"--value is longer than {MAX_VALUE_BYTES} bytes")
    return canonical


def build_propose(signer: bytes, nonce: int, param: str, value: str, voting_end: int) -> Propose:
    if param == REGISTRARS_PARAM:
        raise UserError("to change the registrars, use `voisinage gov propose-registrars --add/--remove`")
    if param == AUDITORS_PARAM:
        raise UserError("to appoint or remove auditors, use `voisinage gov propose-auditors --add/--remove`")
    if param not in DEFAULT_PARAMS:
        raise UserError(f"unknown parameter {param!r}")
    return Propose(signer=signer, nonce=nonce, param=param, value=parse_canonical_value(value),
                   voting_end=voting_end, sig=NO_SIG)


def build_vote(signer: bytes, nonce: int, proposal: bytes, choice: str) -> Vote:
    if choice not in CHOICES:
        raise UserError(f"--choice must be yes, no or abstain, not {choice!r}")
    return Vote(signer=signer, nonce=nonce, proposal=proposal, choice=choice, sig=NO_SIG)


# --- household commands ------------------------------------------------------------------------

KEY_OPTION = typer.Option(..., "--key", help="The household's key file.")


@gov_app.command("delegate")
def gov_delegate(
    topic: str = typer.Option("*", "--topic", help="allocation, params or * (every topic without its own)."),
    to: str | None = typer.Option(None, "--to", help="Public key (hex) of the household to delegate to."),
    none: bool = typer.Option(False, "--none", help="Delegate to nobody on this topic (blocks '*')."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Delegate a topic to another household, or to nobody; a direct ballot still overrides it."""
    if (to is None) == (not none):
        raise UserError("give exactly one of --to or --none")
    target = None if none else parse_key_hex(to, "--to")
    build_delegate(bytes(32), 0, topic, target)          # refuse a bad topic before any I/O
    typer.echo(submit(node, key, lambda signer, nonce: build_delegate(signer, nonce, topic, target)))


@gov_app.command("allocate")
def gov_allocate(
    bps: str = typer.Option(..., "--bps", help="Basis points by category, summing to 10000, e.g. "
                            "pensions=5000,roads=5000 (an omitted category gets 0); or one number per "
                            "category in the order gov show lists them."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Cast (or replace) the household's standing allocation ballot, keyed by category name."""
    # The categories are the node's at signing time: a positional --bps is named by them.
    typer.echo(submit(node, key, lambda signer, nonce: build_ballot(signer, nonce,
                                                                    parse_bps(bps, fetch_categories(node)))))


@gov_app.command("propose")
def gov_propose(
    param: str = typer.Option(..., "--param", help="The parameter to change, e.g. levy_bp."),
    value: str = typer.Option(..., "--value", help="Its new value, as JSON."),
    voting_end: int | None = typer.Option(None, "--voting-end", min=0, help="Unix time voting closes."),
    window: int | None = typer.Option(None, "--window", min=1, help="Or: seconds from now voting stays open."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Propose a parameter change, decided by the liquid tally when voting closes."""
    if (voting_end is None) == (window is None):
        raise UserError("give exactly one of --voting-end or --window")
    build_propose(bytes(32), 0, param, value, 0)        # bad arguments fail before any request
    # The window counts on the chain's clock, which decides when voting closes (it runs
    # faster on a development chain, and a household's clock may be wrong).
    end = fetch_deadline(node, voting_end, window, ("--voting-end", "--window"))
    typer.echo(submit(node, key, lambda signer, nonce: build_propose(signer, nonce, param, value, end)))


@gov_app.command("propose-registrars")
def gov_propose_registrars(
    add: list[str] = typer.Option([], "--add", help="Public key (hex) of a registrar to add (repeatable)."),
    remove: list[str] = typer.Option([], "--remove", help="Public key (hex) of a registrar to remove "
                                                          "(repeatable)."),
    voting_end: int | None = typer.Option(None, "--voting-end", min=0, help="Unix time voting closes."),
    window: int | None = typer.Option(None, "--window", min=1, help="Or: seconds from now voting stays open."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Propose a change of the registrar set; if it passes, it is in force from the next block
    (a removed registrar's signatures are refused from then on)."""
    if (voting_end is None) == (window is None):
        raise UserError("give exactly one of --voting-end or --window")
    change = RegistrarProposal(tuple(parse_key_hex(k, "--add") for k in add),
                               tuple(parse_key_hex(k, "--remove") for k in remove))
    with open_client() as client:
        current = get_json(client, parse_node_url(node), "/registrars")
    if not isinstance(current, dict) or not isinstance(current.get("registrars"), list):
        raise UserError("GET /registrars: the node's answer lacks the registrars")
    try:
        check_registrar_change([bytes.fromhex(k) for k in current["registrars"]], change)
    except InvalidTx as exc:
        raise UserError(f"{exc.reason}: {exc.detail}") from None
    end = fetch_deadline(node, voting_end, window, ("--voting-end", "--window"))
    typer.echo(submit(node, key, lambda signer, nonce: Propose(
        signer=signer, nonce=nonce, param=REGISTRARS_PARAM, value=change.to_value(), voting_end=end, sig=NO_SIG)))


@gov_app.command("vote")
def gov_vote(
    proposal: str = typer.Option(..., "--proposal", help="Id (hex) of the Propose transaction."),
    choice: str = typer.Option(..., "--choice", help="yes, no or abstain."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Vote on a proposal; this overrides any delegation of the params topic."""
    proposal_id = parse_key_hex(proposal, "--proposal")
    build_vote(bytes(32), 0, proposal_id, choice)
    typer.echo(submit(node, key, lambda signer, nonce: build_vote(signer, nonce, proposal_id, choice)))


def format_allocation(doc: Any) -> list[str]:
    """Category lines when the node gives {category: bp}; the JSON itself otherwise."""
    shares = doc.get("allocation", doc) if isinstance(doc, dict) else doc
    if isinstance(shares, dict) and shares and all(type(v) is int for v in shares.values()):
        return [f"  {name:<16} {bp:>6} bp  {bp / 100:6.2f} %" for name, bp in shares.items()]
    return [f"  {json.dumps(doc)}"]


def format_proposals(doc: Any) -> list[str]:
    items = doc.get("proposals", doc) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        return [f"  {json.dumps(doc)}"]
    if not items:
        return ["  (none)"]
    return [f"  {json.dumps(item, sort_keys=True)}" for item in items]


@gov_app.command("show")
def gov_show(node: str = NODE_OPTION,
             as_json: bool = typer.Option(False, "--json", help="Print the node's JSON.")) -> None:
    """Show the standing allocation and the proposals, as the node sees them."""
    url = parse_node_url(node)
    with open_client() as client:
        allocation = get_json(client, url, "/governance/allocation")
        proposals = get_json(client, url, "/governance/proposals")
    if as_json:
        typer.echo(json.dumps({"allocation": allocation, "proposals": proposals}, indent=2))
        return
    typer.echo("\n".join(["standing allocation:", *format_allocation(allocation),
                          "proposals:", *format_proposals(proposals)]))


def register(app: typer.Typer) -> None:
    from node.commands import auditors

    auditors.register(gov_app, KEY_OPTION)
    app.add_typer(gov_app, name="gov")
