"""``voisinage demo ledger``: one simulated day of a commune, through the real state machine.

No network and no disk: a genesis is built in memory, every household's Linky is
simulated by ``node.sim.profiles`` (PV under a shared sky, H0-like loads, seeded),
readings are signed every 5 minutes and pushed, with a few transfers, a gift, a time-bank
service, an on-call duty, an offer, ballots and a fund spending, through
``tokens.select_txs`` and ``tokens.apply_block`` on a ``MemoryKV``. The day runs on the
UTC grid of the settlement intervals; the block after midnight settles the last
interval and runs the treasury epoch.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

import tokens
from node.sim.profiles import MeterSim, Weather, build_profiles, compute_commune_mix
from tokens import txs as T
from tokens.genesis import DEFAULT_PARAMS, Genesis, parse_genesis
from wire import Keypair, compute_id, sign_message

DEMO_DAY = 1_718_928_000           # 2024-06-21 00:00 UTC: the summer solstice
READING_EVERY_S = 300
BLOCK_LAG_S = 5                    # a block follows its readings by a few seconds
ZERO_SIG = bytes(64)
MAX_HOUSEHOLDS = 2000


@dataclass
class DemoCommune:
    genesis: Genesis
    registrar: Keypair
    keys: list[Keypair]
    meters: list[MeterSim]
    labels: list[str]
    kv: tokens.MemoryKV
    height: int = 0
    nonces: dict[bytes, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    n_txs: int = 0
    n_readings: int = 0

    def sign(self, tx: T.Tx, key: Keypair) -> bytes:
        return sign_message(tx, self.genesis.chain_id, key).encode()

    def next_nonce(self, key: Keypair) -> int:
        self.nonces[key.public] = self.nonces.get(key.public, 0) + 1
        return self.nonces[key.public]

    def tx(self, tx_type: type[T.Tx], by: Keypair, **fields: Any) -> bytes:
        return self.sign(tx_type(signer=by.public, nonce=self.next_nonce(by), sig=ZERO_SIG, **fields), by)


def compute_seed_key(seed: int, role: str, i: int = 0) -> Keypair:
    return Keypair(hashlib.sha256(f"voisinage-demo/{seed}/{role}/{i}".encode()).digest())


def build_commune(n: int, seed: int, params: dict[str, Any] | None = None, validators: int = 1) -> DemoCommune:
    """A genesis with ``n`` households (about 30 % producers), their simulated meters and
    ``validators`` validators (keys ``compute_seed_key(seed, "validator", i)``); ``params``
    over the defaults."""
    specs = compute_commune_mix(n, seed)
    keys = [compute_seed_key(seed, "household", i) for i in range(n)]
    registrar = compute_seed_key(seed, "registrar")
    labels = [f"Foyer {i}" + (" (PV)" if s.peak_w else "") for i, s in enumerate(specs)]
    doc = {
        "commune": {"name": "Demoville", "insee": "84000"},
        "genesis_time": DEMO_DAY,
        "validators": [{"name": "mairie" if i == 0 else f"mairie-{i}",
                        "key": compute_seed_key(seed, "validator", i).public.hex(),
                        "addr": f"/ip4/127.0.0.1/tcp/{26656 + i}"} for i in range(validators)],
        "registrars": [registrar.public.hex()],
        "households": [{"key": k.public.hex(), "meter": f"0214{i:08d}", "prm": f"300000{i:08d}",
                        "label": labels[i], "kva": s.kva, "peak_w": s.peak_w}
                       for i, (k, s) in enumerate(zip(keys, specs))],
        "params": params or {},
    }
    genesis = parse_genesis(json.dumps(doc, sort_keys=True).encode())
    profiles = build_profiles(specs, Weather(seed))
    meters = [MeterSim(p, DEMO_DAY, base_import_wh=10_000 * (i + 1), step_s=READING_EVERY_S)
              for i, p in enumerate(profiles)]
    return DemoCommune(genesis, registrar, keys, meters, labels, tokens.MemoryKV(tokens.genesis_writes(genesis)))


def apply_demo_block(c: DemoCommune, time_s: int, candidates: list[bytes]) -> tokens.BlockResult:
    """Select like a proposer, apply like a validator, persist like a node."""
    ctx = tokens.BlockContext(c.height + 1, time_s * 1000, c.genesis.validators[0].key)
    kept, rejected = tokens.select_txs(c.kv, c.genesis, ctx, candidates, c.genesis.params["block_max_txs"])
    c.rejected.extend((T.decode_tx(data).TAG if _decodes(data) else "?", exc.reason) for data, exc in rejected)
    # select_txs checked the signatures; like a node, do not check them twice.
    result = tokens.apply_block(c.kv, c.genesis, ctx, kept, verified={compute_id(d) for d in kept})
    c.kv.apply(result.writes)
    c.height += 1
    c.n_txs += len(kept)
    return result


def _decodes(data: bytes) -> bool:
    try:
        T.decode_tx(data)
    except T.DecodeError:
        return False
    return True


def build_readings(c: DemoCommune, seq: int, t: int) -> list[bytes]:
    out = []
    for i, (key, meter) in enumerate(zip(c.keys, c.meters)):
        imp, exp = meter.index_at(t)
        out.append(c.sign(T.MeterReading(signer=key.public, meter=f"0214{i:08d}", seq=seq, t=t, import_wh=imp,
                                         export_wh=exp, sig=ZERO_SIG), key))
    c.n_readings += len(out)
    return out


def build_events(c: DemoCommune, seed: int) -> dict[int, list[bytes]]:
    """The day's other transactions, by the reading step (5-minute slot) they join."""
    rng = random.Random(seed)
    n = len(c.keys)
    producers = [i for i, h in enumerate(c.genesis.households) if h.peak_w] or [0]
    consumers = [i for i in range(n) if i not in producers] or [n - 1]
    big = max(producers, key=lambda i: c.genesis.households[i].peak_w)
    poor, friend = rng.choice(consumers), rng.choice(consumers)
    a, b = rng.sample(range(n), 2)
    k, reg = c.keys, c.registrar
    hh = c.genesis.households[poor]
    # Built in time order, so that each signer's nonces rise with the blocks.
    events: dict[int, list[bytes]] = {}
    events[1] = [c.tx(T.UpdateHousehold, reg, key=k[poor].public, meter=hh.meter, kva=hh.kva, peak_w=hh.peak_w,
                      solidarity=True)]
    events[96] = [c.tx(T.PublicService, reg, beneficiary=k[a].public, on_call_s=86_400, memo="pompiers volontaires")]
    events[108] = [c.tx(T.StandingGift, k[big], beneficiary=k[poor].public, bp=2000, until=DEMO_DAY + 30 * 86_400)]
    events[144] = [c.tx(T.Transfer, k[big], to=k[friend].public, cls="kwh", amount=2000,
                        memo="merci pour les tomates")]
    events[168] = [c.sign(_service(c, k[a], k[b]), k[a])]
    offer = c.tx(T.Offer, k[big], give_cls="kwh", give_amount=3000, want_cls="hour", want_amount=30,
                 counterparty=None, expires=DEMO_DAY + 18 * 3600)
    events[192] = [offer]
    events[198] = [c.tx(T.Accept, k[friend], offer=compute_id(offer))]
    events[240] = [c.tx(T.AllocationBallot, k[i], entries=_ballot(rng)) for i in rng.sample(range(n), max(1, n // 4))]
    events[240].append(c.tx(T.Delegate, k[poor], topic="allocation", to=k[friend].public))
    return events


def _service(c: DemoCommune, payer: Keypair, provider: Keypair) -> T.Service:
    tx = T.Service(signer=payer.public, nonce=c.next_nonce(payer), provider=provider.public, minutes=90,
                   memo="garde d'enfants", provider_sig=ZERO_SIG, sig=ZERO_SIG)
    return sign_message(tx, c.genesis.chain_id, provider, "provider_sig")


def _ballot(rng: random.Random) -> tuple[T.BallotEntry, ...]:
    """A random split over the default categories, keyed by name (tokens/rules_gov.py)."""
    cuts = sorted(rng.randint(0, 100) for _ in range(5))
    parts = [b - a for a, b in zip([0] + cuts, cuts + [100])]
    names = [name for name, _ in DEFAULT_PARAMS["allocation_categories"]]
    return tuple(T.BallotEntry(category=name, bp=p * 100) for name, p in sorted(zip(names, parts)) if p)


def run_ledger_demo(households: int, seed: int) -> dict[str, Any]:
    """Run the day and return its summary (see ``summarise``)."""
    c = build_commune(households, seed)
    events = build_events(c, seed)
    settlements: list[Any] = []
    epochs: list[Any] = []
    steps = 86_400 // READING_EVERY_S
    for step in range(steps + 1):
        # Baselines at 00:00:01, then one reading per household every 5 minutes, each
        # a second before the slot's end so that its energy counts for the slot's interval.
        t = DEMO_DAY + 1 if step == 0 else DEMO_DAY + step * READING_EVERY_S - 1
        result = apply_demo_block(c, t + BLOCK_LAG_S, build_readings(c, step + 1, t) + events.get(step, []))
        settlements += [e for e in result.events if e.kind == "settlement"]
        epochs += [e for e in result.events if e.kind == "epoch"]
    # The epoch ran in the first block after midnight; the last interval settles once
    # its grace period is over (its levy waits in the treasury for the next epoch).
    grace = c.genesis.params["settlement_grace_s"]
    result = apply_demo_block(c, DEMO_DAY + 86_400 + grace, [])
    settlements += [e for e in result.events if e.kind == "settlement"]
    energy = tokens.get_funds(c.kv)["energy"]["kwh"]
    if energy:
        spend = c.tx(T.Spend, c.registrar, category="energy", to=c.keys[0].public, amount=energy // 2,
                     memo="borne de recharge de la salle des fetes")
        apply_demo_block(c, DEMO_DAY + 86_400 + grace + 60, [spend])
    return summarise(c, seed, settlements, epochs)


def summarise(c: DemoCommune, seed: int, settlements: list, epochs: list) -> dict[str, Any]:
    kv = c.kv
    accounts = [dict(tokens.get_account(kv, k.public)["balances"], label=label, address=k.public.hex())
                for k, label in zip(c.keys, c.labels)]
    totals = tokens.get_totals(kv)
    funds = tokens.get_funds(kv)
    treasury = tokens.get_treasury(kv)
    kwh_sum = sum(a["kwh"] for a in accounts) + treasury["kwh"] + sum(f["kwh"] for f in funds.values())
    hour_sum = sum(a["hour"] for a in accounts) + treasury["hour"]
    return {
        "commune": c.genesis.name, "households": len(c.keys),
        "producers": sum(1 for h in c.genesis.households if h.peak_w), "seed": seed, "day": "2024-06-21",
        "blocks": c.height, "txs": c.n_txs, "readings": c.n_readings,
        "rejected": [{"type": tag, "reason": reason} for tag, reason in c.rejected],
        "intervals": [{"start": e.start, "end": e.end, "sum_e": e.sum_e, "sum_i": e.sum_i, "m": e.m,
                       "exported": e.exported, "levy": e.levy} for e in settlements],
        "epochs": [{"start": e.epoch_start, "distributed": e.distributed, "shares": dict(e.shares)} for e in epochs],
        "totals": totals, "treasury": treasury, "allocation": tokens.get_allocation(kv), "funds": funds,
        "accounts": accounts, "state_hash": tokens.get_state_hash(kv).hex(),
        "conserved": kwh_sum == totals["minted"] - totals["allocated"] and hour_sum == 0,
        "state_hash_verified": tokens.get_state_hash(kv) == tokens.get_rescanned_state_hash(kv),
    }


def _kwh(wh: int) -> str:
    return f"{wh / 1000:9.3f}"


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable settlement summary: one line per interval, then the treasury."""
    lines = [f"Voisinage ledger demo: {s['commune']}, {s['households']} households ({s['producers']} with PV), "
             f"seed {s['seed']}, {s['day']} (UTC)",
             f"{s['blocks']} blocks, {s['txs']} txs applied ({s['readings']} meter readings signed), "
             f"{len(s['rejected'])} refused",
             "",
             "interval (UTC)     ΣE kWh    ΣI kWh     M kWh  exported kWh  levy kWh"]
    for iv in s["intervals"]:
        start = (iv["start"] - DEMO_DAY) // 60
        end = (iv["end"] - DEMO_DAY) // 60
        lines.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}  "
                     f"{_kwh(iv['sum_e'])} {_kwh(iv['sum_i'])} {_kwh(iv['m'])}     {_kwh(iv['exported'])} "
                     f"{_kwh(iv['levy'])}")
    day = {key: sum(iv[key] for iv in s["intervals"]) for key in ("sum_e", "sum_i", "m", "exported", "levy")}
    lines.append(f"whole day    {_kwh(day['sum_e'])} {_kwh(day['sum_i'])} {_kwh(day['m'])}     "
                 f"{_kwh(day['exported'])} {_kwh(day['levy'])}")
    lines.append("")
    for ep in s["epochs"]:
        when = (ep["start"] - DEMO_DAY) // 3600
        lines.append(f"treasury epoch at {when:02d}:00 UTC: {ep['distributed'] / 1000:.3f} kWh split among the funds")
    lines.append("standing allocation: " + ", ".join(f"{name} {bp / 100:.2f} %" for name, bp in s["allocation"].items()))
    lines.append("category funds (kWh): " + ", ".join(
        f"{name} {f['kwh'] / 1000:.3f}" + (f" (spent {f['spent'] / 1000:.3f})" if f["spent"] else "")
        for name, f in s["funds"].items()))
    t = s["treasury"]
    lines.append(f"treasury now: {t['kwh'] / 1000:.3f} kWh, {t['hour']} min of hour (public service owed)")
    ranked = sorted(s["accounts"], key=lambda a: -a["kwh"])
    lines.append("top balances: " + ", ".join(f"{a['label']} {a['kwh'] / 1000:+.3f} kWh" for a in ranked[:3]))
    lines.append("lowest balances: " + ", ".join(f"{a['label']} {a['kwh'] / 1000:+.3f} kWh" for a in ranked[-3:]))
    lines.append(f"minted {s['totals']['minted'] / 1000:.3f} kWh, allocated {s['totals']['allocated'] / 1000:.3f} kWh; "
                 f"balances sum to minted − allocated: {'yes' if s['conserved'] else 'NO'}")
    lines.append(f"state hash {s['state_hash']} "
                 f"({'matches' if s['state_hash_verified'] else 'DOES NOT MATCH'} a full recomputation)")
    if s["rejected"]:
        reasons: dict[str, int] = {}
        for r in s["rejected"]:
            reasons[f"{r['type']} {r['reason']}"] = reasons.get(f"{r['type']} {r['reason']}", 0) + 1
        lines.append("refused: " + ", ".join(f"{k} ×{v}" for k, v in sorted(reasons.items())))
    return "\n".join(lines)
