"""The e2e manifest: a TOML file naming the network, the load and the perturbation schedule.

Example (e2e/manifests/kill.toml)::

    name = "kill"
    description = "SIGKILL a validator for 10 s, then restart it"
    netns = false            # true: one network namespace per node (root only)
    validators = 4
    households = 4
    speed = 120              # chain clock speed-up, so settlement intervals pass
    snapshot_interval = 40   # optional: validators snapshot every 40 heights (node run
                             # --snapshot-interval); a household that joins state-syncs
    duration = 60            # seconds of load
    byzantine = []           # validators run with --byzantine double-sign
    seal = true              # the default, as genesis new and localnet up: genesis
                             # seals household payloads, household nodes run light;
                             # false: payloads in clear, full household nodes (say
                             # why in a comment: membership.toml, late-join.toml)

    [load]
    readings_per_s = 1.0     # per household, to its own node
    transfer_every_s = 3.0   # per household, one transfer in flight (0: none)

    [[perturb]]
    at = 15                  # seconds after the load starts
    op = "kill"              # disconnect pause kill restart latency partition,
                             # add_validator remove_validator rotate_key schedule_upgrade,
                             # rotate_data_key (seal = true)
    node = "validator-1"     # every op but partition; add_validator: a spare
    duration = 10            # down / paused / disconnected / delayed time
    spare = "spare-0"        # rotate_key: the spare home holding the new key

On a commune that seals (``seal = true``, node/e2e/sealing.py) every validator set
change is followed by a rotation of the commune data key sealed to the new set, as
its operators must (docs/privacy.md "Rotation with the validator set"): a spare
promoted there starts only then, by state sync from a snapshot taken after the
rotation (so ``snapshot_interval`` is required), and a removed validator's node is
retired (it cannot open the new epoch). ``rotate_data_key`` rotates the key alone.

Membership ops (register rotate_household recover_household deregister reregister)
act through the real CLI while the load runs (node/e2e/membership.py); register
names no node, the others a household. ``[genesis]`` sets genesis parameters, e.g.
``recovery_delay_s = 600`` (chain seconds: 5 s at speed 120).

With ``spares = N`` the setup also writes N homes named spare-0..N-1 whose keys no
genesis list holds; ``add_validator`` and ``rotate_key`` start one and promote it.

    [hostile]                # optional: a hostile peer floods one node
    at = 20
    duration = 20
    target = "validator-0"

    [check]
    max_recovery_s = 60
    min_throughput_ratio = 0.8
    join_after_snapshots = 2 # with snapshot_interval: every household that joins
                             # (register) state-synced from the 2nd snapshot or later

Every mistake is a one-line ``E2EError`` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.e2e.errors import E2EError
from tokens.genesis import DEFAULT_PARAMS, GenesisError, check_params

# Validator set changes (DESIGN §4): add a spare home, remove a validator, rotate a key.
VALIDATOR_OPS = ("add_validator", "remove_validator", "rotate_key")
# Membership events (DESIGN §12) through the real CLI, under load: a new household joins
# with its own node; a household of the load rotates its key, is recovered, moves out,
# and the next occupant registers on the same meter and PRM.
MEMBERSHIP_OPS = ("register", "rotate_household", "recover_household", "deregister", "reregister")
# A protocol upgrade (docs/operations.md "Upgrading"): no node, no duration.
UPGRADE_OP = "schedule_upgrade"
# A new epoch of the commune data key (docs/privacy.md "Rotation"): no node, seal = true.
ROTATE_DATA_KEY_OP = "rotate_data_key"
OPS = (("disconnect", "pause", "kill", "restart", "latency", "partition", UPGRADE_OP, ROTATE_DATA_KEY_OP)
       + VALIDATOR_OPS + MEMBERSHIP_OPS)
NETNS_OPS = frozenset({"disconnect", "latency", "partition"})
NODE_OPS = (frozenset(OPS) - {"partition", UPGRADE_OP, ROTATE_DATA_KEY_OP} - set(VALIDATOR_OPS)
            - set(MEMBERSHIP_OPS))
# On a sealing commune a household's light node follows the key file of its home: a
# rotation or recovery restarts it with the new key (node/e2e/membership.py). The next
# occupant of a meter is another household, with a node of its own, which the runner
# does not make for it (it would hand it the former occupant's home).
NEW_HOME_OPS = ("reregister",)
TOP_KEYS = {"name", "description", "netns", "validators", "households", "spares", "speed", "duration", "seed",
            "byzantine", "genesis", "load", "perturb", "hostile", "check", "snapshot_interval", "seal"}


@dataclass(frozen=True)
class Load:
    readings_per_s: float = 1.0
    transfer_every_s: float = 3.0
    resubmit_after_s: float = 15.0


@dataclass(frozen=True)
class Perturbation:
    at: float
    op: str
    node: str | None = None
    duration: float = 10.0
    delay_ms: int = 125
    jitter_ms: int = 75
    spare: str | None = None


@dataclass(frozen=True)
class Hostile:
    at: float
    duration: float
    target: str = "validator-0"
    rate: float = 50.0


@dataclass(frozen=True)
class Checks:
    max_recovery_s: float = 60.0
    min_throughput_ratio: float = 0.8
    settle_timeout_s: float = 45.0
    # Every household that joins (op register) must have installed a snapshot by state
    # sync, one taken after at least this many snapshots (0: block sync is fine too).
    join_after_snapshots: int = 0


@dataclass(frozen=True)
class Manifest:
    name: str
    path: Path
    description: str = ""
    netns: bool = False
    validators: int = 4
    households: int = 4
    spares: int = 0
    speed: int = 120
    duration: float = 60.0
    seed: int = 1
    snapshot_interval: int | None = None    # node run --snapshot-interval (None: the node's default)
    byzantine: tuple[str, ...] = ()
    # docs/privacy.md "Sealed payloads": a sealing genesis, household nodes light. The
    # product's default (genesis new, localnet up); ``seal = false`` runs a clear commune.
    seal: bool = True
    genesis: dict[str, Any] = field(default_factory=dict)    # params over the defaults
    load: Load = field(default_factory=Load)
    perturb: tuple[Perturbation, ...] = ()
    hostile: Hostile | None = None
    check: Checks = field(default_factory=Checks)

    @property
    def node_names(self) -> list[str]:
        return ([f"validator-{i}" for i in range(self.validators)]
                + [f"household-{i}" for i in range(self.households)])

    @property
    def spare_names(self) -> list[str]:
        return [f"spare-{i}" for i in range(self.spares)]


class ManifestError(E2EError):
    """A manifest that does not describe a runnable scenario; one line, like every CLI error."""


def _typed(where: str, value: Any, kind: type | tuple[type, ...], low: float | None = None,
           high: float | None = None) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ManifestError(f"{where}: expected a number, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ManifestError(f"{where}: expected {names}, got {value!r}")
    if low is not None and value < low or high is not None and value > high:
        raise ManifestError(f"{where}: {value!r} is outside {low}..{high}")
    return value


def _table(where: str, doc: Any, cls: type, limits: dict[str, tuple]) -> Any:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a table")
    unknown = sorted(set(doc) - set(limits))
    if unknown:
        raise ManifestError(f"{where}: unknown field {unknown[0]!r}")
    values = {k: _typed(f"{where}.{k}", v, *limits[k]) for k, v in doc.items()}
    return cls(**values)


NUM = (int, float)
LOAD_LIMITS = {"readings_per_s": (NUM, 0, 50), "transfer_every_s": (NUM, 0, 3600),
               "resubmit_after_s": (NUM, 1, 3600)}
PERTURB_LIMITS = {"at": (NUM, 0, 86400), "op": (str,), "node": (str,), "duration": (NUM, 0, 3600),
                  "delay_ms": (int, 1, 5000), "jitter_ms": (int, 0, 5000), "spare": (str,)}
HOSTILE_LIMITS = {"at": (NUM, 0, 86400), "duration": (NUM, 1, 3600), "target": (str,), "rate": (NUM, 1, 1000)}
CHECK_LIMITS = {"max_recovery_s": (NUM, 1, 3600), "min_throughput_ratio": (NUM, 0, 1),
                "settle_timeout_s": (NUM, 1, 3600), "join_after_snapshots": (int, 0, 1000)}


def parse_manifest(data: bytes, path: Path) -> Manifest:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - TOP_KEYS)
    if unknown:
        raise ManifestError(f"{path}: unknown field {unknown[0]!r}")
    w = str(path)
    perturb = doc.get("perturb", [])
    if not isinstance(perturb, list):
        raise ManifestError(f"{w}: perturb must be an array of tables ([[perturb]])")
    manifest = Manifest(
        name=_typed(f"{w}: name", doc.get("name", path.stem), str),
        path=path,
        description=_typed(f"{w}: description", doc.get("description", ""), str),
        netns=_typed(f"{w}: netns", doc.get("netns", False), bool),
        validators=_typed(f"{w}: validators", doc.get("validators", 4), int, 1, 31),
        households=_typed(f"{w}: households", doc.get("households", 4), int, 0, 100),
        spares=_typed(f"{w}: spares", doc.get("spares", 0), int, 0, 8),
        speed=_typed(f"{w}: speed", doc.get("speed", 120), int, 1, 3600),
        duration=_typed(f"{w}: duration", doc.get("duration", 60), NUM, 5, 86400),
        seed=_typed(f"{w}: seed", doc.get("seed", 1), int, 0, 2**32),
        snapshot_interval=(_typed(f"{w}: snapshot_interval", doc["snapshot_interval"], int, 0, 1_000_000)
                           if "snapshot_interval" in doc else None),
        byzantine=tuple(_typed(f"{w}: byzantine[]", b, str) for b in _typed(f"{w}: byzantine",
                                                                             doc.get("byzantine", []), list)),
        seal=_typed(f"{w}: seal", doc.get("seal", True), bool),
        genesis=parse_genesis_params(f"{w}: genesis", doc.get("genesis", {})),
        load=_table(f"{w}: load", doc.get("load", {}), Load, LOAD_LIMITS),
        perturb=tuple(_table(f"{w}: perturb[{i}]", p, Perturbation, PERTURB_LIMITS) for i, p in enumerate(perturb)),
        hostile=_table(f"{w}: hostile", doc["hostile"], Hostile, HOSTILE_LIMITS) if "hostile" in doc else None,
        check=_table(f"{w}: check", doc.get("check", {}), Checks, CHECK_LIMITS),
    )
    check_manifest(manifest)
    return manifest


def parse_genesis_params(where: str, doc: Any) -> dict[str, Any]:
    """``[genesis]``: parameters of the run's genesis (DESIGN §3), checked as the genesis checks them."""
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a table of genesis parameters")
    if "time_scale" in doc:
        raise ManifestError(f"{where}: time_scale is set by speed")
    try:
        check_params(doc, dev=True)
    except GenesisError as exc:
        raise ManifestError(f"{where}: {exc}") from None
    return dict(doc)


def check_manifest(m: Manifest) -> None:
    """Cross-field rules: known ops and nodes, netns-only ops, a partition needs 2+ validators."""
    names = set(m.node_names)
    validators = {f"validator-{i}" for i in range(m.validators)}
    for b in m.byzantine:
        if b not in validators:
            raise ManifestError(f"{m.path}: byzantine {b!r} is not a validator of this network")
    for i, p in enumerate(m.perturb):
        where = f"{m.path}: perturb[{i}]"
        if p.op not in OPS:
            raise ManifestError(f"{where}: unknown op {p.op!r} (one of {', '.join(OPS)})")
        if p.op in NETNS_OPS and not m.netns:
            raise ManifestError(f"{where}: {p.op} needs netns = true")
        if p.op in NODE_OPS and p.node not in names:
            raise ManifestError(f"{where}: {p.op} needs node = one of this network's nodes")
        if p.op == "partition" and m.validators < 2:
            raise ManifestError(f"{where}: a partition needs at least 2 validators")
        if p.op in VALIDATOR_OPS:
            check_validator_op(m, p, where)
        if p.at + p.duration > m.duration:
            raise ManifestError(f"{where}: ends after the load (at + duration > duration)")
    if m.hostile is not None:
        if m.hostile.target not in names:
            raise ManifestError(f"{m.path}: hostile.target {m.hostile.target!r} is not a node")
        if m.hostile.at < 5 or m.hostile.at + m.hostile.duration > m.duration:
            raise ManifestError(f"{m.path}: hostile needs at >= 5 (an undisturbed baseline) and to end "
                                "within the load")
    if m.households == 0:
        raise ManifestError(f"{m.path}: the load needs at least one household")
    check_membership_ops(m)
    check_sealing_ops(m)
    if m.check.join_after_snapshots and not m.snapshot_interval:
        raise ManifestError(f"{m.path}: check.join_after_snapshots needs snapshot_interval (heights between "
                            "the validators' snapshots)")
    if m.check.join_after_snapshots and not any(p.op == "register" for p in m.perturb):
        raise ManifestError(f"{m.path}: check.join_after_snapshots needs a register op (a household that joins)")
    if m.check.join_after_snapshots and m.seal:
        raise ManifestError(f"{m.path}: check.join_after_snapshots needs seal = false (on a sealing commune a "
                            "household that joins runs light: it checks the headers and installs no snapshot)")


def check_sealing_ops(m: Manifest) -> None:
    """rotate_data_key needs a sealing commune; there a validator change needs snapshots
    (its new validator joins from one taken after the rotation), and reregister is
    refused (the next occupant would need a node home of its own)."""
    for i, p in enumerate(m.perturb):
        where = f"{m.path}: perturb[{i}]"
        if p.op == ROTATE_DATA_KEY_OP and not m.seal:
            raise ManifestError(f"{where}: rotate_data_key needs seal = true (a commune data key to rotate)")
        if p.op == ROTATE_DATA_KEY_OP and m.netns:
            raise ManifestError(f"{where}: rotate_data_key runs on loopback only (netns = false)")
        if not m.seal:
            continue
        if p.op in NEW_HOME_OPS:
            raise ManifestError(f"{where}: {p.op} is not supported with seal = true (the next occupant is "
                                "another household, whose light node needs a home of its own)")
        if p.op in ("add_validator", "rotate_key") and not m.snapshot_interval:
            raise ManifestError(f"{where}: {p.op} with seal = true needs snapshot_interval (the new validator "
                                "joins by state sync from a snapshot taken after the commune key's rotation)")


def check_validator_op(m: Manifest, p: Perturbation, where: str) -> None:
    """add_validator names a spare; remove_validator and rotate_key a validator or a spare
    (added earlier); rotate_key's spare holds the new key. Loopback only."""
    signers = {f"validator-{i}" for i in range(m.validators)} | set(m.spare_names)
    if m.netns:
        raise ManifestError(f"{where}: {p.op} runs on loopback only (netns = false)")
    if p.op == "add_validator" and p.node not in m.spare_names:
        raise ManifestError(f"{where}: add_validator needs node = a spare (spares = N gives spare-0..N-1)")
    if p.op != "add_validator" and p.node not in signers:
        raise ManifestError(f"{where}: {p.op} needs node = a validator or a spare")
    if p.op == "rotate_key" and (p.spare not in m.spare_names or p.spare == p.node):
        raise ManifestError(f"{where}: rotate_key needs spare = another spare, holding the new key")


def check_membership_ops(m: Manifest) -> None:
    """In time order: register names no node (it starts its own, member-N); the others
    name a household of the load; nothing acts on a household that moved out but
    reregister, which needs one that did. A recovery must complete (recovery_delay_s of
    chain time, at speed) within check.max_recovery_s. Loopback only."""
    moved_out: set[str] = set()
    households = {f"household-{i}" for i in range(m.households)}
    delay_s = m.genesis.get("recovery_delay_s", DEFAULT_PARAMS["recovery_delay_s"]) / m.speed
    for i, p in sorted(enumerate(m.perturb), key=lambda ip: ip[1].at):
        where = f"{m.path}: perturb[{i}]"
        if p.op not in MEMBERSHIP_OPS:
            continue
        if m.netns:
            raise ManifestError(f"{where}: {p.op} runs on loopback only (netns = false)")
        if p.op == "register":
            if p.node is not None:
                raise ManifestError(f"{where}: register takes no node (the new household starts its own)")
            continue
        if p.node not in households:
            raise ManifestError(f"{where}: {p.op} needs node = a household of the load (household-0..)")
        if p.op == "reregister" and p.node not in moved_out:
            raise ManifestError(f"{where}: reregister needs an earlier deregister of {p.node}")
        if p.op != "reregister" and p.node in moved_out:
            raise ManifestError(f"{where}: {p.node} has moved out (deregister) before this {p.op}")
        if p.op == "recover_household" and delay_s > m.check.max_recovery_s:
            raise ManifestError(f"{where}: recovery_delay_s / speed = {delay_s:.0f} s is longer than "
                                f"check.max_recovery_s; set [genesis] recovery_delay_s")
        if p.op == "deregister":
            moved_out.add(p.node)
        elif p.op == "reregister":
            moved_out.discard(p.node)


def load_manifest(path: Path) -> Manifest:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc.strerror}") from None
    return parse_manifest(data, path)
