"""The commune's constitution: genesis.json, its parameters and the chain id (DESIGN §3).

Pure: this parses and checks an already-read document; writing files and making
keys is node/'s job. The chain id is sha256 of the genesis file's bytes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import msgpack

from tokens.sky import Sky, SkyError, parse_sky
from tokens.txs import SOLIDARITY
from wire.seal import PAD, SEAL_OVERHEAD, SEALED_SECRET_LEN, SealError, open_from_commune, seal_to_commune

# DESIGN §3, every parameter with its default.
DEFAULT_PARAMS: dict[str, Any] = {
    "settlement_interval_s": 1800,
    "settlement_grace_s": 300,
    "levy_bp": 1000,
    "credit_limit": {"kwh": 50_000, "hour": 600},          # Wh, minutes
    "rates": {"hour_wh": 100_000},                          # 1 h = 100 kWh
    "public_service_rate": {"minutes": 300, "per_s": 86_400},   # 5 h per 24 h on call
    "allocation_categories": [
        ["pensions", 4000], ["energy", 1000], ["roads", 1000],
        ["startups", 2000], ["canteen", 1000], ["security", 1000],
    ],
    "allocation_epoch_s": 86_400,
    "allocation_rule": "independent_markets",
    "vote_weight": "household",
    "proposal_quorum_bp": 2000,
    "proposal_threshold_bp": 5000,
    "block_max_txs": 5000,
    "max_idle_s": 0,        # optional safety heartbeat; 0: empty blocks only when due
    # A nonce or meter seq (a clock value in ms) may be at most this far ahead of the
    # block time: a signer whose clock jumped ahead is refused instead of locked out.
    "max_nonce_ahead_s": 600,
    # DESIGN §12: a registrar's key recovery completes this long after it starts,
    # unless the household's key cancels it.
    "recovery_delay_s": 7 * 86_400,
    # DESIGN §4 "History": a settled interval's records (``int/``, ``ie/``) leave the
    # state once its end is this far behind the block time; nodes keep them in their
    # archive store (node/store/), not in the consensus state.
    "history_retention_s": 2 * 86_400,
    # docs/privacy.md "Erasure": a deregistered household's private data (its account,
    # key status, interval entries, contributions, sealed data keys) is erased from the
    # state this long after its Deregister, and its key may not be registered again.
    # 2 years: the CNIL's practice for sub-daily meter data (--archive-keep-days 730).
    "erasure_after_s": 2 * 365 * 86_400,
    # Development only: the chain clock runs time_scale times faster than wall
    # time from genesis_time. Only a genesis marked "dev": true may set it.
    "time_scale": 1,
    # docs/euro.md: the euro price of one kWh, in cents, at which the treasury buys kWh
    # (Redeem) and the registrar records a debt paid in euros (PayDebt). 0 closes both.
    # 20: about the energy part of the regulated tariff (tarif bleu base, 2025).
    "eur_per_kwh_cents": 20,
    # docs/reconciliation.md "Sky cap": an export delta above kWc × the genesis clear-sky
    # table × this margin is refused (above_clear_sky). 12000 bp: 1.2.
    "clear_sky_margin_bp": 12_000,
    # docs/reconciliation.md: a reconciled day whose provisional energy deviates from the
    # official one by more than this counts toward flagging the household (3 in a row).
    "reconcile_flag_bp": 1000,
    # docs/privacy.md "Public aggregates": a per-interval sum (ΣE, ΣI, M) is public only
    # when at least this many households make it up (tokens/queries_aggregate.py).
    "min_aggregate": 5,
}

# The margin may not fall under 1 (a real clear day would be refused) nor exceed 10.
CLEAR_SKY_MARGIN_BP = (10_000, 100_000)

# docs/euro.md: the highest euro price a proposal may set (1 000 EUR per kWh), so that
# every amount of cents fits the ledger's 64-bit integers.
MAX_EUR_PER_KWH_CENTS = 100_000

# DESIGN §4 and docs/classes.md: the built-in classes and their units. kwh is minted by
# metering and settled, hour is the time bank; their rules are their own.
CLASSES = {"kwh": "Wh", "hour": "min"}
BUILTIN_CLASSES = tuple(CLASSES)
# A class name fits the wire's class field (8 bytes) and an inter-commune voucher name.
CLASS_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,7}")
MAX_CLASSES = 16
ISSUERS = ("registrar", "none")
ALLOCATION_RULES = ("independent_markets", "mean")
VOTE_WEIGHTS = ("household", "contribution")

_HEX32 = re.compile(r"^[0-9a-f]{64}$")


class GenesisError(ValueError):
    """A genesis document that does not describe a valid commune."""


@dataclass(frozen=True)
class Validator:
    key: bytes
    addr: str
    name: str


@dataclass(frozen=True)
class HouseholdSpec:
    """A household registered at genesis. On a genesis that seals payloads its personal
    fields travel in ``sealed`` (``seal_household``), opened by the commune key's holders
    (``open_households``); meter, PRM and label are then empty and kVA, peak 0 here."""

    key: bytes
    meter: str
    prm: str
    label: str
    kva: int
    peak_w: int
    sealed: bytes = b""


# A sealed genesis household: [meter, prm, label, kva, peak_w] as msgpack, padded and
# sealed to the commune key of epoch 0. The padding hides the label's length to 64 bytes.
MAX_SEALED_HOUSEHOLD = 3 * PAD + SEAL_OVERHEAD


def seal_household(commune_public: bytes, spec: HouseholdSpec, ephemeral_seed: bytes) -> bytes:
    """``spec``'s personal fields sealed to the commune key of epoch 0 (docs/privacy.md
    "Genesis households"): only the validators and auditors open them."""
    fields = [spec.meter, spec.prm, spec.label, spec.kva, spec.peak_w]
    return seal_to_commune(commune_public, msgpack.packb(fields, use_bin_type=True), ephemeral_seed)


def open_households(genesis: "Genesis", secret: bytes) -> tuple[HouseholdSpec, ...]:
    """The genesis households with their sealed fields opened by the commune secret of
    epoch 0, checked as clear ones are. Raises ``GenesisError``: a genesis whose sealed
    household does not open, or is not well formed, describes no commune."""
    out = []
    for i, spec in enumerate(genesis.households):
        if not spec.sealed:
            out.append(spec)
            continue
        where = f"households[{i}].sealed"
        try:
            fields = msgpack.unpackb(open_from_commune(secret, spec.sealed), raw=False, strict_map_key=True)
        except SealError as exc:
            raise GenesisError(f"{where}: {exc}") from None
        except Exception:  # msgpack raises many types for garbage; all mean the same here
            raise GenesisError(f"{where}: not [meter, prm, label, kva, peak_w]") from None
        if not (isinstance(fields, list) and len(fields) == 5):
            raise GenesisError(f"{where}: not [meter, prm, label, kva, peak_w]")
        doc = dict(zip(("meter", "prm", "label", "kva", "peak_w"), fields), key=spec.key.hex())
        out.append(_household(doc, where))
    _check_distinct(out)
    return tuple(out)


def _check_distinct(households: list[HouseholdSpec] | tuple[HouseholdSpec, ...]) -> None:
    for what in ("key", "meter", "prm"):
        values = [getattr(h, what) for h in households if what == "key" or not h.sealed]
        if len(set(values)) != len(values):
            raise GenesisError(f"households: duplicate {what}")


@dataclass(frozen=True)
class ClassSpec:
    """A commune-defined token class (docs/classes.md): its unit (``decimals`` of it make
    one displayed ``label``), and who creates it: ``registrar`` (Issue) or ``none``
    (mutual credit only, like the time bank)."""

    name: str
    unit: str
    label: str
    decimals: int
    issued_by: str


@dataclass(frozen=True)
class Sealing:
    """docs/privacy.md "Sealed payloads": the commune data key of epoch 0, its X25519
    public key and its secret sealed to each genesis validator (in validator order): to
    the receive key ``receive`` names for it, or to its identity key where that is None
    (docs/privacy.md "Receive keys")."""

    public: bytes
    sealed: tuple[bytes, ...]
    receive: tuple[bytes | None, ...] = ()

    def get_receive(self, index: int) -> bytes | None:
        """The receive key genesis validator ``index``'s copy is sealed to, or None."""
        return self.receive[index] if index < len(self.receive) else None


@dataclass(frozen=True)
class Genesis:
    chain_id: bytes
    name: str
    insee: str
    genesis_time: int
    dev: bool
    validators: tuple[Validator, ...]
    registrars: tuple[bytes, ...]
    households: tuple[HouseholdSpec, ...]
    params: dict[str, Any]
    # docs/reconciliation.md: the clear-sky table; a genesis without one has no sky cap
    # (only the peak-power cap), as every commune made before issue 18.
    sky: Sky | None = None
    # A genesis with a commune data key seals household payloads (docs/privacy.md).
    sealing: Sealing | None = None
    # docs/classes.md: the classes the commune defines besides kwh and hour.
    classes: tuple[ClassSpec, ...] = ()

    @property
    def class_names(self) -> tuple[str, ...]:
        return BUILTIN_CLASSES + tuple(c.name for c in self.classes)

    def get_class(self, name: str) -> ClassSpec | None:
        return next((c for c in self.classes if c.name == name), None)

    @property
    def seals_payloads(self) -> bool:
        return self.sealing is not None

    @property
    def seals_households(self) -> bool:
        """Whether some genesis household's personal fields are sealed (``open_households``)."""
        return any(h.sealed for h in self.households)

    @property
    def needs_commune_key(self) -> bool:
        """Whether computing the genesis state needs the commune key of epoch 0: some
        household's fields are sealed, or the chain seals and has households, whose meter
        and PRM index entries are keyed by a hash under that key (tokens/indexkeys.py)."""
        return self.seals_households or (self.seals_payloads and bool(self.households))

    @property
    def clear_households(self) -> tuple[int, ...]:
        """The positions of households listed in clear in a genesis that seals payloads
        (written by hand: `genesis new --seal-payloads` seals every one). Their meter, PRM
        and label are in every copy of genesis.json; a node refuses to run on such a
        genesis unless it is a development one (docs/privacy.md "Genesis households")."""
        if self.sealing is None:
            return ()
        return tuple(i for i, h in enumerate(self.households) if not h.sealed)

    @property
    def chain_id_hex(self) -> str:
        return self.chain_id.hex()


def compute_chain_id(genesis_bytes: bytes) -> bytes:
    return hashlib.sha256(genesis_bytes).digest()


def default_params() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_PARAMS)


def _key(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise GenesisError(f"{where}: expected a 64-character lowercase hex key")
    return bytes.fromhex(value)


def _int(value: Any, where: str, lo: int = 0) -> int:
    if type(value) is not int or value < lo:
        raise GenesisError(f"{where}: expected an integer >= {lo}")
    return value


def check_params(params: Any, dev: bool, classes: tuple[str, ...] = BUILTIN_CLASSES) -> dict[str, Any]:
    """Merge ``params`` over the defaults and check every value; ``classes`` are the
    commune's class names (one credit limit each)."""
    if not isinstance(params, dict):
        raise GenesisError("params: expected an object")
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise GenesisError(f"params: unknown parameter {unknown[0]!r}")
    merged = default_params()
    merged.update(copy.deepcopy(params))
    for name in ("settlement_interval_s", "allocation_epoch_s", "block_max_txs", "time_scale",
                 "max_nonce_ahead_s", "history_retention_s", "min_aggregate"):
        _int(merged[name], f"params.{name}", 1)
    for name in ("settlement_grace_s", "recovery_delay_s", "max_idle_s"):
        _int(merged[name], f"params.{name}")
    if _int(merged["eur_per_kwh_cents"], "params.eur_per_kwh_cents") > MAX_EUR_PER_KWH_CENTS:
        raise GenesisError(f"params.eur_per_kwh_cents: at most {MAX_EUR_PER_KWH_CENTS} cents")
    for name in ("levy_bp", "proposal_quorum_bp", "proposal_threshold_bp", "reconcile_flag_bp"):
        if _int(merged[name], f"params.{name}") > 10_000:
            raise GenesisError(f"params.{name}: at most 10000 basis points")
    lo, hi = CLEAR_SKY_MARGIN_BP
    if not lo <= _int(merged["clear_sky_margin_bp"], "params.clear_sky_margin_bp") <= hi:
        raise GenesisError(f"params.clear_sky_margin_bp: from {lo} to {hi} basis points")
    if merged["settlement_grace_s"] >= merged["settlement_interval_s"]:
        raise GenesisError("params.settlement_grace_s: must be shorter than the interval")
    # An erased household's last interval has settled (it ends within an interval of its
    # Deregister and settles within the next one): erasure never changes a settlement.
    erase_floor = 2 * merged["settlement_interval_s"]
    if _int(merged["erasure_after_s"], "params.erasure_after_s", 1) < erase_floor:
        raise GenesisError(f"params.erasure_after_s: at least two settlement intervals ({erase_floor} s): "
                           "an erased household's last interval must have settled")
    limits = merged["credit_limit"]
    if not isinstance(limits, dict) or set(limits) != set(classes):
        raise GenesisError(f"params.credit_limit: expected one limit per class ({', '.join(classes)})")
    for cls, limit in sorted(limits.items()):
        _int(limit, f"params.credit_limit.{cls}")
    _int(merged["rates"].get("hour_wh") if isinstance(merged["rates"], dict) else None, "params.rates.hour_wh", 1)
    rate = merged["public_service_rate"]
    if not isinstance(rate, dict):
        raise GenesisError("params.public_service_rate: expected {minutes, per_s}")
    _int(rate.get("minutes"), "params.public_service_rate.minutes")
    _int(rate.get("per_s"), "params.public_service_rate.per_s", 1)
    _check_categories(merged["allocation_categories"])
    if merged["allocation_rule"] not in ALLOCATION_RULES:
        raise GenesisError(f"params.allocation_rule: one of {', '.join(ALLOCATION_RULES)}")
    if merged["vote_weight"] not in VOTE_WEIGHTS:
        raise GenesisError(f"params.vote_weight: one of {', '.join(VOTE_WEIGHTS)}")
    if merged["time_scale"] != 1 and not dev:
        raise GenesisError("params.time_scale: only a development genesis (\"dev\": true) may set it")
    return merged


def _check_categories(cats: Any) -> None:
    where = "params.allocation_categories"
    if not isinstance(cats, list) or not 1 <= len(cats) <= 32:
        raise GenesisError(f"{where}: expected 1 to 32 [name, bp] pairs")
    names = set()
    for i, item in enumerate(cats):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and 1 <= len(item[0].encode()) <= 32):
            raise GenesisError(f"{where}[{i}]: expected [name, bp], a name of 1 to 32 bytes")
        _int(item[1], f"{where}[{i}]")
        names.add(item[0])
    if len(names) != len(cats):
        raise GenesisError(f"{where}: duplicate category name")
    if sum(item[1] for item in cats) != 10_000:
        raise GenesisError(f"{where}: basis points must sum to 10000")


def _household(item: Any, where: str) -> HouseholdSpec:
    if not isinstance(item, dict):
        raise GenesisError(f"{where}: expected an object")
    if "sealed" in item:
        return _sealed_household(item, where)
    meter, prm = item.get("meter"), item.get("prm")
    if not (isinstance(meter, str) and re.fullmatch(r"\d{12}", meter)):
        raise GenesisError(f"{where}.meter: expected 12 digits")
    if not (isinstance(prm, str) and re.fullmatch(r"\d{14}", prm)):
        raise GenesisError(f"{where}.prm: expected 14 digits")
    label = item.get("label", "")
    if not isinstance(label, str) or len(label.encode()) > 64:
        raise GenesisError(f"{where}.label: text of at most 64 bytes")
    key = _key(item.get("key"), f"{where}.key")
    if key == SOLIDARITY:
        raise GenesisError(f"{where}.key: reserved for the solidarity gift target")
    return HouseholdSpec(key, meter, prm, label,
                         _int(item.get("kva"), f"{where}.kva", 1), _int(item.get("peak_w", 0), f"{where}.peak_w"))


def parse_genesis_household(item: Any) -> HouseholdSpec:
    """One clear genesis household entry, checked; raises ``GenesisError``."""
    return _household(item, "household")


def _sealed_household(item: dict, where: str) -> HouseholdSpec:
    # docs/privacy.md "Genesis households": the key in clear, the rest sealed.
    unknown = sorted(set(item) - {"key", "sealed"})
    if unknown:
        raise GenesisError(f"{where}: a sealed household holds only key and sealed, not {unknown[0]!r}")
    key = _key(item.get("key"), f"{where}.key")
    if key == SOLIDARITY:
        raise GenesisError(f"{where}.key: reserved for the solidarity gift target")
    sealed = item.get("sealed")
    raw = bytes.fromhex(sealed) if isinstance(sealed, str) and re.fullmatch(r"(?:[0-9a-f]{2})+", sealed) else b""
    if not SEAL_OVERHEAD < len(raw) <= MAX_SEALED_HOUSEHOLD or (len(raw) - SEAL_OVERHEAD) % PAD:
        raise GenesisError(f"{where}.sealed: expected a sealed box in hex, at most {MAX_SEALED_HOUSEHOLD} bytes")
    return HouseholdSpec(key, "", "", "", 0, 0, raw)


def _sealing(doc: Any, validators: list[Validator]) -> Sealing | None:
    if doc is None:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("sealed"), dict):
        raise GenesisError("sealing: expected {public, sealed: {validator key: sealed secret}}")
    public = _key(doc.get("public"), "sealing.public")
    sealed = doc["sealed"]
    if set(sealed) != {v.key.hex() for v in validators}:
        raise GenesisError("sealing.sealed: one sealed secret per genesis validator, and no other")
    out = []
    for v in validators:
        item = sealed[v.key.hex()]
        if not (isinstance(item, str) and re.fullmatch(f"[0-9a-f]{{{2 * SEALED_SECRET_LEN}}}", item)):
            raise GenesisError(f"sealing.sealed.{v.key.hex()[:16]}…: expected {SEALED_SECRET_LEN} bytes in hex")
        out.append(bytes.fromhex(item))
    return Sealing(public, tuple(out), _receive_keys(doc.get("receive"), validators))


def _receive_keys(doc: Any, validators: list[Validator]) -> tuple[bytes | None, ...]:
    # docs/privacy.md "Receive keys": {validator key: X25519 receive key}, for some or
    # all of the genesis validators; epoch 0 is sealed to it instead of the identity key.
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise GenesisError("sealing.receive: expected {validator key: receive key}")
    keys = {v.key.hex() for v in validators}
    unknown = sorted(set(doc) - keys)
    if unknown:
        raise GenesisError(f"sealing.receive.{str(unknown[0])[:16]}…: not a genesis validator's key")
    out = tuple(None if v.key.hex() not in doc else _key(doc[v.key.hex()], f"sealing.receive.{v.key.hex()[:16]}…")
                for v in validators)
    if any(k == bytes(32) for k in out):
        raise GenesisError("sealing.receive: a receive key of 32 zero bytes seals to nobody")
    return out


def _class(item: Any, where: str) -> tuple[ClassSpec, int]:
    """One ``classes`` entry: the class and its credit limit (docs/classes.md)."""
    if not isinstance(item, dict):
        raise GenesisError(f"{where}: expected {{name, unit, label, decimals, credit_limit, issued_by}}")
    unknown = sorted(set(item) - {"name", "unit", "label", "decimals", "credit_limit", "issued_by"})
    if unknown:
        raise GenesisError(f"{where}: unknown field {unknown[0]!r}")
    name = item.get("name")
    if not (isinstance(name, str) and CLASS_NAME_RE.fullmatch(name)):
        raise GenesisError(f"{where}.name: expected 1 to 8 lowercase letters, digits or _, "
                           f"starting with a letter")
    if name in CLASSES:
        raise GenesisError(f"{where}.name: {name} is built in (its rules and unit are fixed)")
    unit = item.get("unit")
    if not (isinstance(unit, str) and 1 <= len(unit.encode()) <= 16 and unit.isprintable()):
        raise GenesisError(f"{where}.unit: expected a unit name of 1 to 16 bytes")
    label = item.get("label", unit)
    if not (isinstance(label, str) and 1 <= len(label.encode()) <= 64 and label.isprintable()):
        raise GenesisError(f"{where}.label: expected a text of 1 to 64 bytes")
    decimals = _int(item.get("decimals", 0), f"{where}.decimals")
    if decimals > 9:
        raise GenesisError(f"{where}.decimals: at most 9")
    issued_by = item.get("issued_by", "registrar")
    if issued_by not in ISSUERS:
        raise GenesisError(f"{where}.issued_by: one of {', '.join(ISSUERS)}")
    limit = _int(item.get("credit_limit", 0), f"{where}.credit_limit")
    return ClassSpec(name, unit, label, decimals, issued_by), limit


def parse_classes(doc: Any, params: Any) -> tuple[tuple[ClassSpec, ...], Any]:
    """The ``classes`` section, and ``params`` with each class's credit limit merged into
    ``params.credit_limit`` (where a proposal may change it like kwh's and hour's)."""
    if doc is None:
        return (), params
    if not isinstance(doc, list) or len(doc) > MAX_CLASSES:
        raise GenesisError(f"classes: expected a list of at most {MAX_CLASSES} class definitions")
    parsed = [_class(item, f"classes[{i}]") for i, item in enumerate(doc)]
    names = [spec.name for spec, _ in parsed]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise GenesisError(f"classes: duplicate class {dup!r}")
    if not isinstance(params, dict):
        raise GenesisError("params: expected an object")
    limits = params.get("credit_limit", DEFAULT_PARAMS["credit_limit"])
    if not isinstance(limits, dict):
        raise GenesisError("params.credit_limit: expected an object")
    inside = sorted(set(limits) & set(names))
    if inside:
        raise GenesisError(f"params.credit_limit.{inside[0]}: set it in the class's own credit_limit")
    merged = dict(params, credit_limit=dict(limits, **{spec.name: limit for spec, limit in parsed}))
    return tuple(spec for spec, _ in parsed), merged


def parse_genesis(data: bytes) -> Genesis:
    """Parse and check genesis.json bytes. Raises ``GenesisError`` with the reason."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GenesisError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise GenesisError("expected a JSON object")
    commune = doc.get("commune")
    if not (isinstance(commune, dict) and isinstance(commune.get("name"), str) and commune["name"]):
        raise GenesisError("commune.name: required")
    insee = commune.get("insee")
    if not (isinstance(insee, str) and re.fullmatch(r"[0-9][0-9AB][0-9]{3}", insee)):
        raise GenesisError("commune.insee: expected a 5-character INSEE code")
    dev = doc.get("dev", False)
    if type(dev) is not bool:
        raise GenesisError("dev: expected true or false")
    vals = doc.get("validators")
    if not isinstance(vals, list) or not vals:
        raise GenesisError("validators: at least one is required")
    validators = []
    for i, v in enumerate(vals):
        if not isinstance(v, dict) or not isinstance(v.get("addr"), str):
            raise GenesisError(f"validators[{i}]: expected {{key, addr, name}}")
        validators.append(Validator(_key(v.get("key"), f"validators[{i}].key"), v["addr"],
                                    str(v.get("name", f"validator-{i}"))))
    if len({v.key for v in validators}) != len(validators):
        raise GenesisError("validators: duplicate key")
    regs = doc.get("registrars")
    if not isinstance(regs, list) or not regs:
        raise GenesisError("registrars: at least one is required")
    households = tuple(_household(h, f"households[{i}]") for i, h in enumerate(doc.get("households", [])))
    try:
        sky = parse_sky(doc["sky"]) if "sky" in doc else None
    except SkyError as exc:
        raise GenesisError(str(exc)) from None
    _check_distinct(households)
    sealing = _sealing(doc.get("sealing"), validators)
    if sealing is None and any(h.sealed for h in households):
        raise GenesisError("households: a sealed household needs a genesis that seals payloads (sealing)")
    classes, params = parse_classes(doc.get("classes"), doc.get("params", {}))
    return Genesis(
        chain_id=compute_chain_id(data),
        name=commune["name"], insee=insee,
        genesis_time=_int(doc.get("genesis_time"), "genesis_time"),
        dev=dev,
        validators=tuple(validators),
        registrars=tuple(_key(r, f"registrars[{i}]") for i, r in enumerate(regs)),
        households=households,
        params=check_params(params, dev, BUILTIN_CLASSES + tuple(c.name for c in classes)),
        sky=sky,
        sealing=sealing,
        classes=classes,
    )
