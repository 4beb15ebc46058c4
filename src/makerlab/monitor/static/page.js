// The makerlab monitoring page: renders the snapshots its websocket pushes.
// Everything from the server is written with textContent (never parsed as HTML).
"use strict";

const HISTORY = 1200;
const points = [];
let charts = {};
let chartKeys = "";
let horizons = [];

// -- the token: taken from ?token=..., kept for this tab only, removed from the address
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("makerlab-token", params.get("token"));
  history.replaceState(null, "", location.pathname);
}
const storedToken = () => sessionStorage.getItem("makerlab-token") || "";

// -- formatting
const num = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v)) ? "—"
  : Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const qty = (v) => num(v, 4);
const time = (ms) => new Date(ms).toISOString().slice(11, 23);
const side = (s) => (s > 0 ? "buy" : "sell");

function row(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else if (c && typeof c === "object") {
      td.textContent = c.text;
      if (c.cls) td.className = c.cls;
      if (c.testid) td.dataset.testid = c.testid;
    } else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function fill(id, rows) {
  document.querySelector(`#${id} tbody`).replaceChildren(...rows);
}

// -- sections
function renderMarkets(s) {
  fill("markets", s.markets.map((m) => {
    const key = `${m.exchange}/${m.ticker}`;
    return row([key, { text: qty(m.position), testid: "position" }, num(m.entry, 1),
      num(m.notional), num(m.mid, 2), num(m.realized_pnl, 4), num(m.unrealized_pnl, 4),
      { text: String(m.orders.length), testid: "order-count" }],
    { "data-market": key, "data-position": String(m.position) });
  }));
  fill("accounts", s.accounts.map((a) => row([a.exchange, num(a.pnl, 4), num(a.wallet),
    num(a.equity)], { "data-exchange": a.exchange })));
}

function renderOrders(s) {
  const orders = s.markets.flatMap((m) => m.orders);
  fill("orders", orders.map((o) => row([`${o.exchange}/${o.ticker}`,
    { text: side(o.side), cls: side(o.side) }, num(o.price, 1), qty(Math.abs(o.amount)),
    qty(o.filled), o.status, o.cloid || o.oid || ""],
  { "data-cloid": o.cloid || "", "data-oid": o.oid || "", "data-status": o.status })));
}

function ladder(m) {
  const book = new Map();
  for (const [p, q] of m.bids) book.set(p, { bid: q });
  for (const [p, q] of m.asks) book.set(p, { ...(book.get(p) || {}), ask: q });
  const mine = new Map();
  for (const o of m.orders) {
    if (o.price === null) continue;
    const at = mine.get(o.price) || { buy: 0, sell: 0 };
    at[side(o.side)] += Math.abs(o.amount);
    mine.set(o.price, at);
    if (!book.has(o.price)) book.set(o.price, {});
  }
  const prices = [...book.keys()].sort((a, b) => b - a);
  const box = document.createElement("div");
  box.className = "ladder";
  const h = document.createElement("h3");
  h.textContent = `${m.exchange}/${m.ticker}`;
  const table = document.createElement("table");
  table.dataset.market = `${m.exchange}/${m.ticker}`;
  const head = document.createElement("thead");
  head.appendChild(row(["our bids", "bid size", "price", "ask size", "our asks"]));
  const body = document.createElement("tbody");
  for (const p of prices) {
    const lv = book.get(p), o = mine.get(p) || { buy: 0, sell: 0 };
    const tr = row([{ text: o.buy ? qty(o.buy) : "", cls: "buy mine" },
      { text: lv.bid ? qty(lv.bid) : "", cls: "buy" }, num(p, 1),
      { text: lv.ask ? qty(lv.ask) : "", cls: "sell" },
      { text: o.sell ? qty(o.sell) : "", cls: "sell mine" }], { "data-price": String(p) });
    if (o.buy || o.sell) tr.className = "level-mine";
    body.appendChild(tr);
  }
  table.append(head, body);
  box.append(h, table);
  return box;
}

function renderLadders(s) {
  document.getElementById("ladders").replaceChildren(...s.markets.map(ladder));
}

function renderFills(s) {
  if (s.horizons_s.join() !== horizons.join()) {
    horizons = s.horizons_s;
    const tr = document.querySelector("#fills thead tr");
    tr.querySelectorAll(".markout").forEach((th) => th.remove());
    for (const h of horizons) {
      const th = document.createElement("th");
      th.className = "markout";
      th.textContent = `markout ${h}s bps`;
      tr.appendChild(th);
    }
  }
  fill("fills", s.fills.map((f) => row([time(f.time_ms), `${f.exchange}/${f.ticker}`,
    { text: side(f.side), cls: side(f.side) }, num(f.price, 1), qty(f.size), num(f.fee, 4),
    f.maker ? "yes" : "no", ...f.markouts_bps.map((v) => ({ text: num(v, 2),
      cls: v === null ? "" : (v >= 0 ? "buy" : "sell") }))],
  { "data-trade-id": f.trade_id })));
}

function renderFlow(s) {
  fill("flow", s.flow.map((f) => row([f.exchange, num(f.orders_per_s, 1),
    num(f.cancels_per_s, 1), f.acks, { text: String(f.rejects), testid: "rejects" },
    f.cancels, f.fills, f.last_reject], { "data-exchange": f.exchange })));
}

function renderRisk(s) {
  const r = s.risk;
  const state = document.getElementById("kill-state");
  state.dataset.tripped = String(r.kill_tripped);
  state.textContent = r.kill_tripped
    ? `kill switch TRIPPED (${r.kill_reason}: ${r.kill_detail})` : "kill switch armed";
  document.getElementById("no-limits").hidden = r.limits.length > 0;
  fill("limits", r.limits.map((l) => {
    const meter = document.createElement("meter");
    meter.min = 0; meter.max = 1; meter.high = 0.8; meter.value = Math.min(l.usage, 1);
    return row([l.name, l.market, num(l.used, 4), num(l.limit, 4), meter,
      `${num(100 * l.usage, 0)} %`]);
  }));
}

function renderFeeds(s) {
  fill("feeds", s.feeds.map((f) => row([`${f.exchange}/${f.symbol}`,
    { text: f.state, cls: `state-${f.state}` }, num(f.rate_per_s, 1), f.messages,
    f.latency_ms === null ? "n/a" : num(f.latency_ms, 1), num(f.since_last_ms, 0), f.gaps,
    f.resyncs, f.reconnects, f.errors, f.subscribers ?? "n/a"],
  { "data-feed": `${f.exchange}/${f.symbol}` })));
}

// -- charts (uPlot)
function makeChart(id, series, height = 200, extraAxes = []) {
  const el = document.getElementById(id);
  el.replaceChildren();
  const opts = { width: Math.max(el.clientWidth, 300), height, series: [{}, ...series],
    axes: [{}, { size: 70 }, ...extraAxes], legend: { live: false } };
  return new uPlot(opts, [[], ...series.map(() => [])], el);
}

const PALETTE = ["#1f5fbf", "#b3261e", "#1a7f4b", "#b26a00", "#6a3fb5", "#00838f"];

function buildCharts(keys, accounts) {
  const color = (i) => PALETTE[i % PALETTE.length];
  charts.pnl = makeChart("chart-pnl", [
    ...keys.map((k, i) => ({ label: `${k} PnL`, stroke: color(i) })),
    ...accounts.map((a, i) => ({ label: `${a} equity`, stroke: color(i + keys.length),
      dash: [4, 4], scale: "equity" }))], 200,
    accounts.length ? [{ scale: "equity", side: 1, size: 80, grid: { show: false } }] : []);
  charts.position = makeChart("chart-position", keys.map((k, i) => ({ label: k,
    stroke: color(i), paths: uPlot.paths.stepped({ align: 1 }) })));
  const k = keys[0];
  charts.quotes = k === undefined ? null : makeChart("chart-quotes", [
    { label: `${k} mid`, stroke: "#888" },
    { label: "best bid", stroke: "#7fbf9f" }, { label: "best ask", stroke: "#e39a95" },
    { label: "our bid", stroke: "#1a7f4b", width: 2 },
    { label: "our ask", stroke: "#b3261e", width: 2 }], 260);
}

function renderCharts() {
  if (!points.length || typeof uPlot === "undefined") return;
  const last = points[points.length - 1];
  const keys = Object.keys(last.m), accounts = Object.keys(last.a)
    .filter((a) => points.some((p) => p.a[a] && p.a[a][1] !== null));
  const signature = keys.join() + "|" + accounts.join();
  if (signature !== chartKeys) { chartKeys = signature; buildCharts(keys, accounts); }
  const x = points.map((p) => p.t / 1000);
  const col = (k, i) => points.map((p) => (p.m[k] ? p.m[k][i] : null));
  charts.pnl.setData([x, ...keys.map((k) => col(k, 0)),
    ...accounts.map((a) => points.map((p) => (p.a[a] ? p.a[a][1] : null)))]);
  charts.position.setData([x, ...keys.map((k) => col(k, 1))]);
  if (charts.quotes) charts.quotes.setData([x, ...[2, 3, 4, 5, 6].map((i) => col(keys[0], i))]);
}

// -- the stream
function renderMode(s) {
  if (document.body.dataset.mode === s.mode) return;
  document.body.dataset.mode = s.mode;
  document.querySelector("h1 span").textContent = s.mode;
  document.title = `makerlab · ${s.mode}`;
  if (s.mode === "paper venue") {  // the kill switch is the venue operator's halt
    document.getElementById("kill").textContent = "Halt the venue";
    document.getElementById("kill-question").textContent = "Halt the paper exchange: " +
      "cancel every open order of its traded accounts and refuse their new orders until " +
      "the paper exits?";
    document.getElementById("kill-confirm").textContent = "Cancel everything, halt";
  }
}

function render(s) {
  document.getElementById("clock").textContent = time(s.time_ms);
  document.body.dataset.seq = String(s.seq);
  renderMode(s);
  renderMarkets(s); renderOrders(s); renderLadders(s); renderFills(s); renderFlow(s);
  renderRisk(s); renderFeeds(s); renderCharts();
}

function addPoint(p) {
  points.push(p);
  if (points.length > HISTORY) points.splice(0, points.length - HISTORY);
}

function connect() {
  const conn = document.getElementById("conn");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { conn.dataset.state = "open"; conn.textContent = "live"; };
  ws.onclose = () => {
    conn.dataset.state = "closed"; conn.textContent = "disconnected — retrying";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (event) => {
    const text = typeof event.data === "string" ? event.data
      : new TextDecoder().decode(event.data);
    const msg = JSON.parse(text);
    if (msg.type === "hello") {
      points.length = 0;
      msg.history.forEach(addPoint);
      if (msg.snapshot) render(msg.snapshot);
    } else if (msg.type === "snapshot") {
      addPoint(msg.point);
      render(msg.snapshot);
    }
  };
}

// -- the kill switch
function setupKill() {
  const dialog = document.getElementById("kill-dialog");
  const input = document.getElementById("kill-token");
  const result = document.getElementById("kill-result");
  document.getElementById("kill").addEventListener("click", () => {
    input.value = storedToken();
    dialog.showModal();
  });
  document.getElementById("kill-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("kill-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    dialog.close();
    result.dataset.state = "pending";
    result.textContent = "kill switch: sending…";
    try {
      const response = await fetch("api/kill", { method: "POST",
        headers: { "Content-Type": "application/json", "X-Makerlab-Token": token },
        body: JSON.stringify({ confirm: true }) });
      const answer = await response.json();
      if (!response.ok || !answer.ok) {
        throw new Error(answer.error || answer.message || response.statusText);
      }
      sessionStorage.setItem("makerlab-token", token);
      result.dataset.state = "ok";
      result.textContent = `${answer.message} (${answer.reason})`;
    } catch (error) {
      result.dataset.state = "error";
      result.textContent = `kill switch refused: ${error.message}`;
    }
  });
}

setupKill();
connect();
