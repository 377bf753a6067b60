"""Delegation semantics (DESIGN §5), as a named table in the spirit of EIP-225's voting tests.

Each case: voter weights, delegations (from, topic, to; to=None is an explicit
none), the direct voters on the topic, and the expected effective weight per
direct voter plus the abstained weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

import governance.delegation as delegation_module
from governance import GovernanceError, get_delegate, resolve_delegations

VOTERS = "abcdefgh"


@dataclass(frozen=True)
class Case:
    name: str
    voted: str
    effective: dict[str, int]
    abstained: int
    delegations: tuple[tuple[str, str, str | None], ...] = ()
    weights: dict[str, int] = field(default_factory=dict)
    topic: str = "allocation"
    voters: str = "abcde"


def as_map(triples):
    out: dict = {}
    for source, topic, target in triples:
        out.setdefault(source, {})[topic] = target
    return out


CASES = [
    Case("nobody votes: everyone abstains", "", {}, 5),
    Case("direct voters keep their own weight", "ab", {"a": 1, "b": 1}, 3),
    Case("a '*' delegation carries the weight", "b", {"b": 2}, 3, (("a", "*", "b"),)),
    Case("a topic delegation beats '*'", "bc", {"b": 2, "c": 1}, 2,
         (("a", "allocation", "b"), ("a", "*", "c"))),
    Case("'*' applies when the topic has no entry", "bc", {"b": 1, "c": 2}, 2,
         (("a", "params", "b"), ("a", "*", "c"))),
    Case("an explicit none on the topic blocks '*'", "c", {"c": 1}, 4,
         (("a", "allocation", None), ("a", "*", "c"))),
    Case("a none on another topic does not block '*'", "c", {"c": 2}, 3,
         (("a", "params", None), ("a", "*", "c"))),
    Case("delegation is transitive", "c", {"c": 3}, 2, (("a", "*", "b"), ("b", "*", "c"))),
    Case("a direct ballot overrides the voter's own delegation", "ab", {"a": 1, "b": 1}, 3,
         (("a", "*", "b"),)),
    Case("a direct voter mid-chain catches the weight", "bc", {"b": 2, "c": 1}, 2,
         (("a", "*", "b"), ("b", "*", "c"))),
    Case("a chain ending at a non-voter abstains", "", {}, 5, (("a", "*", "b"),)),
    Case("a chain ending at a non-voter abstains, others unaffected", "c", {"c": 1}, 4,
         (("a", "*", "b"),)),
    Case("self-delegation abstains", "", {}, 5, (("a", "*", "a"),)),
    Case("a two-cycle abstains", "c", {"c": 1}, 4, (("a", "*", "b"), ("b", "*", "a"))),
    Case("a chain into a loop abstains", "d", {"d": 1}, 4,
         (("a", "*", "b"), ("b", "*", "c"), ("c", "*", "b"))),
    Case("a loop with a direct voter in it is broken there", "b", {"b": 3}, 2,
         (("a", "*", "b"), ("b", "*", "c"), ("c", "*", "a"))),
    Case("a chain stops at an explicit none further on", "c", {"c": 1}, 4,
         (("a", "*", "b"), ("b", "allocation", None), ("b", "*", "c"))),
    Case("topics mix along a chain: each hop picks its own most specific entry", "c", {"c": 3}, 2,
         (("a", "allocation", "b"), ("b", "*", "c"))),
    Case("the other topic's delegation is ignored", "c", {"c": 1}, 4,
         (("a", "params", "b"), ("b", "params", "c")), topic="allocation"),
    Case("the same delegations, tallied on params", "c", {"c": 3}, 2,
         (("a", "params", "b"), ("b", "params", "c")), topic="params"),
    Case("an allocation-only delegation does not carry params weight", "c", {"c": 1}, 4,
         (("a", "*", "b"), ("b", "allocation", "c")), topic="params"),
    Case("many delegate to one", "e", {"e": 5}, 0,
         (("a", "*", "e"), ("b", "*", "e"), ("c", "*", "e"), ("d", "*", "e"))),
    Case("weights travel, not heads", "b", {"b": 7}, 3, (("a", "*", "b"),), weights={"a": 5, "b": 2}),
    Case("a weightless direct voter still receives", "a", {"a": 3}, 0, (("b", "*", "a"),),
         weights={"a": 0, "b": 3}, voters="ab"),
    Case("a direct voter with nothing delegated still appears", "ab", {"a": 2, "b": 1}, 0,
         (("c", "*", "a"),), voters="abc"),
    Case("a tree: branches meet at one voter", "e", {"e": 5}, 0,
         (("a", "*", "c"), ("b", "*", "c"), ("c", "*", "d"), ("d", "*", "e"))),
    Case("a revoked-then-none topic keeps '*' from other voters", "e", {"e": 4}, 1,
         (("a", "*", "e"), ("b", "allocation", None), ("c", "*", "e"), ("d", "allocation", "e"))),
]


def run(case: Case):
    weights = {v: case.weights.get(v, 1) for v in case.voters}
    return resolve_delegations(weights, as_map(case.delegations), set(case.voted), case.topic)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_delegation_table(case):
    result = run(case)
    assert result.effective_weight == case.effective
    assert result.abstained_weight == case.abstained
    assert result.counted_weight == sum(case.effective.values())


def test_effective_weight_is_listed_in_voter_order():
    result = resolve_delegations({"c": 1, "a": 1, "b": 1}, {}, ["c", "a"], "params")
    assert list(result.effective_weight) == ["a", "c"]


def test_get_delegate_prefers_topic_then_star():
    d = {"a": {"params": None, "*": "b"}, "c": {"*": "d"}}
    assert get_delegate(d, "a", "params") is None
    assert get_delegate(d, "a", "allocation") == "b"
    assert get_delegate(d, "c", "params") == "d"
    assert get_delegate(d, "z", "params") is None


# --- long chains: linear, iterative, no recursion limit -------------------------

N = 10_000


def chain(n, start=0):
    return {start + i: {"*": start + i + 1} for i in range(n - 1)}


def test_chain_10000_long_reaches_its_end():
    result = resolve_delegations(dict.fromkeys(range(N), 1), chain(N), {N - 1}, "allocation")
    assert result.effective_weight == {N - 1: N}
    assert result.abstained_weight == 0


def test_chain_10000_long_ending_at_a_non_voter_abstains():
    result = resolve_delegations(dict.fromkeys(range(N), 1), chain(N), set(), "allocation")
    assert result.effective_weight == {}
    assert result.abstained_weight == N


def test_loop_10000_long_abstains():
    delegations = chain(N)
    delegations[N - 1] = {"*": 0}
    weights = dict.fromkeys(range(N + 1), 1)
    result = resolve_delegations(weights, delegations, {N}, "allocation")
    assert result.effective_weight == {N: 1}
    assert result.abstained_weight == N


def test_chain_10000_long_into_a_10000_loop_abstains():
    delegations = chain(2 * N)
    delegations[2 * N - 1] = {"*": N}          # tail 0..N-1, loop N..2N-1
    result = resolve_delegations(dict.fromkeys(range(2 * N), 1), delegations, set(), "params")
    assert result.abstained_weight == 2 * N


def test_direct_voter_in_the_middle_of_a_10000_chain_splits_it():
    result = resolve_delegations(dict.fromkeys(range(N), 1), chain(N), {N // 2, N - 1}, "allocation")
    assert result.effective_weight == {N // 2: N // 2 + 1, N - 1: N - N // 2 - 1}


def test_resolution_looks_up_each_voter_once(monkeypatch):
    # 10 000 voters all point at the head of a 10 000 chain: a walk per voter would
    # cost 10^8 lookups; memoised resolution costs one per voter.
    calls = []
    real = delegation_module.get_delegate

    def counting(delegations, voter, topic):
        calls.append(voter)
        return real(delegations, voter, topic)

    monkeypatch.setattr(delegation_module, "get_delegate", counting)
    delegations = chain(N)
    delegations.update({N + i: {"*": 0} for i in range(N)})
    result = resolve_delegations(dict.fromkeys(range(2 * N), 1), delegations, {N - 1}, "allocation")
    assert result.effective_weight == {N - 1: 2 * N}
    assert len(calls) <= 2 * N


# --- against a naive reference ----------------------------------------------------

def naive(weights, delegations, voted, topic):
    effective = {v: 0 for v in voted}
    abstained = 0
    for voter, weight in weights.items():
        node, seen = voter, set()
        while node not in voted and node is not None and node not in seen:
            seen.add(node)
            entries = delegations.get(node, {})
            node = entries[topic] if topic in entries else entries.get("*")
        if node in voted:
            effective[node] += weight
        else:
            abstained += weight
    return effective, abstained


targets = st.one_of(st.none(), st.sampled_from(VOTERS))
delegation_maps = st.dictionaries(
    st.sampled_from(VOTERS),
    st.dictionaries(st.sampled_from(["allocation", "params", "*"]), targets, max_size=3),
)


@given(delegation_maps, st.sets(st.sampled_from(VOTERS)),
       st.lists(st.integers(0, 9), min_size=len(VOTERS), max_size=len(VOTERS)),
       st.sampled_from(["allocation", "params"]))
def test_matches_a_naive_walk_and_conserves_weight(delegations, voted, weight_list, topic):
    weights = dict(zip(VOTERS, weight_list))
    result = resolve_delegations(weights, delegations, voted, topic)
    assert (result.effective_weight, result.abstained_weight) == naive(weights, delegations, voted, topic)
    assert result.counted_weight + result.abstained_weight == sum(weights.values())


# --- invalid input -------------------------------------------------------------------

@pytest.mark.parametrize("delegations, voted, message", [
    ({"a": {"*": "z"}}, set(), "to unknown voter 'z'"),
    ({"z": {"*": "a"}}, set(), "from unknown voter 'z'"),
    ({}, {"z"}, "unknown voter 'z'"),
], ids=["delegation_to_unknown_voter", "delegation_from_unknown_voter", "vote_from_unknown_voter"])
def test_invalid_voter(delegations, voted, message):
    with pytest.raises(GovernanceError, match=message):
        resolve_delegations({"a": 1}, delegations, voted, "params")


@pytest.mark.parametrize("weight", [-1, 1.5, True, "1"])
def test_invalid_weight(weight):
    with pytest.raises(GovernanceError, match="weight of voter"):
        resolve_delegations({"a": weight}, {}, set(), "params")
