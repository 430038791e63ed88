// The qcgate console: signs every request in the browser (QingCloud
// signature v1, HMAC-SHA256 by WebCrypto) and calls the same /iaas/ API as
// any SDK. The key lives in sessionStorage only: no cookie, no server side.
"use strict";

const $ = (id) => document.getElementById(id);
const session = {
  get id() { return sessionStorage.getItem("qcgate.id") || ""; },
  get secret() { return sessionStorage.getItem("qcgate.secret") || ""; },
  get zone() { return sessionStorage.getItem("qcgate.zone") || ""; },
  set(id, secret, zone) {
    sessionStorage.setItem("qcgate.id", id);
    sessionStorage.setItem("qcgate.secret", secret);
    sessionStorage.setItem("qcgate.zone", zone);
  },
  clear() { sessionStorage.clear(); },
};

// RFC 3986: everything but A-Z a-z 0-9 - _ . ~ is encoded, hex upper-case.
function rfc3986(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

async function hmacBase64(secret, text) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
  let bin = "";
  sig.forEach((b) => { bin += String.fromCharCode(b); });
  return btoa(bin);
}

function reqId() {
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The signed query for exactly these parameters: every one, sorted by
// name, RFC 3986-encoded; the signature of "GET\n/iaas/\n" + that.
async function signedQuery(p, secret) {
  const query = Object.keys(p).sort().map((k) => `${rfc3986(k)}=${rfc3986(p[k])}`).join("&");
  const signature = await hmacBase64(secret, `GET\n/iaas/\n${query}`);
  return `${query}&signature=${rfc3986(signature)}`;
}

// One signed call; lists as {"jobs": ["j-…"]} become jobs.1=…
async function call(action, params = {}) {
  const p = {
    action,
    access_key_id: session.id,
    signature_method: "HmacSHA256",
    signature_version: "1",
    version: "1",
    time_stamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    req_id: reqId(),
  };
  if (session.zone) p.zone = session.zone;
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x, i) => { p[`${k}.${i + 1}`] = String(x); });
    else if (v !== undefined && v !== "") p[k] = String(v);
  }
  const r = await fetch(`/iaas/?${await signedQuery(p, session.secret)}`);
  const body = await r.json();
  if (body.ret_code !== 0) throw new Error(body.message || `ret_code ${body.ret_code}`);
  return body;
}

function showError(e) {
  const el = $("error");
  if (!e) { el.hidden = true; return; }
  el.textContent = e.message || String(e);
  el.hidden = false;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function pre(title, text) {
  const d = document.createElement("div");
  d.className = "panel";
  const h = document.createElement("h3");
  h.textContent = title;
  const p = document.createElement("pre");
  p.textContent = text;
  d.append(h, p);
  return d;
}

// --- jobs -----------------------------------------------------------------

let selectedJob = null;

async function loadJobs() {
  const params = { limit: 50, verbose: 1 };
  if ($("job-status").value) params.status = [$("job-status").value];
  if ($("job-action").value.trim()) params.job_action = $("job-action").value.trim();
  const r = await call("DescribeJobs", params);
  const body = $("jobs-table").querySelector("tbody");
  body.replaceChildren();
  for (const j of r.job_set) {
    const tr = document.createElement("tr");
    tr.dataset.job = j.job_id;
    cell(tr, j.job_id);
    cell(tr, j.job_action);
    cell(tr, j.status, `status-${j.status}`);
    cell(tr, j.resource_ids);
    cell(tr, j.create_time);
    tr.addEventListener("click", () => { selectedJob = j.job_id; showJob(j); });
    body.appendChild(tr);
    if (j.job_id === selectedJob) showJob(j);
  }
  $("jobs-empty").hidden = r.job_set.length > 0;
  $("jobs-updated").textContent = `updated ${new Date().toLocaleTimeString()} · ${r.total_count} job(s)`;
}

function showJob(j) {
  const d = $("job-detail");
  d.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = `${j.job_id} · ${j.status}`;
  d.appendChild(h);
  let directive = j.directive;
  try { directive = JSON.stringify(JSON.parse(j.directive), null, 2); } catch (_) { /* as it is */ }
  d.appendChild(pre("directive (passwords removed)", directive));
  if (j.error_message) d.appendChild(pre(`error ${j.error_codes}`, j.error_message));
  if (j.output) d.appendChild(pre("output", j.output));
  d.hidden = false;
}

// --- clusters -------------------------------------------------------------

function drawTree(node, prefix, last, top, lines, lag) {
  const sync = node.sync_status ? `, sync ${node.sync_status}` : "";
  const extra = lag[node.cluster_id] != null ? `, lag ${lag[node.cluster_id]} trx` : "";
  const label = `${node.cluster_id} (${node.role}${sync}${extra}, ${node.status}, ${node.executor === "servers" ? "on servers" : "simulated"})`;
  lines.push(top ? label : `${prefix}${last ? "└── " : "├── "}${label}`);
  const next = top ? "" : prefix + (last ? "    " : "│   ");
  node.standbys.forEach((c, i) => drawTree(c, next, i === node.standbys.length - 1, false, lines, lag));
}

async function loadClusters() {
  const r = await call("DescribeClusters", { limit: 100 });
  const list = $("clusters-list");
  list.replaceChildren();
  $("clusters-empty").hidden = r.cluster_set.length > 0;
  const drawn = new Set();
  for (const c of r.cluster_set) {
    const rel = await call("DescribeClusterStandbys", { cluster: c.cluster_id });
    const root = rel.topology.cluster_id;
    if (drawn.has(root)) continue;
    drawn.add(root);
    const lag = {};
    const walk = async (n) => {
      if (n.role === "STANDBY" && n.executor === "servers") {
        const s = await call("DescribeClusterStandbys", { cluster: n.cluster_id });
        if (s.replication) lag[n.cluster_id] = s.replication.lag_trx;
      }
      for (const k of n.standbys) await walk(k);
    };
    await walk(rel.topology);
    const lines = [];
    drawTree(rel.topology, "", true, true, lines, lag);
    const d = document.createElement("div");
    d.className = "tree";
    d.textContent = lines.join("\n");
    list.appendChild(d);
  }
}

// --- DR tasks -------------------------------------------------------------

let selectedTask = null;

function bar(share) {
  const b = document.createElement("span");
  b.className = "bar";
  const f = document.createElement("span");
  f.style.width = `${Math.round(Math.max(0, Math.min(1, share)) * 100)}%`;
  b.appendChild(f);
  return b;
}

async function loadTasks() {
  const r = await call("DescribeDRTasks", { limit: 100 });
  const body = $("tasks-table").querySelector("tbody");
  body.replaceChildren();
  $("tasks-empty").hidden = r.dr_task_set.length > 0;
  for (const t of r.dr_task_set) {
    const tr = document.createElement("tr");
    tr.dataset.task = t.dr_task_id;
    cell(tr, t.dr_task_id);
    cell(tr, t.name);
    cell(tr, `${t.standby_cluster} ← ${t.source_cluster || (t.source && t.source.host_port) || ""}`);
    cell(tr, t.status, `status-${t.status}`);
    tr.addEventListener("click", () => { selectedTask = t.dr_task_id; showTask(t.dr_task_id); });
    body.appendChild(tr);
  }
  if (selectedTask) await showTask(selectedTask);
}

async function showTask(id) {
  const [p, logs, compares] = await Promise.all([
    call("DescribeDRTaskProgress", { dr_tasks: [id] }),
    call("DescribeDRTaskLogs", { dr_task: id, limit: 100 }),
    call("DescribeDRTaskCompares", { dr_task: id }),
  ]);
  const d = $("task-detail");
  d.replaceChildren();
  const prog = p.progress_set[0] || {};
  const h = document.createElement("h2");
  h.textContent = `${id} · ${prog.status || ""}`;
  d.appendChild(h);
  const line = document.createElement("p");
  line.className = "progress";
  if (prog.init && prog.status === "initializing") {
    line.append("initial copy ", bar((prog.init.percent || 0) / 100), ` ${prog.init.percent || 0}% · ${prog.init.remaining_time_s || 0} s left`);
  } else if (prog.sync_status) {
    line.append(`sync ${prog.sync_status} `, bar(prog.sync_status === "NORMAL" ? 1 : 0.5),
      ` RPO ${prog.rpo ? prog.rpo.lag_trx : "?"} trx (${prog.rpo && prog.rpo.delay_ms != null ? Math.round(prog.rpo.delay_ms) : "?"} ms) · RTO ${prog.rto ? prog.rto.lag_trx : "?"} trx (${prog.rto && prog.rto.delay_ms != null ? (prog.rto.delay_capped ? "≥" : "") + Math.round(prog.rto.delay_ms) : "?"} ms)`);
    line.className = `progress sync-${prog.sync_status}`;
  } else {
    line.textContent = "not replicating";
  }
  d.appendChild(line);
  if (prog.last_error) d.appendChild(pre("replication error", prog.last_error));
  d.appendChild(pre("log", logs.log_set.slice(-40).map((l) => `${l.time} ${l.level.padEnd(7)} ${l.message}`).join("\n") || "(empty)"));
  const latest = compares.compare_set[0];
  if (latest) {
    const res = await call("DescribeDRTaskCompareResults", { dr_task: id, compare_id: latest.compare_id, limit: 20 });
    const rows = (res.table_set || []).map((t) => `${t.db_name}.${t.table_name}: rows ${t.source_row_num ?? "-"}/${t.target_row_num ?? "-"} ${t.line_result ?? ""} contents ${t.content_result ?? ""}`);
    const diffs = (res.diff_set || []).map((x) => `differs ${JSON.stringify(x.key_values)}: ${x.source_select_sql}`);
    d.appendChild(pre(`comparison ${latest.compare_id} · ${latest.status} at ${latest.at_gtid}`, [JSON.stringify(res.summary), ...rows, ...diffs].join("\n")));
  }
  d.hidden = false;
}

// --- the page -------------------------------------------------------------

let current = "jobs";
const loaders = { jobs: loadJobs, clusters: loadClusters, tasks: loadTasks };

async function refresh() {
  if (!session.id) return;
  try {
    await loaders[current]();
    showError(null);
  } catch (e) {
    showError(e);
  }
}

function signedIn(on) {
  $("signin").hidden = on;
  $("who").hidden = !on;
  $("tabs").hidden = !on;
  $("welcome").hidden = on;
  for (const t of Object.keys(loaders)) $(t).hidden = !on || t !== current;
  if (on) {
    $("who-key").textContent = session.id;
    $("who-zone").textContent = session.zone || "all zones";
  }
}

$("signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  session.set($("key-id").value.trim(), $("secret").value, $("zone").value.trim());
  try {
    await call("DescribeJobs", { limit: 1 });
  } catch (e) {
    session.clear();
    showError(e);
    return;
  }
  $("secret").value = "";
  showError(null);
  signedIn(true);
  refresh();
});

$("signout").addEventListener("click", () => { session.clear(); signedIn(false); });
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
  current = b.dataset.tab;
  document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("active", x === b));
  signedIn(true);
  refresh();
}));
$("job-status").addEventListener("change", refresh);
$("job-action").addEventListener("change", refresh);

signedIn(Boolean(session.id));
refresh();
setInterval(refresh, 2000);
