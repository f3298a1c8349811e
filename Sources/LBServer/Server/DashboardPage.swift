/// `GET /` on the admin listener: one self-contained page (inline CSS and JS; no external assets, fonts or CDN,
/// so it works on an air-gapped host and leaks nothing). It polls `/api/stats` and `/api/servers` once a second
/// and draws the keyspace as a ring of arcs, one per server, sized by its share of the keyspace. Drain and enable
/// call `PATCH /manage/servers/{id}`; a bearer token typed into the page is kept in `localStorage`.
///
/// The page reads only the admin API, so it shows exactly what an operator would get with curl.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lb dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#182029; --line:#27313c; --text:#d8dee6; --dim:#8a96a3;
          --up:#3fb27f; --down:#e5534b; --drain:#d6a13a; --accent:#5aa9e6; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; align-items:center; gap:16px; padding:14px 24px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .meta { color:var(--dim); font-size:13px; }
  header .spacer { flex:1; }
  header input { background:var(--panel); border:1px solid var(--line); color:var(--text); padding:5px 8px;
                 border-radius:4px; width:220px; }
  #status { font-size:12px; color:var(--dim); }
  #status.err { color:var(--down); }
  main { display:grid; grid-template-columns: 320px minmax(0, 1fr); gap:20px; padding:20px 24px; }
  .panel { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:16px; }
  .panel h2 { font-size:13px; text-transform:uppercase; letter-spacing:1px; color:var(--dim); margin:0 0 12px; }
  .cards { display:grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap:12px; grid-column: 1 / -1; }
  .card .v { font-size:20px; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; font-weight:600; font-variant-numeric: tabular-nums; }
  .card .l { font-size:12px; color:var(--dim); }
  #ring { width:100%; height:auto; display:block; }
  .legend { list-style:none; padding:0; margin:12px 0 0; }
  .legend li { display:flex; gap:8px; align-items:center; padding:2px 0; font-variant-numeric: tabular-nums; }
  .legend .sw { width:12px; height:12px; border-radius:3px; display:inline-block; }
  .legend .pct { margin-left:auto; color:var(--dim); }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align:right; padding:7px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align:left; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .badge.up { background:rgba(63,178,127,.18); color:var(--up); }
  .badge.down { background:rgba(229,83,75,.18); color:var(--down); }
  .badge.draining { background:rgba(214,161,58,.18); color:var(--drain); }
  button { background:transparent; border:1px solid var(--line); color:var(--text); border-radius:4px;
           padding:3px 10px; cursor:pointer; font-size:12px; }
  button:hover { border-color:var(--accent); color:var(--accent); }
  .bar { display:inline-block; height:6px; background:var(--accent); border-radius:3px; vertical-align:middle; }
  .classes span { margin-left:10px; }
  .c2 { color:var(--up); } .c4 { color:var(--drain); } .c5 { color:var(--down); }
  .small { color:var(--dim); font-size:12px; }
  #errors td:first-child { text-align:left; }
</style>
</head>
<body>
<header>
  <h1>lb</h1>
  <span class="meta" id="meta">connecting…</span>
  <span class="spacer"></span>
  <span id="status"></span>
  <input id="token" type="password" placeholder="admin bearer token (if set)" autocomplete="off">
</header>
<main>
  <section class="cards">
    <div class="panel card"><div class="v" id="rps">–</div><div class="l">requests/s (10 s)</div></div>
    <div class="panel card"><div class="v" id="total">–</div><div class="l">requests total</div></div>
    <div class="panel card"><div class="v" id="inflight">–</div><div class="l">in flight</div></div>
    <div class="panel card"><div class="v" id="conns">–</div><div class="l">client connections open</div></div>
    <div class="panel card"><div class="v" id="p99">–</div><div class="l">request latency p50 / p99</div></div>
    <div class="panel card"><div class="v" id="errs">–</div><div class="l">proxy errors total</div></div>
  </section>
  <section class="panel">
    <h2>Keyspace</h2>
    <svg id="ring" viewBox="0 0 240 240" role="img" aria-label="keyspace share per server"></svg>
    <ul class="legend" id="legend"></ul>
  </section>
  <section class="panel">
    <h2>Servers</h2>
    <table>
      <thead><tr><th>server</th><th>state</th><th>weight</th><th>keyspace</th><th>req/s</th><th>5xx/s</th>
        <th>requests</th><th>conns</th><th>p50</th><th>p99</th><th></th></tr></thead>
      <tbody id="servers"></tbody>
    </table>
    <p class="classes small" id="classes"></p>
    <p class="small" id="proxyerrors"></p>
  </section>
</main>
<script>
"use strict";
const COLORS = ["#5aa9e6", "#9b7be0", "#e07bb5", "#3fb2a8", "#e0a05a", "#7bc96f", "#c9c26f", "#6f8ac9"];
const STATE_COLOR = { up: null, down: "#e5534b", draining: "#d6a13a" };
const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = localStorage.getItem("lb-admin-token") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("lb-admin-token", tokenInput.value.trim()));

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function ms(seconds) {
  if (!seconds) return "–";
  const m = seconds * 1000;
  return m < 10 ? m.toFixed(2) + " ms" : m < 1000 ? m.toFixed(0) + " ms" : seconds.toFixed(2) + " s";
}
function num(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n); }
function rate(r) { return r >= 100 ? r.toFixed(0) : r.toFixed(1); }

// One arc per server, clockwise from 12 o'clock, sized by keyspace share; a down or draining server keeps its arc
// (the ring still holds its points) but is drawn in its state's colour so the keys that walk on are visible.
function drawRing(servers) {
  const cx = 120, cy = 120, r = 92, width = 30;
  let angle = -Math.PI / 2, parts = [];
  const total = servers.reduce((a, s) => a + s.keyspace_share, 0) || 1;
  servers.forEach((s, i) => {
    const sweep = (s.keyspace_share / total) * 2 * Math.PI;
    const color = STATE_COLOR[s.state] || COLORS[i % COLORS.length];
    if (sweep >= 2 * Math.PI - 1e-6) {
      parts.push(`<circle cx="${cx}" cy="${cy}" r="${r}" fill="none" stroke="${color}" stroke-width="${width}"><title>${esc(s.id)}</title></circle>`);
    } else if (sweep > 0) {
      const gap = Math.min(0.012, sweep / 4);
      const a0 = angle + gap, a1 = angle + sweep - gap;
      const x0 = cx + r * Math.cos(a0), y0 = cy + r * Math.sin(a0), x1 = cx + r * Math.cos(a1), y1 = cy + r * Math.sin(a1);
      const large = a1 - a0 > Math.PI ? 1 : 0;
      parts.push(`<path d="M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x1.toFixed(2)} ${y1.toFixed(2)}" fill="none" stroke="${color}" stroke-width="${width}" data-server="${esc(s.id)}"><title>${esc(s.id)} ${(s.keyspace_share * 100).toFixed(1)}%</title></path>`);
    }
    angle += sweep;
  });
  const up = servers.filter((s) => s.state === "up").length;  // up and not draining
  parts.push(`<text x="${cx}" y="${cy - 4}" text-anchor="middle" fill="#d8dee6" font-size="30" font-weight="600">${up}/${servers.length}</text>`);
  parts.push(`<text x="${cx}" y="${cy + 18}" text-anchor="middle" fill="#8a96a3" font-size="12">serving</text>`);
  $("ring").innerHTML = parts.join("");
  $("legend").innerHTML = servers.map((s, i) => {
    const color = STATE_COLOR[s.state] || COLORS[i % COLORS.length];
    return `<li><span class="sw" style="background:${color}"></span>${esc(s.id)}<span class="pct">${(s.keyspace_share * 100).toFixed(1)}%</span></li>`;
  }).join("");
}

function drawTable(servers, addresses) {
  const maxShare = Math.max(...servers.map((s) => s.keyspace_share), 0.0001);
  $("servers").innerHTML = servers.map((s) => {
    const lat = (s.latency && s.latency.response) || {};
    const action = s.state === "draining"
      ? `<button data-id="${esc(s.id)}" data-state="up">enable</button>`
      : `<button data-id="${esc(s.id)}" data-state="draining">drain</button>`;
    return `<tr data-server="${esc(s.id)}">
      <td><b>${esc(s.id)}</b>${addresses[s.id] && addresses[s.id] !== s.id ? `<div class="small">${esc(addresses[s.id])}</div>` : ""}</td>
      <td><span class="badge ${esc(s.state)}">${esc(s.state)}</span></td>
      <td>${s.weight}</td>
      <td><span class="bar" style="width:${Math.round(60 * s.keyspace_share / maxShare)}px"></span> ${(s.keyspace_share * 100).toFixed(1)}%</td>
      <td>${rate(s.requests_per_second || 0)}</td>
      <td class="${s.errors_per_second > 0 ? "c5" : ""}">${rate(s.errors_per_second || 0)}</td>
      <td>${num(s.requests)}</td>
      <td>${s.active_connections}<span class="small"> / ${s.idle_connections} idle</span></td>
      <td>${ms(lat.p50)}</td><td>${ms(lat.p99)}</td>
      <td>${action}</td></tr>`;
  }).join("");
}

async function setState(id, state) {
  const headers = { "Content-Type": "application/json" };
  const token = tokenInput.value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  try {
    const res = await fetch("/manage/servers/" + encodeURIComponent(id), {
      method: "PATCH", headers, body: JSON.stringify({ state }) });
    const body = await res.json().catch(() => ({}));
    showStatus(res.ok ? `${id} → ${state} (moved ${(body.moved_fraction * 100).toFixed(1)}% of keys)`
                      : `${id}: ${res.status} ${body.error || ""}`, !res.ok);
  } catch (e) { showStatus(String(e), true); }
  poll();
}
$("servers").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-id]");
  if (b) setState(b.dataset.id, b.dataset.state);
});

let statusUntil = 0;
function showStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "err" : "";
  statusUntil = Date.now() + 5000;
}

async function poll() {
  try {
    const [stats, list] = await Promise.all([
      fetch("/api/stats", { cache: "no-store" }).then((r) => r.json()),
      fetch("/api/servers", { cache: "no-store" }).then((r) => r.json()),
    ]);
    const addresses = {};
    for (const s of list.servers || []) addresses[s.id] = s.host + ":" + s.port;
    $("meta").textContent = `v${stats.version} · generation ${stats.generation} · ${stats.workers} worker(s) · up ${Math.floor(stats.uptime_seconds)} s`;
    $("rps").textContent = rate(stats.requests.per_second);
    $("total").textContent = num(stats.requests.total);
    $("inflight").textContent = stats.requests.in_flight;
    $("conns").textContent = stats.connections.open;
    const req = stats.latency.request;
    $("p99").textContent = `${ms(req.p50)} / ${ms(req.p99)}`.replace(/ ms \//, " /");
    const perr = stats.proxy_errors || {};
    const perrTotal = Object.values(perr).reduce((a, b) => a + b, 0);
    $("errs").textContent = num(perrTotal);
    const r = stats.responses;
    $("classes").innerHTML = `responses: <span>1xx ${r["1xx"]}</span><span class="c2">2xx ${r["2xx"]}</span>` +
      `<span>3xx ${r["3xx"]}</span><span class="c4">4xx ${r["4xx"]}</span><span class="c5">5xx ${r["5xx"]}</span>`;
    const nonzero = Object.entries(perr).filter(([, n]) => n > 0).map(([k, n]) => `${k}: ${n}`);
    $("proxyerrors").textContent = nonzero.length ? "generated by the balancer: " + nonzero.join(", ") : "";
    drawRing(stats.servers);
    drawTable(stats.servers, addresses);
    if (Date.now() > statusUntil) showStatus("live", false);
  } catch (e) {
    showStatus("admin API unreachable: " + e, true);
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
"""#
}
