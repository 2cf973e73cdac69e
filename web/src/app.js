// The virga dashboard page: polls the JSON API (docs/dashboard.md) every
// 1.5 s and draws with uPlot (bundled before this file by web/embed.cmake).
// Every text from the API goes through textContent, never innerHTML.
(function () {
  "use strict";

  const POLL_MS = 1500;
  const DEFAULT_PARAMS = ["optimizer", "learning_rate", "minibatch", "workers", "epochs"];
  const LIVE = new Set(["running", "starting", "killing"]);
  const ERRORS_HELP = "errors: requests this server answered with an error status since it started " +
    "(all jobs): e.g. a key or table that is not there (a worker reading a stop key before it is " +
    "set, a job's table dropped at its end while a late worker still pulls), a refused token, a " +
    "malformed frame. A few while jobs start and end are normal; a growing count while a job runs " +
    "means its workers are failing (see their end reasons below).";

  const $ = (id) => document.getElementById(id);
  const state = { jobs: [], charts: {}, phase: { job: null, rows: [] }, selected: new Set(),
                  yRanges: {} };
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
  // A job's colour is a function of its id (FNV-1a hash -> hue): the same on every page, in
  // every view and after a reload, whatever else is shown.
  function colorOf(id) {
    let h = 0x811c9dc5;
    for (let i = 0; i < id.length; ++i) { h ^= id.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return "hsl(" + (h % 360) + ", " + (55 + (h >>> 9) % 30) + "%, " + (35 + (h >>> 17) % 20) + "%)";
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
  // The y range that holds the bulk of the curves: from the lowest value to the 95th
  // percentile plus a margin, so a first evaluation far above the rest (logloss of an untrained
  // model, a divergent run) does not flatten every curve. Null: let uPlot decide.
  function robustRange(data, log) {
    const ys = [];
    for (const s of data.slice(1)) for (const v of s) if (v !== null && v !== undefined && isFinite(v) && (!log || v > 0)) ys.push(v);
    if (ys.length < 4) return null;
    ys.sort((a, b) => a - b);
    const lo = ys[0], hi = ys[Math.floor(0.95 * (ys.length - 1))];
    if (!(hi > lo)) return null;
    if (log) return [lo / 1.05, hi * 1.15];
    const pad = (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }
  function logY() { return $("log-y") && $("log-y").checked; }
  function draw(key, div, xLabel, yLabel, series, data) {
    const log = logY();
    const sig = series.map((s) => s.label + s.stroke).join("|") + (log ? "|log" : "");
    let c = state.charts[key];
    state.yRanges[key] = robustRange(data, log);
    if (c && c.sig === sig) {
      c.plot.setData(data);  // rescales: y through the range function below (state.yRanges)
      return;
    }
    if (c) c.plot.destroy();
    div.textContent = "";
    const opts = Object.assign(chartSize(div), {
      scales: { x: { time: false },
                y: Object.assign(log ? { distr: 3 } : {},
                                 { range: (u, mn, mx) => state.yRanges[key] || [mn, mx] }) },
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
  // A curve's legend: the parameters that differ between the jobs shown (their id when none
  // differ, or when two jobs have the same differing values).
  function legends(jobs) {
    const keys = varyingKeys(jobs);
    const labels = jobs.map((j) => keys.map((k) => k + "=" + (j.params && k in j.params ? fmtParam(j.params[k]) : "–")).join(" "));
    return labels.map((l, i) => (!l || labels.indexOf(l) !== labels.lastIndexOf(l)) ? shortId(jobs[i].job_id) + (l ? " " + l : "") : l);
  }
  function drawOverviewCharts(jobs) {
    const withHistory = jobs.filter((j) => j.history && j.history.t.length > 0);
    const names = legends(withHistory);
    const series = withHistory.map((j, i) => ({ label: names[i], stroke: colorOf(j.job_id) }));
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
  // The search box: every word must appear in the job's id, state, dataset, model or one of
  // its parameters ("k=v"), so "learning_rate=0.1 done" groups the finished runs of that rate.
  function searchText(j) {
    return [j.job_id, j.state, j.dataset || "", j.model || ""].concat(
      Object.entries(j.params || {}).map(([k, v]) => k + "=" + fmtParam(v))).join(" ").toLowerCase();
  }
  function filtered(jobs) {
    const words = ($("search").value || "").toLowerCase().split(/\s+/).filter((w) => w);
    if (words.length) jobs = jobs.filter((j) => { const t = searchText(j); return words.every((w) => t.includes(w)); });
    const mode = $("filter").value;
    const n = Math.max(1, parseInt($("filter-n").value, 10) || 1);
    if (mode === "all") return jobs;
    const scored = jobs.filter((j) => j.best_metric !== null);
    scored.sort((a, b) => mode === "best" ? a.best_metric - b.best_metric
                                          : b.best_metric - a.best_metric);
    return scored.slice(0, n);
  }
  // The parameters whose values differ between `jobs` (or that some lack).
  function varyingKeys(jobs) {
    const values = new Map();
    for (const j of jobs) {
      for (const [k, v] of Object.entries(j.params || {})) {
        if (!values.has(k)) values.set(k, new Set());
        values.get(k).add(JSON.stringify(v));
      }
    }
    return [...values.keys()].filter((k) => values.get(k).size > 1 ||
      jobs.some((j) => !(k in (j.params || {}))));
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
      const box = el("input", { type: "checkbox", class: "pick", title: "select for comparison",
        onchange: (ev) => { if (ev.target.checked) state.selected.add(j.job_id); else state.selected.delete(j.job_id); updateCompare(); } });
      box.checked = state.selected.has(j.job_id);
      tbody.append(el("tr", { "data-job": j.job_id, "data-state": j.state },
        el("td", {}, box, el("span", { class: "swatch", style: "background:" + colorOf(j.job_id) }),
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
    updateCompare();
    drawOverviewCharts(jobs);
  }
  function updateCompare() {
    for (const id of [...state.selected]) if (!state.jobs.some((j) => j.job_id === id)) state.selected.delete(id);
    const n = state.selected.size;
    $("compare").disabled = n < 2;
    $("compare").textContent = "Compare" + (n ? " (" + n + ")" : "");
  }

  // ---- comparison of selected experiments ------------------------------------
  // Parameters side by side (rows that differ marked), key results, curves overlaid.
  function renderCompare(ids) {
    const jobs = ids.map((id) => state.jobs.find((j) => j.job_id === id)).filter((j) => j);
    $("compare-title").textContent = "Comparing " + jobs.length + " experiments";
    const table = $("compare-table");
    table.textContent = "";
    table.append(el("thead", {}, el("tr", {}, el("th", { text: "" }),
      ...jobs.map((j) => el("th", {}, el("span", { class: "swatch", style: "background:" + colorOf(j.job_id) }),
                            el("a", { href: "#/job/" + encodeURIComponent(j.job_id), text: shortId(j.job_id) }))))));
    const body = el("tbody");
    const keys = [...new Set(jobs.flatMap((j) => Object.keys(j.params || {})))]
      .filter((k) => k !== "dataset" && k !== "model").sort();
    const differ = new Set(varyingKeys(jobs));
    const rowsOf = [["dataset", (j) => j.dataset || "–"], ["model", (j) => j.model || "–"]]
      .concat(keys.map((k) => [k, (j) => (j.params && k in j.params ? fmtParam(j.params[k]) : "–")]))
      .concat([["state", (j) => j.state], ["test " + metricLabel(jobs).replace(/^test /, ""), (j) => num(j.test_metric, 4)],
               ["best", (j) => num(j.best_metric, 4)], ["samples/s", (j) => rate(j.samples_per_second)],
               ["elapsed", (j) => secs(j.seconds)], ["cost $", (j) => usd(j.cost_usd)]]);
    for (const [name, f] of rowsOf) {
      const vals = jobs.map(f);
      const diff = differ.has(name) || (["dataset", "model"].includes(name) && new Set(vals).size > 1);
      body.append(el("tr", { class: diff ? "differs" : "", "data-param": name }, el("th", { text: name }),
                     ...vals.map((v) => el("td", { text: v }))));
    }
    table.append(body);
    const withHistory = jobs.filter((j) => j.history && j.history.t.length > 0);
    const names = legends(withHistory);
    draw("compare", $("compare-chart"), "seconds", metricLabel(withHistory),
         withHistory.map((j, i) => ({ label: names[i], stroke: colorOf(j.job_id) })), joined(withHistory, "t"));
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
      card("Traffic", s.bytes_per_sample == null ? "–"
           : num(s.bytes_per_sample, 0) + " bytes per sample (workers to and from the servers)"),
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
    renderPhaseTotals(st.iteration || {}, sum);

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

  // The breakdown over every worker of the job, ended ones included (the registry keeps it
  // after the job ends): mean microseconds per iteration and share of each phase.
  function renderPhaseTotals(it, live) {
    const div = $("job-phases");
    div.textContent = "";
    let n = it.iterations || 0;
    const total = { data_wait_us: 0, pull_us: 0, compute_us: 0, push_us: 0 };
    for (const k of Object.keys(total)) total[k] = (it[k] || 0) * n + live[k];
    n += live.n;
    if (!n) { div.append(el("span", { class: "muted", text: "no iterations yet" })); return; }
    const all = Object.values(total).reduce((a, b) => a + b, 0) || 1;
    div.append(el("span", { class: "label", text: "All workers, " + rate(n) + " iterations:" }));
    for (const [k, name] of [["data_wait_us", "data wait"], ["pull_us", "pull"], ["compute_us", "compute"], ["push_us", "push"]]) {
      div.append(el("span", { class: "phase", "data-phase": name,
        text: name + " " + num(total[k] / n, 1) + " µs (" + num(100 * total[k] / all, 0) + "%)" }));
    }
  }

  function renderServers(st, rates) {
    const div = $("servers");
    div.textContent = "";
    const servers = st.servers || [];
    if (!servers.length) div.append(el("p", { class: "muted", text: "no server stats reported (yet)" }));
    for (const srv of servers) {
      const stats = srv.stats || {};
      const rps = rates[srv.address];
      const errs = stats.errors || 0;
      div.append(el("h3", {}, srv.address + "  ·  " + (rps === null || rps === undefined ? "–" : rate(rps)) +
        " requests/s  ·  " + rate(stats.requests_total) + " requests  ·  ",
        el("span", { class: "errors", title: ERRORS_HELP, text: errs + " errors" }),
        "  ·  " + (stats.kv_keys || 0) + " KV keys"));
      if (errs > 0) div.append(el("p", { class: "muted errors-help", text: ERRORS_HELP }));
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
  function compareRoute() {
    const m = location.hash.match(/^#\/compare\/(.+)$/);
    return m ? m[1].split(",").map(decodeURIComponent) : null;
  }
  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const job = route(), cmp = compareRoute();
    $("overview").hidden = !!job || !!cmp;
    $("job").hidden = !job;
    $("comparison").hidden = !cmp;
    try {
      if (job) {
        renderJob(await api("/api/jobs/" + encodeURIComponent(job)));
      } else if (cmp) {
        const d = await api("/api/jobs?history=1");
        state.jobs = d.jobs;
        renderCompare(cmp);
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
  $("search").addEventListener("input", renderOverview);
  $("log-y").addEventListener("change", () => { state.charts = destroyAll(); refresh(); });
  $("compare").addEventListener("click", () => {
    location.hash = "#/compare/" + [...state.selected].map(encodeURIComponent).join(",");
  });
  window.addEventListener("hashchange", () => { state.charts = destroyAll(); refresh(); });
  window.addEventListener("resize", () => {
    for (const [k, c] of Object.entries(state.charts)) {
      const div = { time: $("chart-time"), cost: $("chart-cost"), job: $("job-chart"),
                    phase: $("job-phase-chart"), compare: $("compare-chart") }[k];
      if (div && !div.closest("[hidden]")) c.plot.setSize(chartSize(div));
    }
  });
  function destroyAll() {
    for (const c of Object.values(state.charts)) c.plot.destroy();
    for (const id of ["chart-time", "chart-cost", "job-chart", "job-phase-chart", "compare-chart"]) $(id).textContent = "";
    return {};
  }
  refresh();
})();
