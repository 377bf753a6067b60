// The household and commune dashboard: polls the node's own JSON API every few
// seconds and redraws. Text is always set with textContent (never innerHTML).
// A household's own data is read with requests signed by its key, loaded from its key
// file into this tab (signing.js); without it the page shows the commune's public side
// only, and says so (docs/privacy.md "Who sees what through the API").
"use strict";

const POLL_MS = 3000;
const HEX64 = /^[0-9a-f]{64}$/;
const T = key => I18N.t(key);

const fmt = {
  kwh: wh => I18N.number(wh / 1000, Math.abs(wh) >= 100000 ? 0 : 2) + " kWh",
  hours: minutes => I18N.number(minutes / 60, 1) + " h",
  pct: bp => I18N.number(bp / 100, 1) + " %",
  time: s => I18N.time(s),
  hour: s => I18N.hour(s),
  amount: (cls, n) => cls === "hour" ? fmt.hours(n) : cls === "kwh" ? fmt.kwh(n) : fmt.units(cls, n),
  // A commune-defined class (docs/classes.md): ``decimals`` of its unit make one label.
  units: (cls, n) => {
    const c = state.classes[cls];
    return c ? I18N.number(n / 10 ** c.decimals, c.decimals) + " " + c.label : `${n} ${cls}`;
  },
  euros: cents => I18N.euros(cents),
};

const state = {addr: null, chosen: false, selectedK: null, labels: new Map(), inputError: null, node: null,
  authorize: null, asked: null, classes: {}};

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// A request to the node; `signed`: with the household key's signature headers.
async function request(method, path, signed) {
  const headers = {accept: "application/json"};
  if (signed && Signer.key) Object.assign(headers, await Signer.headers(method, path));
  return fetch(path, {method, cache: "no-store", headers});
}

// The JSON of a GET: null for a 404, {refused: status, error} for a 401 or 403.
async function getJSON(path, signed = false) {
  const resp = await request("GET", path, signed);
  if (resp.status === 404) return null;
  if (resp.status === 401 || resp.status === 403) {
    const doc = await resp.json().catch(() => ({}));
    return {refused: resp.status, error: doc.error_description || doc.error || ""};
  }
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

// Is the household on the page the one whose key is loaded? Then its requests are signed.
function isMine() { return Signer.pub !== null && Signer.pub === state.addr; }

function short(key) { return key ? key.slice(0, 8) + "…" : "–"; }

// tokens/txs.py SOLIDARITY: a gift to the households flagged solidarity.
const SOLIDARITY = "0".repeat(64);

function who(key) {
  if (key === state.addr) return T("my_household");
  if (key === SOLIDARITY) return T("solidarity");
  const label = state.labels.get(key);
  return label ? `${label} (${short(key)})` : short(key);
}

async function learnLabels(keys) {
  const unknown = [...new Set(keys)].filter(k => k && !state.labels.has(k)).slice(0, 20);
  await Promise.all(unknown.map(async key => {
    const acct = await getJSON(`/accounts/${key}`).catch(() => null);
    state.labels.set(key, acct && acct.household ? acct.household.label : "");
  }));
}

function fillTable(id, rows, emptyId) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows);
  $(emptyId).hidden = rows.length > 0;
  $(id).hidden = rows.length === 0;
}

// ---- household view ---------------------------------------------------------

function buildSlots(doc) {
  const byStart = new Map(doc.intervals.map(r => [r.start, r]));
  const slots = [];
  for (let s = doc.from; s <= doc.to; s += doc.interval_s) {
    const r = byStart.get(s);
    slots.push({k: Math.floor(s / doc.interval_s), start: s, export_wh: r ? r.export_wh : 0,
      import_wh: r ? r.import_wh : 0, settled: r ? r.settled : false});
  }
  return slots;
}

function renderBalances(acct) {
  $("balance-kwh").textContent = acct.balances ? fmt.kwh(acct.balances.kwh) : "–";
  $("balance-hour").textContent = acct.balances ? fmt.hours(acct.balances.hour) : "–";
  const others = Object.entries(acct.balances || {}).filter(([cls]) => cls !== "kwh" && cls !== "hour");
  $("balance-classes-card").hidden = others.length === 0;
  $("balance-classes").replaceChildren(...others.map(([cls, n]) => el("div", {}, fmt.amount(cls, n))));
  const label = acct.household && acct.household.label;
  $("hh-label").textContent = label ? `${label} · ${short(acct.address)}` : short(acct.address);
}

// The household's private side, refused: say why plainly, and draw none of it.
function renderPrivate(refused) {
  const node = $("hh-private");
  node.hidden = !refused;
  node.dataset.status = refused ? refused.refused : "";
  if (!refused) { node.textContent = ""; node.title = ""; return; }
  const why = Signer.pub === null ? T("private_locked") : T("private_refused");
  node.textContent = why;
  node.title = refused.error;          // the node's own words, for whoever wants them
  for (const id of ["produced-total", "consumed-total"]) { $(id).textContent = "–"; $(id).dataset.wh = ""; }
  $("energy-chart").replaceChildren();
  $("consumers-summary").textContent = "";
  fillTable("consumers-table", [], "consumers-empty");
  fillTable("hh-reconcile-table", [], "hh-reconcile-empty");
  $("hh-reconcile-summary").textContent = "";
}

function renderEnergy(doc) {
  const slots = buildSlots(doc);
  const produced = slots.reduce((a, s) => a + s.export_wh, 0);
  const consumed = slots.reduce((a, s) => a + s.import_wh, 0);
  $("produced-total").textContent = fmt.kwh(produced);
  $("produced-total").dataset.wh = produced;
  $("consumed-total").textContent = fmt.kwh(consumed);
  $("consumed-total").dataset.wh = consumed;
  if (state.selectedK === null) {
    const candidates = slots.filter(s => s.settled && s.export_wh > 0);
    if (candidates.length) state.selectedK = candidates[candidates.length - 1].k;
  }
  const pick = s => { state.selectedK = s.k; refreshConsumers(); renderEnergy(doc); };
  $("energy-chart").replaceChildren(Charts.energyChart(slots, state.selectedK, pick, fmt, $("energy-chart").clientWidth));
}

async function refreshConsumers() {
  const k = state.selectedK;
  if (k === null || !state.addr) { fillTable("consumers-table", [], "consumers-empty"); return; }
  const doc = await getJSON(`/households/${state.addr}/consumers?interval=${k}`, isMine());
  if (!doc || doc.refused || k !== state.selectedK) return;
  await learnLabels(doc.consumers.map(c => c.consumer));
  $("consumers-interval").textContent = `(${T("interval")} ${fmt.time(doc.start)}, ${fmt.kwh(doc.export_wh)})`;
  // docs/privacy.md: how many neighbours used how much of it; who, only the PMO reads.
  // A light household node knows how much (from the public interval) but not how many.
  // Of an interval too few households made up, the light node was refused the commune's
  // sums (docs/privacy.md "Public aggregates"): it cannot tell how much (local_wh null).
  const summary = $("consumers-summary");
  const counted = doc.consumers_count !== null;
  summary.textContent = doc.local_wh === null ? T("consumers_hidden_light")
    : !doc.local_wh && !doc.consumers_count ? "" : counted
    ? I18N.format("consumers_summary", {n: doc.consumers_count, wh: fmt.kwh(doc.local_wh)})
    : I18N.format("consumers_summary_light", {wh: fmt.kwh(doc.local_wh)});
  summary.dataset.count = counted ? doc.consumers_count : "";
  summary.dataset.wh = doc.local_wh === null ? "" : doc.local_wh;
  summary.dataset.k = doc.interval;
  fillTable("consumers-table", doc.consumers.map(c => el("tr", {"data-consumer": c.consumer},
    el("td", {}, who(c.consumer)), el("td", {class: "num"}, fmt.kwh(c.wh)))), "consumers-empty");
  if (doc.consumers_count || doc.local_wh) $("consumers-empty").hidden = true;
}

function giftTarget(g) {
  // docs/euro.md: a gift may go to a category fund or an association as well as a household.
  const target = g.target || "household";
  if (target.startsWith("fund:")) return T("fund") + " " + I18N.category(target.slice(5));
  if (target.startsWith("association:")) return target.slice(12);
  return who(g.beneficiary);
}

function renderGifts(acct) {
  fillTable("gifts-table", (acct.gifts || []).map(g => el("tr", {"data-gift": g.id},
    el("td", {}, giftTarget(g)), el("td", {class: "num"}, fmt.pct(g.bp)), el("td", {}, fmt.time(g.until)))),
  "gifts-empty");
}

function renderKeyStatus(acct) {
  // DESIGN §12: a pending recovery (with its completion time), a replaced key, a move.
  const shortKey = k => k.slice(0, 16) + "…";
  let text = "";
  if (acct.recovery) {
    text = I18N.format("recovery_pending", {key: shortKey(acct.recovery.new_key),
      when: fmt.time(acct.recovery.completes_at)}) + " " + T("recovery_hint");
  } else if (acct.rotated_to) {
    text = I18N.format("key_rotated", {key: shortKey(acct.rotated_to)});
  } else if (acct.deregistered_at !== null && acct.deregistered_at !== undefined) {
    text = I18N.format("moved_out", {height: acct.deregistered_at});
  }
  const node = $("hh-key-status");
  node.hidden = text === "";
  node.textContent = text;
  node.dataset.completesAt = acct.recovery ? acct.recovery.completes_at : "";
}

function renderVote(acct, allocation) {
  const topics = Object.keys(acct.delegations).sort();
  const topicName = t => T(t === "*" ? "topic_all" : "topic_" + t);
  $("delegations").replaceChildren(...topics.flatMap(t => [el("dt", {}, topicName(t)),
    el("dd", {"data-topic": t}, acct.delegations[t] ? who(acct.delegations[t]) : T("delegation_none"))]));
  $("delegations-empty").hidden = topics.length > 0;
  const ballot = acct.ballot_by_category;
  $("ballot-empty").hidden = !!ballot;
  $("ballot-chart").replaceChildren();
  if (ballot) {
    const rows = allocation.categories.map(n => ({name: n, label: I18N.category(n), bp: ballot[n] || 0, applied: null}));
    $("ballot-chart").append(Charts.allocationChart(rows, fmt, $("ballot-chart").clientWidth));
  }
}

function describeTx(tx) {
  const me = state.addr;
  const out = tx.signer === me;
  switch (tx.type) {
    case "tx/transfer":
      return [`${T(out ? "sent" : "got")} ${who(out ? tx.to : tx.signer)}`, (out ? "−" : "+") + fmt.amount(tx.cls, tx.amount)];
    case "tx/gift":
      return [`${T(out ? "gift_to" : "gift_from")} ${who(out ? tx.beneficiary : tx.signer)}`, fmt.pct(tx.bp)];
    case "tx/service":
      return [`${T(out ? "service_for" : "service_by")} ${who(out ? tx.provider : tx.signer)}`,
        (out ? "−" : "+") + fmt.hours(tx.minutes)];
    case "tx/issue":
      return [`${T("issued")}${tx.memo ? " · " + tx.memo : ""}`, "+" + fmt.amount(tx.cls, tx.amount)];
    case "tx/send-to-commune":
      // docs/communes.md: its state (in flight, delivered, refunded) is on the communes panel.
      return [`${T("sent")} ${short(tx.receiver)} (${Communes.name(tx.dest)})`, "−" + Communes.amount(tx.denom, tx.amount)];
    case "tx/spend":
      return [`${I18N.category(tx.category)} → ${who(tx.to)}${tx.memo ? " · " + tx.memo : ""}`, fmt.kwh(tx.amount)];
    default:
      return ["", ""];
  }
}

function renderTxList(listId, emptyId, txs) {
  const items = txs.map(tx => {
    const [what, amount] = describeTx(tx);
    return el("li", {"data-tx-id": tx.id, "data-type": tx.type},
      el("span", {class: "what"}, [T(tx.type) === tx.type ? T("tx_other") : T(tx.type), what].filter(Boolean).join(" · ")),
      el("span", {class: "amount"}, amount),
      el("span", {class: "when"}, `#${tx.height} · ${fmt.time(Math.floor(tx.time_ms / 1000))}`));
  });
  $(listId).replaceChildren(...items);
  $(emptyId).hidden = items.length > 0;
}

async function refreshHousehold(allocation) {
  const addr = state.addr, signed = isMine();
  const answers = await Promise.all([getJSON(`/accounts/${addr}`, signed),
    getJSON(`/households/${addr}/intervals`, signed), getJSON(`/txs?account=${addr}&limit=20`, signed)]);
  // A refusal (401/403): the household route's, or any signed one's (a clock far off).
  const refused = answers.find(doc => doc && doc.refused) || null;
  const [acct, energy, txs] = answers.map(doc => doc && doc.refused ? null : doc);
  const message = $("hh-message");
  const problem = state.inputError || (!answers[0] ? "unknown_account" : (!answers[1] ? "not_household" : null));
  message.hidden = problem === null;
  message.textContent = problem === null ? "" : T(problem);
  renderPrivate(refused);
  if (acct) {
    await learnLabels([...(acct.gifts || []).map(g => g.beneficiary), ...Object.values(acct.delegations),
      ...(txs ? txs.txs : []).flatMap(tx => [tx.signer, tx.to, tx.beneficiary, tx.provider])]);
    renderBalances(acct);
    renderKeyStatus(acct);
    renderGifts(acct);
    renderVote(acct, allocation);
  }
  if (energy && !refused) {
    renderEnergy(energy);
    await refreshConsumers();
    const rec = await getJSON(`/households/${addr}/reconciliation`, signed);
    if (rec && !rec.refused) renderHouseholdReconciliation(rec);
  }
  renderTxList("activity", "activity-empty", txs ? txs.txs : []);
  await refreshConsent(signed && !refused);
}

// ---- the household's consents (on its own node) -----------------------------------

function scopeNames(scopes) { return scopes.map(s => T("scope_" + s)).join(", "); }

async function refreshConsent(own) {
  // Consents live on the household's own node: the page's household is the node's.
  const shown = own && state.node !== null && state.node.address === state.addr;
  $("consent-panel").hidden = !shown;
  if (!shown) return;
  const [grants, log] = await Promise.all([getJSON("/consent/grants", true), getJSON("/consent/log?limit=20", true)]);
  if (grants && !grants.refused) {
    fillTable("grants-table", grants.grants.map(g => el("tr", {"data-grant": g.id, class: g.status},
      el("td", {}, g.client_name), el("td", {}, scopeNames(g.scopes)), el("td", {}, fmt.time(g.expires)),
      el("td", {"data-status": g.status}, T("grant_" + g.status)),
      el("td", {}, g.status === "active" ? revokeButton(g) : ""))), "grants-empty");
  }
  if (log && !log.refused) {
    fillTable("log-table", log.entries.map(e => el("tr", {"data-seq": e.seq, "data-who": e.who},
      el("td", {}, fmt.time(e.t)), el("td", {}, e.who === "household" ? T("you") : (e.client_name || e.who)),
      el("td", {}, T("scope_" + e.scope)), el("td", {}, `${e.start} → ${e.end}`),
      el("td", {class: "num"}, e.status))), "log-empty");
  }
  if (state.authorize !== null && state.asked === null) await showAuthorize();
}

function revokeButton(grant) {
  const button = el("button", {type: "button", class: "revoke", "data-grant": grant.id}, T("revoke"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    await request("POST", `/consent/grants/${grant.id}/revoke`, true);
    await refreshConsent(true);
  });
  return button;
}

async function showAuthorize() {
  // What the third party asks, read signed (it names this household's usage point).
  const doc = await getJSON(`/oauth/authorize?${state.authorize}`, true);
  $("authorize-box").hidden = false;
  $("authorize-result").hidden = true;
  if (!doc || doc.refused || doc.error) {
    state.asked = null;
    $("authorize-request").textContent = T("authorize_bad") + (doc && (doc.error_description || doc.error)
      ? ` (${doc.error_description || doc.error})` : "");
    $("authorize-approve").disabled = $("authorize-deny").disabled = true;
    return;
  }
  state.asked = doc;
  $("authorize-request").textContent = I18N.format("authorize_asks", {client: doc.client_name,
    scopes: scopeNames(doc.scopes), days: doc.duration_days, prm: doc.usage_point_id});
  $("authorize-approve").disabled = $("authorize-deny").disabled = false;
}

async function decideAuthorize(decision) {
  if (state.authorize === null || state.asked === null) return;
  $("authorize-approve").disabled = $("authorize-deny").disabled = true;
  const resp = await request("POST", `/oauth/authorize?${state.authorize}&decision=${decision}`, true);
  const doc = await resp.json().catch(() => ({}));
  const link = $("authorize-location");
  $("authorize-result").hidden = false;
  if (resp.ok && doc.location) {
    link.href = doc.location;
    link.dataset.decision = decision;
    link.textContent = I18N.format(decision === "approve" ? "authorize_done" : "authorize_denied",
      {client: state.asked.client_name});
  } else {
    link.removeAttribute("href");
    link.textContent = T("authorize_bad") + ` (${doc.error_description || doc.error || resp.status})`;
  }
  state.authorize = null;
  await refreshConsent(true);
}

function chooseAuthorize() {
  // A third party's link: /oauth/authorize?... sent here by the node as /?authorize=...
  const asked = new URLSearchParams(location.search).get("authorize");
  if (asked) state.authorize = asked;
  $("authorize-form").addEventListener("submit", e => {
    e.preventDefault();
    const text = $("authorize-url").value.trim();
    const at = text.indexOf("?");
    if (at < 0) return;
    state.authorize = text.slice(at + 1);
    state.asked = null;
    showAuthorize();
  });
  $("authorize-approve").addEventListener("click", () => decideAuthorize("approve"));
  $("authorize-deny").addEventListener("click", () => decideAuthorize("deny"));
}

// ---- the household's key --------------------------------------------------------------

function renderKey() {
  const status = $("key-status");
  status.textContent = Signer.pub ? I18N.format("key_loaded", {key: short(Signer.pub)}) : T("no_key");
  status.dataset.key = Signer.pub || "";
  $("key-forget").hidden = Signer.pub === null;
}

function chooseKey() {
  $("key-file").addEventListener("change", async e => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    try {
      await Signer.load(await file.text());
    } catch (err) {
      Signer.forget();
      renderKey();
      $("key-status").textContent = T(err instanceof KeyFileError ? err.message : "not_key_file");
      return;
    }
    renderKey();
    if (!state.chosen) state.addr = Signer.pub;
    state.selectedK = null;
    refresh();
  });
  $("key-forget").addEventListener("click", () => {
    Signer.forget();
    renderKey();
    refresh();
  });
}

// ---- commune view -------------------------------------------------------------

function renderCommune(commune, allocation) {
  $("commune-name").textContent = commune.name;
  state.classes = Object.fromEntries((commune.classes || []).map(c => [c.name, c]));
  $("treasury-kwh").textContent = fmt.kwh(commune.treasury.kwh);
  $("households-count").textContent = commune.households;
  $("minted-total").textContent = fmt.kwh(commune.totals.minted);
  const rows = allocation.categories.map(n => ({name: n, label: I18N.category(n), bp: allocation.allocation[n],
    applied: allocation.applied[n]}));
  $("allocation-chart").replaceChildren(Charts.allocationChart(rows, fmt, $("allocation-chart").clientWidth));
  $("allocation-rule").textContent = T("rule_" + allocation.rule);
  $("funds-table").querySelector("tbody").replaceChildren(...Object.entries(commune.funds).map(([name, f]) =>
    el("tr", {"data-fund": name}, el("td", {}, I18N.category(name)), el("td", {class: "num"}, fmt.kwh(f.kwh)),
      el("td", {class: "num"}, fmt.kwh(f.received)), el("td", {class: "num"}, fmt.kwh(f.spent)))));
}

function renderPayouts(doc) {
  // docs/euro.md: what the treasury owes for redeemed kWh, what it paid, what debts were paid.
  $("euro-outstanding").textContent = fmt.euros(doc.totals.outstanding_cents);
  $("euro-paid").textContent = fmt.euros(doc.totals.paid_cents);
  $("euro-received").textContent = fmt.euros(doc.totals.received_cents);
  const owed = [...doc.payouts].sort((a, b) => b.time - a.time);
  fillTable("payouts-table", owed.map(p => el("tr", {"data-payout": p.id, class: p.status},
    el("td", {}, p.label || who(p.account)), el("td", {class: "num"}, fmt.kwh(p.amount)),
    el("td", {class: "num"}, fmt.euros(p.cents)), el("td", {}, fmt.time(p.time)),
    el("td", {}, T("status_" + p.status) + (p.ref ? " · " + p.ref : "")))), "payouts-empty");
}

function renderAggregates(doc) {
  // Issue 20: the commune's sums per half hour; a sum fewer than min_aggregate
  // households make up is not published (drawn as nothing, counted in the note).
  const byStart = new Map(doc.intervals.map(r => [r.start, r]));
  const slots = [];
  for (let s = doc.from; s <= doc.to; s += doc.interval_s) {
    const r = byStart.get(s);
    slots.push({k: Math.floor(s / doc.interval_s), start: s, export_wh: r && r.sum_e !== null ? r.sum_e : 0,
      import_wh: r && r.sum_i !== null ? r.sum_i : 0, settled: !!r, suppressed: !!(r && r.suppressed)});
  }
  const hidden = doc.intervals.filter(r => r.suppressed).length;
  // docs/privacy.md "The dashboard": a light household node cannot count who took part.
  $("aggregates-note").textContent = I18N.format(doc.counted === false ? "aggregates_note_light" : "aggregates_note",
    {min: doc.min_aggregate, n: hidden});
  $("aggregates-panel").dataset.counted = doc.counted !== false;
  $("aggregates-panel").dataset.suppressed = hidden;
  $("aggregates-panel").dataset.shown = doc.intervals.length - hidden;
  $("aggregates-chart").replaceChildren(Charts.energyChart(slots, null, () => {}, fmt,
    $("aggregates-chart").clientWidth));
}

function renderReconciliation(doc) {
  // docs/reconciliation.md: the commune's share of energy backed by official curves.
  $("reconciled-share").textContent = (doc.reconciled_share_bp / 100).toFixed(1) + " %";
  $("corrections-minted").textContent = fmt.kwh(doc.minted_wh);
  $("corrections-burned").textContent = fmt.kwh(doc.burned_wh);
  fillTable("flagged-table", doc.flagged.map(f => el("tr", {"data-prm": f.prm, class: "bad"},
    el("td", {}, f.label || who(f.address)), el("td", {class: "num"}, f.streak),
    el("td", {class: "num"}, (f.last_deviation_bp / 100).toFixed(1) + " %"))), "flagged-empty");
}

function renderHouseholdReconciliation(doc) {
  const both = (e, i) => `${fmt.kwh(e)} / ${fmt.kwh(i)}`;
  $("hh-reconcile-summary").textContent = (doc.consent ? T("consent_yes") : T("consent_no")) +
    (doc.totals.flagged ? " · " + T("flagged") : "");
  fillTable("hh-reconcile-table", [...doc.intervals].reverse().map(r => el("tr", {"data-start": r.start},
    el("td", {}, fmt.time(r.start)),
    el("td", {class: "num"}, both(r.provisional_export_wh, r.provisional_import_wh)),
    el("td", {class: "num"}, both(r.official_export_wh, r.official_import_wh)),
    el("td", {class: "num"}, both(r.correction_export_wh, r.correction_import_wh)))), "hh-reconcile-empty");
}

function renderValidators(doc) {
  const rows = doc.validators.map(v => {
    const health = v.equivocating ? el("span", {class: "badge bad"}, T("equivocating"))
      : el("span", {class: "badge good"}, T("ok"));
    return el("tr", {"data-validator": v.key, class: v.equivocating ? "bad" : ""},
      el("td", {}, v.name + (v.self ? ` (${T("this_node")})` : "")),
      el("td", {class: "num"}, v.height === null ? "–" : v.height),
      el("td", {class: "num"}, v.round === null ? (v.self ? doc.round : "–") : v.round),
      el("td", {}, T(v.signed_last_commit ? "yes" : "no")),
      el("td", {}, T(v.connected ? "connected" : "disconnected")),
      el("td", {class: "num"}, v.heartbeat_age_s === null || v.heartbeat_age_s === undefined ? "–"
        : el("span", {class: v.live ? "badge good" : "badge bad"}, `${v.heartbeat_age_s} s`)),
      el("td", {}, health));
  });
  $("validators-table").querySelector("tbody").replaceChildren(...rows);
  $("consensus-round").textContent = doc.round;
  $("last-commit-round").textContent = doc.last_commit_round === null ? "–" : doc.last_commit_round;
}

function formatDelay(seconds) {
  if (seconds >= 86400 && seconds % 86400 === 0) return I18N.format("days", {n: seconds / 86400});
  if (seconds >= 3600) return I18N.format("hours", {n: Math.round(seconds / 360) / 10});
  return I18N.format("minutes", {n: Math.round(seconds / 6) / 10});
}

function renderRegistrars(doc) {
  // DESIGN §12: the registrar's desk: the recovery delay, recoveries the old key may
  // still cancel (and when each takes effect), and the households that moved out.
  $("registrars-count").textContent = doc.registrars.length;
  $("recovery-delay").textContent = formatDelay(doc.recovery_delay_s);
  $("recovery-delay").dataset.seconds = doc.recovery_delay_s;
  fillTable("recoveries-table", doc.recoveries.map(r => el("tr", {"data-recovery": r.household,
    "data-completes-at": r.completes_at},
    el("td", {}, r.label ? `${r.label} (${short(r.household)})` : short(r.household)),
    el("td", {}, short(r.new_key)), el("td", {}, fmt.time(r.completes_at)))), "recoveries-empty");
  fillTable("moved-out-table", doc.moved_out.slice(0, 20).map(m => el("tr", {"data-moved-out": m.key},
    el("td", {}, who(m.key)), el("td", {class: "num"}, m.height))), "moved-out-empty");
}

// ---- polling -------------------------------------------------------------------

async function refresh() {
  try {
    const [status, commune, allocation, validators, spends, payouts, registrars] = await Promise.all([
      getJSON("/status"), getJSON("/commune"), getJSON("/governance/allocation"), getJSON("/validators"),
      getJSON("/txs?type=tx/spend&limit=10"),
      // Payouts: the totals to all, the rows to their household (signed with the loaded key).
      getJSON("/euro/payouts?status=owed&limit=50", Signer.key !== null),
      getJSON("/registrars")]);
    renderReconciliation(await getJSON("/reconciliation"));
    renderAggregates(await getJSON("/aggregates"));
    state.node = status;
    state.addr = state.addr || Signer.pub || status.address;
    const [ibc, transfers] = await Promise.all([getJSON("/ibc"), getJSON("/ibc/transfers?limit=20")]);
    await learnLabels(Communes.localKeys(transfers));
    Communes.render(ibc, transfers);
    $("status-height").textContent = status.height;
    $("status-time").textContent = fmt.time(Math.floor(status.block_time_ms / 1000));
    renderCommune(commune, allocation);
    renderValidators(validators);
    renderPayouts(payouts);
    renderRegistrars(registrars);
    await learnLabels(spends.txs.map(tx => tx.to));
    renderTxList("spends", "spends-empty", spends.txs);
    await refreshHousehold(allocation);
    $("status-live").textContent = T("live");
    $("status-live").className = "live ok";
    document.body.dataset.height = status.height;
  } catch (err) {
    $("status-live").textContent = T("offline");
    $("status-live").className = "live bad";
  }
}

function chooseAddress() {
  const wanted = new URLSearchParams(location.search).get("addr");
  if (wanted && HEX64.test(wanted)) { state.addr = wanted; state.chosen = true; $("addr-input").value = wanted; }
  $("addr-input").addEventListener("input", () => { state.inputError = null; });
  $("addr-form").addEventListener("submit", e => {
    e.preventDefault();
    const value = $("addr-input").value.trim().toLowerCase();
    if (!HEX64.test(value)) {
      state.inputError = "bad_addr";
      $("hh-message").hidden = false;
      $("hh-message").textContent = T("bad_addr");
      return;
    }
    state.inputError = null;
    const url = new URL(location.href);
    url.searchParams.set("addr", value);
    history.replaceState(null, "", url);
    state.addr = value;
    state.chosen = true;
    state.selectedK = null;
    refresh();
  });
}

let timer = null;

async function loop() {
  await refresh();
  timer = setTimeout(loop, POLL_MS);
}

document.addEventListener("DOMContentLoaded", async () => {
  I18N.apply();
  $("lang-toggle").addEventListener("click", () => {
    I18N.set(I18N.lang === "fr" ? "en" : "fr");
    renderKey();
    clearTimeout(timer);
    loop();
  });
  await Signer.restore();
  renderKey();
  chooseKey();
  chooseAddress();
  chooseAuthorize();
  loop();
});
