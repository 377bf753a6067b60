// Small hand-written SVG charts: no library, no CDN. Each returns an <svg> that
// scales to its container (viewBox), with <title> tooltips and data-* attributes
// that say what is drawn.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

// Mirrored bars: production above the axis, consumption below, one slot per interval.
// slots: [{k, start, export_wh, import_wh, settled}], onPick(slot) when a slot is chosen.
// width: the container's width in CSS pixels, so text is drawn at its real size.
function energyChart(slots, selectedK, onPick, fmt, width) {
  const W = Math.max(300, Math.round(width || 720)), H = W < 500 ? 220 : 260, left = W < 500 ? 8 : 70, right = 8, top = 12, bottom = 26;
  const mid = top + (H - top - bottom) / 2, half = (H - top - bottom) / 2;
  const peak = niceMax(Math.max(1, ...slots.map(s => Math.max(s.export_wh, s.import_wh))));
  const slotW = (W - left - right) / Math.max(1, slots.length);
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "energy",
    "data-slots": slots.length,
    "data-export-wh": slots.reduce((a, s) => a + s.export_wh, 0),
    "data-import-wh": slots.reduce((a, s) => a + s.import_wh, 0)});
  for (const frac of [1, 0.5]) {
    for (const sign of [-1, 1]) {
      const y = mid - sign * frac * half;
      root.append(svg("line", {x1: left, x2: W - right, y1: y, y2: y, class: "grid"}));
    }
  }
  root.append(svg("text", {x: W < 500 ? left + 2 : 2, y: top + 10, class: "tick"}, "↑ " + fmt.kwh(peak)));
  root.append(svg("text", {x: W < 500 ? left + 2 : 2, y: H - bottom - 2, class: "tick"}, "↓ " + fmt.kwh(peak)));
  root.append(svg("line", {x1: left, x2: W - right, y1: mid, y2: mid, class: "axis"}));
  slots.forEach((s, i) => {
    const x = left + i * slotW;
    const g = svg("g", {class: "slot" + (s.k === selectedK ? " selected" : "") + (s.suppressed ? " suppressed" : ""),
      "data-k": s.k,
      "data-export-wh": s.export_wh, "data-import-wh": s.import_wh, tabindex: 0});
    g.append(svg("rect", {x, y: top, width: slotW, height: H - top - bottom, class: "hit"}));
    const pe = half * s.export_wh / peak, pi = half * s.import_wh / peak;
    g.append(svg("rect", {x: x + 1, y: mid - pe, width: Math.max(1, slotW - 2), height: pe, class: "prod"}));
    g.append(svg("rect", {x: x + 1, y: mid, width: Math.max(1, slotW - 2), height: pi, class: "cons"}));
    g.append(svg("title", {}, `${fmt.time(s.start)} — ↑ ${fmt.kwh(s.export_wh)} · ↓ ${fmt.kwh(s.import_wh)}`));
    g.addEventListener("click", () => onPick(s));
    g.addEventListener("keydown", e => { if (e.key === "Enter" || e.key === " ") onPick(s); });
    root.append(g);
    if (i % (W < 500 ? 12 : 8) === 0) {
      root.append(svg("text", {x: x + slotW / 2, y: H - 8, class: "tick", "text-anchor": "middle"}, fmt.hour(s.start)));
    }
  });
  return root;
}

// Horizontal bars per category: the live standing allocation (bar) and, as a thin
// marker, the allocation applied at the last epoch. rows: [{name, label, bp, applied}].
// On a narrow container each label sits above its bar instead of beside it.
function allocationChart(rows, fmt, width) {
  const W = Math.max(240, Math.round(width || 480)), narrow = W < 420, right = 56;
  const rowH = narrow ? 38 : 30, labelW = narrow ? 0 : 150, barTop = narrow ? 16 : 5;
  const H = rows.length * rowH + 8;
  const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, class: "allocation",
    "data-bps": rows.map(r => r.bp).join(",")});
  const barW = W - labelW - right, barH = rowH - (narrow ? 20 : 10);
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const g = svg("g", {class: "bar", "data-category": r.name, "data-bp": r.bp});
    g.append(narrow ? svg("text", {x: 0, y: y + 11, class: "label"}, r.label)
      : svg("text", {x: labelW - 6, y: y + rowH / 2 + 4, "text-anchor": "end", class: "label"}, r.label));
    g.append(svg("rect", {x: labelW, y: y + barTop, width: barW, height: barH, class: "track"}));
    g.append(svg("rect", {x: labelW, y: y + barTop, width: barW * r.bp / 10000, height: barH, class: "live"}));
    if (r.applied !== null && r.applied !== undefined) {
      const ax = labelW + barW * r.applied / 10000;
      g.append(svg("line", {x1: ax, x2: ax, y1: y + barTop - 3, y2: y + barTop + barH + 3, class: "applied"}));
    }
    g.append(svg("text", {x: W - right + 6, y: y + barTop + barH / 2 + 4, class: "value"}, fmt.pct(r.bp)));
    g.append(svg("title", {}, `${r.label}: ${fmt.pct(r.bp)}`));
    root.append(g);
  });
  return root;
}

window.Charts = {energyChart, allocationChart};
