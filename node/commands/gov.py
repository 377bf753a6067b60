"""``voisinage gov``: the household's governance commands and the offline tally (DESIGN §5, §9).

``delegate``, ``allocate``, ``propose`` and ``vote`` build a transaction from
tokens/txs.py, sign it locally with the household's key (the node never holds
it) and POST it to the node; ``show`` reads the standing allocation and the
proposals; ``tally`` runs governance/ on a JSON case, offline, for audits. The
``bench tally`` workload lives here too, next to the code it measures.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import typer

from governance.allocation import allocate
from governance.delegation import TOPICS, get_delegate, resolve_delegations
from governance.errors import GovernanceError
from governance.markets import TOTAL_BP
from governance.offline import run_case
from governance.proposals import CHOICES
from node.commands.client import DEFAULT_NODE, NO_SIG, get_json, open_client, parse_key_hex, submit, parse_node_url
from node.errors import UserError
from tokens.genesis import DEFAULT_PARAMS
from tokens.txs import AllocationBallot, Delegate, Propose, Vote

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


def parse_bps(text: str) -> tuple[int, ...]:
    """``4000,1000,...``: basis points per category in genesis order, summing to 10 000."""
    try:
        bps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--bps must be comma-separated integers, not {text!r}") from None
    if any(bp < 0 for bp in bps) or len(bps) > 32:
        raise UserError("--bps takes at most 32 values, each >= 0")
    if sum(bps) != TOTAL_BP:
        raise UserError(f"--bps must sum to {TOTAL_BP}, not {sum(bps)}")
    return bps


def build_ballot(signer: bytes, nonce: int, bps: tuple[int, ...]) -> AllocationBallot:
    return AllocationBallot(signer=signer, nonce=nonce, bps=bps, sig=NO_SIG)


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
    if param not in DEFAULT_PARAMS:
        raise UserError(f"unknown parameter {param!r}")
    return Propose(signer=signer, nonce=nonce, param=param, value=parse_canonical_value(value),
                   voting_end=voting_end, sig=NO_SIG)


def build_vote(signer: bytes, nonce: int, proposal: bytes, choice: str) -> Vote:
    if choice not in CHOICES:
        raise UserError(f"--choice must be yes, no or abstain, not {choice!r}")
    return Vote(signer=signer, nonce=nonce, proposal=proposal, choice=choice, sig=NO_SIG)


# --- household commands ------------------------------------------------------------------------

NODE_OPTION = typer.Option(DEFAULT_NODE, "--node", help="The node's HTTP API.")
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
    bps: str = typer.Option(..., "--bps", help="Basis points per category, in genesis order, "
                            "summing to 10000, e.g. 4000,1000,1000,2000,1000,1000."),
    node: str = NODE_OPTION, key: Path = KEY_OPTION,
) -> None:
    """Cast (or replace) the household's standing allocation ballot."""
    parsed = parse_bps(bps)
    typer.echo(submit(node, key, lambda signer, nonce: build_ballot(signer, nonce, parsed)))


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
    end = voting_end if voting_end is not None else int(time.time()) + window
    build_propose(bytes(32), 0, param, value, end)
    typer.echo(submit(node, key, lambda signer, nonce: build_propose(signer, nonce, param, value, end)))


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


# --- bench tally workload ------------------------------------------------------------------------

@dataclasses.dataclass
class TallyWorkload:
    weights: dict[bytes, int]
    delegations: dict[bytes, dict[str, bytes | None]]
    ballots: dict[bytes, tuple[int, ...]]
    longest_chain: int


def build_random_ballot(rng: random.Random, n_categories: int) -> tuple[int, ...]:
    bounds = [0, *sorted(rng.randint(0, TOTAL_BP) for _ in range(n_categories - 1)), TOTAL_BP]
    return tuple(bounds[i + 1] - bounds[i] for i in range(n_categories))


def build_tally_workload(voters: int, categories: int, chain: int, seed: int) -> TallyWorkload:
    """``voters`` households with contribution-like weights; 10 % vote directly; one
    delegation chain ``chain`` long ends at a direct voter, another (with a tail)
    ends in a loop; the rest delegate on '*' or 'allocation' to random households,
    some with an explicit none, which makes many more chains and loops."""
    rng = random.Random(seed)
    keys = [i.to_bytes(32, "big") for i in range(voters)]
    weights = {k: rng.randint(1, 1000) for k in keys}
    direct = max(1, voters // 10)
    ballots = {keys[i]: build_random_ballot(rng, categories) for i in range(direct)}
    delegations: dict[bytes, dict[str, bytes | None]] = {}
    start = direct
    chain_a = range(start, min(voters, start + chain))
    for i in chain_a:                      # chain A: a long line ending at voter 0
        delegations[keys[i]] = {"*": keys[i + 1] if i + 1 < chain_a.stop else keys[0]}
    chain_b = range(chain_a.stop, min(voters, chain_a.stop + chain))
    loop_start = chain_b.start + len(chain_b) // 10
    for i in chain_b:                      # chain B: a tail into a loop, abstains
        delegations[keys[i]] = {"*": keys[i + 1] if i + 1 < chain_b.stop else keys[loop_start]}
    for i in range(chain_b.stop, voters):
        target = keys[rng.randrange(voters)]
        roll = rng.random()
        entry: dict[str, bytes | None] = {"allocation": target} if roll < 0.5 else {"*": target}
        if roll > 0.95:
            entry = {"allocation": None, "*": target}
        delegations[keys[i]] = entry
    return TallyWorkload(weights, delegations, ballots, max(len(chain_a), len(chain_b)))


def run_tally_bench(voters: int = 100_000, categories: int = 10, chain: int = 10_000,
                    seed: int = 1) -> dict[str, Any]:
    """Time delegation resolution and the independent markets allocation on one
    workload, against a baseline measured in the same run: one pass over the
    delegation map looking up each voter's delegate, the least any resolution does."""
    work = build_tally_workload(voters, categories, chain, seed)
    began = time.perf_counter()
    for voter in work.weights:
        get_delegate(work.delegations, voter, "allocation")
    baseline = time.perf_counter() - began
    began = time.perf_counter()
    resolution = resolve_delegations(work.weights, work.delegations, work.ballots.keys(), "allocation")
    resolved = time.perf_counter()
    result = allocate("independent_markets", work.ballots, resolution.effective_weight, categories)
    allocated = time.perf_counter()
    total = allocated - began
    # Worst case for the allocation: every voter casts a ballot directly.
    rng = random.Random(seed)
    everyone = {voter: build_random_ballot(rng, categories) for voter in work.weights}
    began_all = time.perf_counter()
    allocate("independent_markets", everyone, work.weights, categories)
    all_direct = time.perf_counter() - began_all
    return {
        "voters": voters, "categories": categories, "direct_voters": len(work.ballots),
        "longest_chain": work.longest_chain, "seed": seed,
        "resolve_s": round(resolved - began, 4), "allocate_s": round(allocated - resolved, 4),
        "total_s": round(total, 4), "goal_s": 1.0, "within_goal": total < 1.0,
        "baseline": "one delegate lookup per voter", "baseline_s": round(baseline, 4),
        "ratio": round(total / baseline, 1) if baseline > 0 else None,
        "allocate_all_direct_s": round(all_direct, 4),
        "counted_weight": resolution.counted_weight, "abstained_weight": resolution.abstained_weight,
        "allocation_bp": result,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(gov_app, name="gov")
