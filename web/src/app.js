// The virga dashboard page: polls the JSON API (docs/dashboard.md) every
// 1.5 s and draws with uPlot (bundled before this file by web/embed.cmake).
// Every text from the API goes through textContent, never innerHTML.
(function () {
  "use strict";

  const POLL_MS = 1500;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const DEFAULT_PARAMS = ["optimizer", "learning_rate", "minibatch", "workers", "epochs"];
  const LIVE = new Set(["running", "starting", "killing"]);

  const $ = (id) => document.getElementById(id);
  const state = { jobs: [], colors: new Map(), charts: {}, phase: { job: null, rows: [] } };
  window.virgaDashboard = state;  // read (never written) by tests/dashboard_browser/test.mjs

  // ---- formatting ------------------------------------------------------------
  function num(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return Number(x).toFixed(digits);
  }
  function rate(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    if (x >= 1e6) return (x / 1e6).toFixed(2) + "M";
    if (x >= 1e3) return (x / 1e3).toFixed(1) + "k";
    return x.toFixed(x < 10 ? 1 : 0);
  }
  function secs(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    if (x < 60) return x.toFixed(1) + " s";
    if (x < 3600) return Math.floor(x / 60) + " m " + Math.round(x % 60) + " s";
    return Math.floor(x / 3600) + " h " + Math.round((x % 3600) / 60) + " m";
  }
  function usd(x) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return x < 0.01 ? x.toFixed(6) : x.toFixed(4);
  }
  function bytes(x) {
    if (!isFinite(x)) return "–";
    const u = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (x >= 1024 && i < u.length - 1) { x /= 1024; ++i; }
    return x.toFixed(i ? 1 : 0) + " " + u[i];
  }
  function colorOf(id) {
    if (!state.colors.has(id)) state.colors.set(id, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(id);
  }
  function shortId(id) { return id.replace(/^job-\d{8}-/, ""); }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  // ---- API -------------------------------------------------------------------
  async function api(path, method) {
    const res = await fetch(path, { method: method || "GET", credentials: "same-origin",
                                    headers: { "Accept": "application/json" } });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) {
      const msg = body && body.error ? body.error : res.status + " " + res.statusText;
      throw new Error(msg);
    }
    return body;
  }
  function showError(msg) {
    const e = $("error");
    e.hidden = !msg;
    e.textContent = msg || "";
  }

  async function kill(id) {
    if (!window.confirm("Kill experiment " + id + "?")) return;
    try {
      await api("/api/jobs/" + encodeURIComponent(id) + "/kill", "POST");
      refresh();
    } catch (e) { showError("kill " + id + ": " + e.message); }
  }
  async function killAll() {
    if (!window.confirm("Kill every running experiment?")) return;
    try {
      await api("/api/kill-all", "POST");
      refresh();
    } catch (e) { showError("kill all: " + e.message); }
  }

  // ---- charts ----------------------------------------------------------------
  function chartSize(div) {
    return { width: Math.max(300, div.clientWidth - 8), height: 280 };
  }
  // Creates, recreates (when the series change) or updates the chart in `div`.
  // Tick labels that stay distinct for tiny dollar amounts.
  function ticks(u, vals) { return vals.map((v) => (v === 0 ? "0" : String(+v.toPrecision(3)))); }
  function draw(key, div, xLabel, yLabel, series, data) {
    const sig = series.map((s) => s.label + s.stroke).join("|");
    let c = state.charts[key];
    if (c && c.sig === sig) {
      c.plot.setData(data);
      return;
    }
    if (c) c.plot.destroy();
    div.textContent = "";
    const opts = Object.assign(chartSize(div), {
      scales: { x: { time: false } },
      axes: [{ label: xLabel, values: ticks }, { label: yLabel, size: 60, values: ticks }],
      series: [{ label: xLabel }].concat(series.map((s) => ({
        label: s.label, stroke: s.stroke, width: 2, spanGaps: true,
        points: { show: true, size: 4 },
      }))),
    });
    state.charts[key] = { sig, plot: new uPlot(opts, data, div) };
  }
  // One (x, loss) table per job, aligned on the union of their x values.
  function joined(jobs, xKey) {
    const tables = [];
    for (const j of jobs) {
      const h = j.history;
      const xs = [], ys = [];
      for (let i = 0; i < h.t.length; ++i) {
        if (h[xKey][i] === null || h.loss[i] === null) continue;
        if (xs.length && h[xKey][i] <= xs[xs.length - 1]) continue;  // x must increase
        xs.push(h[xKey][i]);
        ys.push(h.loss[i]);
      }
      tables.push([xs, ys]);
    }
    return tables.length ? uPlot.join(tables) : [[]];
  }
  function drawOverviewCharts(jobs) {
    const withHistory = jobs.filter((j) => j.history && j.history.t.length > 0);
    const series = withHistory.map((j) => ({ label: shortId(j.job_id), stroke: colorOf(j.job_id) }));
    const y = metricLabel(withHistory);
    draw("time", $("chart-time"), "seconds", y, series, joined(withHistory, "t"));
    draw("cost", $("chart-cost"), "USD", y, series, joined(withHistory, "cost"));
  }
  // "test logloss", "test rmse": the jobs' primary metric ("test metric" if they differ).
  function metricLabel(jobs) {
    const names = new Set(jobs.map((j) => j.metric || "logloss"));
    return names.size === 1 ? "test " + [...names][0] : "test metric";
  }

  // ---- overview --------------------------------------------------------------
  function filtered(jobs) {
    const mode = $("filter").value;
    const n = Math.max(1, parseInt($("filter-n").value, 10) || 1);
    if (mode === "all") return jobs;
    const scored = jobs.filter((j) => j.best_metric !== null);
    scored.sort((a, b) => mode === "best" ? a.best_metric - b.best_metric
                                          : b.best_metric - a.best_metric);
    return scored.slice(0, n);
  }
  function paramKeys(jobs) {
    const values = new Map();
    for (const j of jobs) {
      for (const [k, v] of Object.entries(j.params || {})) {
        if (!values.has(k)) values.set(k, new Set());
        values.get(k).add(JSON.stringify(v));
      }
    }
    const varying = [...values.keys()].filter((k) => values.get(k).size > 1 ||
      jobs.some((j) => !(k in (j.params || {}))));
    return varying.length ? varying : DEFAULT_PARAMS.filter((k) => values.has(k));
  }
  function fmtParam(v) { return typeof v === "number" ? String(+v.toPrecision(6)) : String(v); }

  function renderOverview() {
    const jobs = filtered(state.jobs);
    const keys = paramKeys(state.jobs);
    const tbody = $("jobs").querySelector("tbody");
    tbody.textContent = "";
    for (const j of jobs) {
      const params = keys.filter((k) => j.params && k in j.params)
        .map((k) => k + "=" + fmtParam(j.params[k])).join(" ");
      const live = LIVE.has(j.state);
      const killBtn = live && j.state !== "killing"
        ? el("button", { class: "danger kill", onclick: () => kill(j.job_id), text: "Kill" }) : "";
      tbody.append(el("tr", { "data-job": j.job_id, "data-state": j.state },
        el("td", {}, el("span", { class: "swatch", style: "background:" + colorOf(j.job_id) }),
           el("a", { href: "#/job/" + encodeURIComponent(j.job_id), text: j.job_id })),
        el("td", { class: "params", text: params }),
        el("td", {}, el("span", { class: "state state-" + j.state.split(":")[0], text: j.state }),
           j.checkpoint_error ? el("span", { class: "state state-failed", title: j.checkpoint_error,
                                             text: "checkpoint failed" }) : ""),
        el("td", { class: "workers", text: j.workers_alive + " / " + j.workers_launched + " / " + j.workers_failed }),
        el("td", { class: "num sps", text: rate(j.samples_per_second) }),
        el("td", { class: "num", text: rate(j.updates_per_second) }),
        el("td", { class: "num loss", text: num(j.test_metric, 4), title: j.metric || "logloss" }),
        el("td", { class: "num", text: num(j.best_metric, 4), title: j.metric || "logloss" }),
        el("td", { class: "num", text: secs(j.seconds) }),
        el("td", { class: "num", text: usd(j.cost_usd) }),
        el("td", {}, killBtn)));
    }
    const running = state.jobs.filter((j) => LIVE.has(j.state)).length;
    $("counts").textContent = state.jobs.length + " experiments, " + running + " running";
    $("kill-all").disabled = running === 0;
    drawOverviewCharts(jobs);
  }

  // ---- job page --------------------------------------------------------------
  function card(label, value) {
    return el("div", { class: "card" }, el("div", { class: "label", text: label }),
              el("div", { class: "value", text: value }));
  }
  function cell(text, cls) { return el("td", { class: cls === undefined ? "num" : cls, text: text }); }

  function renderJob(d) {
    const s = d.summary, st = d.status;
    $("job-title").textContent = s.job_id;
    const badge = $("job-state");
    badge.textContent = s.state;
    badge.className = "state state-" + s.state.split(":")[0];
    $("job-kill").hidden = !LIVE.has(s.state) || s.state === "killing";
    const cost = st.cost_usd || {};
    const cards = $("job-cards");
    cards.textContent = "";
    cards.append(
      card("Dataset", (s.dataset || "–") + " · " + (s.model || "")),
      card("Parameters", Object.entries(s.params || {}).map(([k, v]) => k + "=" + fmtParam(v)).join("  ")),
      card("Epochs", num(s.epoch, 0) + " / " + num(s.epochs, 0)),
      card("Samples", rate(s.samples) + "  (" + rate(s.samples_per_second) + "/s)"),
      card("Updates", rate(s.updates) + "  (" + rate(s.updates_per_second) + "/s)"),
      card("Test " + (s.metric || "logloss"),
           num(s.test_metric, 4) + "  (best " + num(s.best_metric, 4) + ")"),
      card("Test AUC", num(s.test_auc, 4)),
      card("Elapsed", secs(s.seconds)),
      card("Estimated cost $", usd(cost.total) + "  (functions " + usd(cost.functions) +
           ", server " + usd(cost.server) + ")"),
      card("Workers", s.workers_alive + " alive, " + s.workers_launched + " launched, " +
           s.workers_failed + " failed, " + (st.workers_timed_out || 0) + " lifetime ends, " +
           (st.workers_killed || 0) + " killed, " + (st.workers_hung || 0) + " hung"));
    if (s.checkpoint_error || s.checkpoints_failed > 0) {
      cards.append(card("Checkpoints", (s.checkpoints_failed || 0) + " failed" +
                        (s.checkpoint_error ? ": " + s.checkpoint_error : "")));
    }

    const h = s.history;
    const y = "test " + (s.metric || "logloss");
    draw("job", $("job-chart"), "seconds", y, [{ label: y, stroke: colorOf(s.job_id) }], [h.t, h.loss]);

    const live = st.live_workers || [];
    const tbody = $("workers").querySelector("tbody");
    tbody.textContent = "";
    const sum = { n: 0, data_wait_us: 0, pull_us: 0, compute_us: 0, push_us: 0 };
    for (const w of live) {
      const it = w.iteration || {};
      tbody.append(el("tr", { "data-worker": String(w.id) },
        cell(String(w.id), ""), el("td", {}, el("span", { class: "state state-" + w.state, text: w.state })),
        cell(String(w.pid || "–")), cell(secs(w.wall_seconds)),
        cell(w.lifetime_left_s === null ? "none" : secs(w.lifetime_left_s)),
        cell(rate(w.samples)), cell(rate(it.iterations)),
        cell(num(it.data_wait_us, 1)), cell(num(it.pull_us, 1)), cell(num(it.compute_us, 1)),
        cell(num(it.push_us, 1)), cell(num(it.p99_us, 0))));
      if (it.iterations > 0) {
        sum.n += it.iterations;
        for (const k of ["data_wait_us", "pull_us", "compute_us", "push_us"]) sum[k] += it[k] * it.iterations;
      }
    }
    if (!live.length) tbody.append(el("tr", {}, el("td", { colspan: "12", class: "muted", text: "no live workers" })));
    drawPhases(s, sum);

    const ended = $("ended").querySelector("tbody");
    ended.textContent = "";
    for (const w of (st.ended_workers || []).slice().reverse()) {
      ended.append(el("tr", {}, cell(String(w.id), ""), cell(w.state, ""), cell(w.reason || "", ""),
                      cell(secs(w.wall_seconds)), cell(rate(w.samples))));
    }
    renderServers(st, d.server_rates || {});
  }

  // The phase chart grows while the job page is open: one point per poll.
  function drawPhases(s, sum) {
    const p = state.phase;
    if (p.job !== s.job_id) { p.job = s.job_id; p.rows = []; }
    if (sum.n > 0 && (!p.rows.length || s.seconds > p.rows[p.rows.length - 1][0])) {
      p.rows.push([s.seconds, sum.data_wait_us / sum.n, sum.pull_us / sum.n,
                   sum.compute_us / sum.n, sum.push_us / sum.n]);
      if (p.rows.length > 600) p.rows.shift();
    }
    const cols = [0, 1, 2, 3, 4].map((c) => p.rows.map((r) => r[c]));
    draw("phase", $("job-phase-chart"), "seconds", "µs per iteration",
         [{ label: "data wait", stroke: "#8c564b" }, { label: "pull", stroke: "#1f77b4" },
          { label: "compute", stroke: "#2ca02c" }, { label: "push", stroke: "#ff7f0e" }], cols);
  }

  function renderServers(st, rates) {
    const div = $("servers");
    div.textContent = "";
    const servers = st.servers || [];
    if (!servers.length) div.append(el("p", { class: "muted", text: "no server stats reported (yet)" }));
    for (const srv of servers) {
      const stats = srv.stats || {};
      const rps = rates[srv.address];
      div.append(el("h3", { text: srv.address + "  ·  " + (rps === null || rps === undefined ? "–" : rate(rps)) +
        " requests/s  ·  " + rate(stats.requests_total) + " requests  ·  " + (stats.errors || 0) +
        " errors  ·  " + (stats.kv_keys || 0) + " KV keys" }));
      const t = el("table", { class: "tables" }, el("thead", {}, el("tr", {},
        ...["Table", "Kind", "Width", "Optimizer", "Rows", "Bytes", "Version", "Pulls", "Pushes",
            "Keys pulled", "Keys pushed"].map((h) => el("th", { text: h })))));
      const body = el("tbody");
      for (const tb of stats.tables || []) {
        body.append(el("tr", { class: tb.name === st.table ? "mine" : "" },
          cell(tb.name, ""), cell(tb.kind, ""), cell(String(tb.width)), cell(tb.optimizer, ""),
          cell(rate(tb.rows)), cell(bytes(tb.bytes)), cell(rate(tb.version)), cell(rate(tb.pulls)),
          cell(rate(tb.pushes)), cell(rate(tb.keys_pulled)), cell(rate(tb.keys_pushed))));
      }
      t.append(body);
      div.append(t);
    }
  }

  // ---- routing and polling ---------------------------------------------------
  function route() {
    const m = location.hash.match(/^#\/job\/(.+)$/);
    return m ? decodeURIComponent(m[1]) : null;
  }
  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const job = route();
    $("overview").hidden = !!job;
    $("job").hidden = !job;
    try {
      if (job) {
        renderJob(await api("/api/jobs/" + encodeURIComponent(job)));
      } else {
        const d = await api("/api/jobs?history=1");
        $("registry").textContent = d.registry;
        state.jobs = d.jobs;
        renderOverview();
      }
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      showError("");
    } catch (e) {
      showError(e.message);
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  $("kill-all").addEventListener("click", killAll);
  $("job-kill").addEventListener("click", () => { const j = route(); if (j) kill(j); });
  $("filter").addEventListener("change", renderOverview);
  $("filter-n").addEventListener("input", renderOverview);
  window.addEventListener("hashchange", () => { state.charts = destroyAll(); refresh(); });
  window.addEventListener("resize", () => {
    for (const [k, c] of Object.entries(state.charts)) {
      const div = { time: $("chart-time"), cost: $("chart-cost"), job: $("job-chart"),
                    phase: $("job-phase-chart") }[k];
      if (div && !div.closest("[hidden]")) c.plot.setSize(chartSize(div));
    }
  });
  function destroyAll() {
    for (const c of Object.values(state.charts)) c.plot.destroy();
    for (const id of ["chart-time", "chart-cost", "job-chart", "job-phase-chart"]) $(id).textContent = "";
    return {};
  }
  refresh();
})();
