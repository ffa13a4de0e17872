// The dashboard: one Server-Sent Events stream, one whole state a second, rendered in place.
"use strict";
const $ = (id) => document.getElementById(id);
const STATES = ["live", "stale", "notlive"];
let layout = "";  // the pairs and venues the matrix rows were built for

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const pct = (v, d = 2) => (v === null || v === undefined ? "–" : v.toFixed(d) + "%");
const num = (v) => (v === null || v === undefined ? "–" : String(+v.toPrecision(8)));
function ago(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return s.toFixed(1) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

function buildMatrix(s) {
  const head = el("tr"), sub = el("tr");
  head.append(el("th", { rowspan: 2 }, "pair"), el("th", { rowspan: 2 }, "best net"));
  for (const v of s.exchanges) {
    head.append(el("th", { colspan: 3, class: "venue" }, v));
    sub.append(el("th", {}, "bid"), el("th", {}, "ask"), el("th", {}, "spread"));
  }
  const thead = $("matrix").tHead; thead.replaceChildren(head, sub);
  const body = $("matrix").tBodies[0]; body.replaceChildren();
  for (const pair of s.pairs) {
    const tr = el("tr", { "data-pair": pair });
    tr.append(el("td", {}, pair), el("td", { "data-field": "best", class: "net" }, "–"));
    for (const v of s.exchanges) {
      for (const f of ["bid", "ask", "spread"]) tr.append(el("td", { "data-venue": v, "data-field": f }, "–"));
    }
    body.append(tr);
  }
}

function renderMatrix(s) {
  const key = s.exchanges.join() + "|" + s.pairs.join();
  if (key !== layout) { buildMatrix(s); layout = key; }
  const rows = $("matrix").tBodies[0].rows, n = s.exchanges.length;
  s.pairs.forEach((pair, p) => {
    const tr = rows[p], cells = tr.cells, best = s.best[p];
    for (let v = 0; v < n; v++) {
      const q = s.matrix[p][v], base = 2 + v * 3;
      const state = q ? STATES[q[3]] : "notlive";
      const grey = state !== "live" ? "stale" : "";
      setText(cells[base], q && q[0] !== null ? q[0] : "–");
      setText(cells[base + 1], q && q[1] !== null ? q[1] : "–");
      setText(cells[base + 2], q ? pct(q[2], 4) : "–");
      cells[base].className = grey + (best && best[1] === v ? " best-bid" : "");
      cells[base + 1].className = grey + (best && best[0] === v ? " best-ask" : "");
      cells[base + 2].className = grey;
      for (let i = 0; i < 3; i++) cells[base + i].dataset.state = state;
    }
    const net = cells[1];
    const opp = best !== null && best[3] >= s.threshold_pct;
    setText(net, best ? `${pct(best[3])} ${s.exchanges[best[0]]}→${s.exchanges[best[1]]}` : "–");
    net.className = "net" + (opp ? " opp" : "");
    tr.className = opp ? "opp" : "";
  });
}

function renderVenues(s) {
  const box = $("venues"); box.replaceChildren();
  for (const v of s.venues) {
    const up = v.up >= v.expected && v.expected > 0;
    const card = el("div", { class: "card " + (up ? "up" : "down"), "data-venue": v.name });
    card.append(el("span", { class: "state" }, `${up ? "up" : "down"} ${v.up}/${v.expected}`), el("b", {}, v.name));
    card.append(el("div", {}, `${v.frames_per_s === null ? "–" : v.frames_per_s.toFixed(1)} frames/s`));
    card.append(el("div", { class: "muted" }, `quote age ${ago(v.quote_age_s)}, last message ${ago(v.last_message_age_s)} ago`));
    box.append(card);
  }
}

function renderLists(s) {
  const open = $("open"); open.replaceChildren();
  for (const o of s.open) {
    const tr = el("tr", { "data-key": `${o.symbol} ${o.buy} ${o.sell}` });
    tr.append(el("td", {}, o.symbol), el("td", {}, `${o.buy} ${num(o.buy_price)} → ${o.sell} ${num(o.sell_price)}`),
      el("td", { class: "net" }, pct(o.net_pct)), el("td", {}, pct(o.gross_pct)),
      el("td", {}, num(o.size)), el("td", {}, ago(o.age_s)));
    open.append(tr);
  }
  setText($("open-count"), s.open.length ? `(${s.open.length})` : "");
  $("open-empty").hidden = s.open.length > 0;
  setText($("threshold"), pct(s.threshold_pct));
  const closed = $("closed"); closed.replaceChildren();
  for (const c of s.closed) {
    closed.append(el("tr", {}, undefined));
    closed.lastChild.append(el("td", {}, c.symbol), el("td", {}, `${c.buy} → ${c.sell}`),
      el("td", {}, pct(c.peak_net_pct)), el("td", {}, ago(c.duration_s)),
      el("td", {}, new Date(c.closed_at).toLocaleTimeString()));
  }
}

function render(s) {
  renderVenues(s); renderLists(s); renderMatrix(s);
  setText($("updated"), `snapshot #${s.tick} at ${new Date(s.time).toLocaleTimeString()}`);
  document.body.dataset.tick = s.tick;
}

function connect() {
  const stream = new EventSource("dashboard/events");
  stream.onopen = () => { setText($("stream"), "live"); $("stream").className = "badge up"; };
  stream.onerror = () => { setText($("stream"), "reconnecting"); $("stream").className = "badge down"; };
  stream.onmessage = (e) => render(JSON.parse(e.data));
}
connect();
