// The "Transfers with other communes" panel (docs/communes.md): the linked communes with
// what this chain holds in escrow for each, what is in flight and their vouchers here;
// then each transfer sent or received, with both of its accounts, its amount in the
// class's unit (a voucher named by the commune it comes from), its time and its state
// in words. Uses dashboard.js's helpers (el, fmt, T, who, short, fillTable).
"use strict";

// tokens/ibc.py VOUCHER_RE: ibc/<16 hex of the origin chain>/<class>.
const VOUCHER = /^ibc\/([0-9a-f]{16})\/([a-z][a-z0-9_-]{0,7})$/;

const Communes = {
  // chain id (hex) and short id (16 hex) -> the name its registrar linked it under
  names: new Map(),

  learn(ibc) {
    this.names.clear();
    for (const c of ibc.clients) { this.names.set(c.chain_id, c.name); this.names.set(c.short_id, c.name); }
  },

  name(chainOrShort) {
    return this.names.get(chainOrShort) || (chainOrShort ? chainOrShort.slice(0, 16) + "…" : "?");
  },

  // An amount of a denomination: the class's unit, and a voucher's origin in words.
  amount(denom, n) {
    const v = VOUCHER.exec(denom);
    if (!v) return fmt.amount(denom, n);
    return fmt.amount(v[2], n) + " · " + I18N.format("vouchers_of", {commune: this.name(v[1])});
  },

  amounts(byDenom) {
    const parts = Object.entries(byDenom || {}).filter(([, n]) => n).map(([d, n]) => this.amount(d, n));
    return parts.length ? parts.join(", ") : "0";
  },

  // What an incoming transfer was credited as here: a native class of the sender's
  // commune becomes its voucher; a voucher of ours coming home is our class again.
  credited(t) {
    if (VOUCHER.test(t.denom)) return this.amount(t.credited_as, t.amount);
    return fmt.amount(t.denom, t.amount) + " · " + I18N.format("vouchers_of", {commune: this.name(t.source)});
  },

  // The state in words: sent ones by their record, received ones by their receipt.
  status(dir, t) {
    if (dir === "out") {
      const key = {sent: "in-flight", delivered: "delivered", refunded: "refunded", "timed-out": "timed-out"}[t.status];
      return key || t.status;
    }
    return t.ok ? "delivered" : "refused";
  },

  statusText(dir, t, status) {
    const text = T("xfer_" + status);
    if (status !== "refused") return text;
    const why = T("xfer_reason_" + t.reason);
    return `${text} (${why === "xfer_reason_" + t.reason ? t.reason : why})`;
  },

  linkRow(c, ch, vouchers) {
    const flight = ch.in_flight_packets ? `${ch.in_flight_packets} · ${this.amounts(ch.in_flight)}` : "0";
    return el("tr", {"data-chain": c.chain_id, class: c.frozen ? "bad" : ""}, el("td", {}, c.name),
      el("td", {class: "num escrow"}, this.amounts(ch.escrow)),
      el("td", {class: "num flight", "data-packets": ch.in_flight_packets}, flight),
      el("td", {class: "num vouchers"}, vouchers.length
        ? vouchers.map(v => fmt.amount(v.class, v.supply)).join(", ") : "0"),
      el("td", {}, c.frozen ? T("client_frozen") : `${T("header")} ${c.latest_height}`));
  },

  transferRow(dir, t) {
    const peer = dir === "out" ? t.dest : t.source;
    const status = this.status(dir, t);
    // The account of this commune is named as elsewhere on the page; the other
    // commune's by its key, with the commune it belongs to.
    const ours = dir === "out" ? t.sender : t.receiver;
    const theirs = dir === "out" ? t.receiver : t.sender;
    const local = who(ours), remote = `${short(theirs)} (${this.name(peer)})`;
    return el("tr", {"data-transfer": `${dir}/${peer}/${t.seq}`, "data-dir": dir, "data-seq": t.seq,
      "data-chain": peer, "data-status": status, "data-amount": t.amount, "data-denom": t.denom,
      "data-time": t.time_s, "data-height": t.height, class: dir + (status === "refused" ? " bad" : "")},
    el("td", {class: "dir"}, T(dir === "out" ? "sent_to" : "received_from") + " " + this.name(peer)),
    el("td", {class: "from"}, dir === "out" ? local : remote),
    el("td", {class: "to"}, dir === "out" ? remote : local),
    el("td", {class: "num amount"}, dir === "out" ? "−" + this.amount(t.denom, t.amount) : "+" + this.credited(t)),
    el("td", {class: "time"}, fmt.time(t.time_s)),
    el("td", {class: "status"}, this.statusText(dir, t, status)));
  },

  // Each transfer, newest first; the local keys to learn labels for first.
  rows(transfers) {
    return transfers.outgoing.map(t => ["out", t]).concat(transfers.incoming.map(t => ["in", t]))
      .sort((a, b) => b[1].time_s - a[1].time_s || b[1].height - a[1].height).slice(0, 20);
  },

  localKeys(transfers) {
    return transfers.outgoing.map(t => t.sender).concat(transfers.incoming.map(t => t.receiver));
  },

  render(ibc, transfers) {
    this.learn(ibc);
    const alerts = ibc.clients.filter(c => c.frozen).map(c => T("client_frozen") + " " + c.name + " @" + c.frozen_height)
      .concat(ibc.self_misbehaviour.map(m => T("own_misbehaviour") + " @" + m.height));
    $("communes-alert").hidden = alerts.length === 0;
    $("communes-alert").textContent = alerts.join(" · ");
    const channels = Object.fromEntries(ibc.channels.map(ch => [ch.dest, ch]));
    fillTable("communes-links", ibc.clients.map(c => this.linkRow(c,
      channels[c.chain_id] || {escrow: {}, in_flight: {}, in_flight_packets: 0},
      ibc.vouchers.filter(v => v.origin === c.chain_id && v.supply))), "communes-links-empty");
    fillTable("communes-transfers", this.rows(transfers).map(([dir, t]) => this.transferRow(dir, t)),
      "communes-empty");
  },
};
window.Communes = Communes;
