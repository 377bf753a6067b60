"""Auditors appointed by a passed proposal (docs/privacy.md "Auditors").

On a chain that seals payloads, the commune data key is held by the validators and by
the auditors the households appoint: a ``Propose`` whose param is ``auditors`` and whose
value is {"add": [hex key, ...], "remove": [hex key, ...]}, decided by the liquid tally
like any proposal. A passed one writes ``aud/`` key -> [since height, proposal id]
(public: who audits is public) or deletes it. From then on every ``RotateDataKey`` seals
the new epoch to the latest validator set *and* the auditors (``get_holders``), and a
rotation is due while the current epoch's holders differ from them.
"""

from __future__ import annotations

from tokens import layout as L
from tokens.errors import InvalidTx
from tokens.kv import KV, decode_value
from tokens.ledger import Ledger
from tokens.rules_registrars import KeySetProposal, parse_key_set_proposal

AUDITORS_PARAM = "auditors"
# A proposal names at most this many keys: each is a copy of the commune key, which the
# households should weigh one by one rather than in a block.
MAX_AUDITORS_PER_PROPOSAL = 4
# At most this many auditors at once (tokens/txs.py MAX_HOLDERS: 64 validators + these).
MAX_AUDITORS = 16


AuditorProposal = KeySetProposal


def parse_auditor_proposal(value_text: str) -> KeySetProposal:
    """An ``auditors`` proposal's value; raises InvalidTx("bad_value")."""
    return parse_key_set_proposal(value_text, "auditors")


def check_auditor_change(current: list[bytes], change: AuditorProposal) -> None:
    """``current``: the auditors in force now."""
    add, remove = change.add, change.remove
    if len(set(add)) != len(add) or len(set(remove)) != len(remove) or set(add) & set(remove):
        raise InvalidTx("bad_auditor_set", "a key is listed twice")
    if not (add or remove):
        raise InvalidTx("bad_auditor_set", "the change must add or remove an auditor")
    if len(add) + len(remove) > MAX_AUDITORS_PER_PROPOSAL:
        raise InvalidTx("bad_auditor_set", f"a proposal names at most {MAX_AUDITORS_PER_PROPOSAL} auditor keys")
    if set(add) & set(current):
        raise InvalidTx("already_auditor", "an added key is already an auditor")
    if not set(remove) <= set(current):
        raise InvalidTx("unknown_auditor", "a removed key is not an auditor")
    if len(set(current) - set(remove)) + len(add) > MAX_AUDITORS:
        raise InvalidTx("bad_auditor_set", f"a commune has at most {MAX_AUDITORS} auditors")


def get_auditors(entries: list[tuple[bytes, object]]) -> list[bytes]:
    """The auditor keys, sorted, from the ``aud/`` entries."""
    return [key[len(L.AUDITOR):] for key, _ in entries]


def check_auditor_proposal(lg: Ledger, value_text: str) -> AuditorProposal:
    """Propose: only on a chain that seals, valid against the auditors now (checked again
    if it passes)."""
    if lg.ov.get(L.META_DATA_EPOCH) is None:
        raise InvalidTx("sealing_off", "this chain does not seal payloads: there is no commune data key to audit with")
    change = parse_auditor_proposal(value_text)
    check_auditor_change(get_auditors(lg.ov.iter_prefix(L.AUDITOR)), change)
    return change


def process_auditor_proposal(lg: Ledger, value_text: str, pid: bytes) -> bool:
    """A passed ``auditors`` proposal: recorded now if still valid; the next rotation of
    the commune data key seals to the new set."""
    try:
        change = check_auditor_proposal(lg, value_text)
    except InvalidTx:
        return False
    for key in change.add:
        lg.ov.put(L.key_auditor(key), [lg.height, pid])
    for key in change.remove:
        lg.ov.delete(L.key_auditor(key))
    return True


def get_holders(latest_validators: list[bytes], auditors: list[bytes]) -> list[bytes]:
    """Who a new epoch of the commune data key is sealed to: the latest validator set and
    the auditors, each once, sorted."""
    return sorted(set(latest_validators) | set(auditors))


# -- reading committed state (queries, the CLI's basis) -----------------------------------------

def read_auditors(kv: KV) -> list[dict]:
    """The auditors in force: key, since height, proposal id."""
    out = []
    for key, raw in kv.iter_prefix(L.AUDITOR):
        since, pid = decode_value(raw)
        out.append({"key": key[len(L.AUDITOR):].hex(), "since": since, "proposal": pid.hex()})
    return out


def read_epoch_holders(kv: KV, epoch: int) -> list[bytes]:
    """The keys the commune data key of ``epoch`` is sealed to."""
    prefix = L.DATA_KEY_SEALED + L.u64(epoch)
    return [key[len(prefix):] for key, _ in kv.iter_prefix(prefix)]
