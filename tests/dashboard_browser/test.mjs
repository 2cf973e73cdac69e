// The dashboard in a real browser (Debian's chromium through playwright-core).
// Usage: node test.mjs URL OUT_DIR   (run by tests/dashboard_browser_test.sh)
// The registry behind URL must hold two or more running experiments.
import { chromium } from "playwright-core";

const [url, outDir] = process.argv.slice(2);
const base = new URL(url).origin;
let failures = 0;
function check(cond, msg) {
  console.log((cond ? "ok   " : "FAIL ") + msg);
  if (!cond) failures++;
  return cond;
}
function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === "EPERM"; }
}
async function until(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"],
});
const errors = [];
try {
  // Without the token: 401, and nothing of the page.
  const anon = await browser.newPage();
  const r = await anon.goto(base + "/");
  check(r.status() === 401, "no token: 401 (got " + r.status() + ")");
  const r2 = await anon.goto(base + "/?token=wrong");
  check(r2.status() === 401, "wrong token: 401 (got " + r2.status() + ")");
  await anon.close();

  const page = await browser.newPage({ viewport: { width: 1500, height: 1100 } });
  page.on("dialog", (d) => d.accept());
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(url);
  check(!page.url().includes("token="), "the token leaves the address bar (now " + page.url() + ")");

  // The table fills with the running experiments.
  const rows = await until("two running rows", async () => {
    const ids = await page.$$eval("#jobs tbody tr[data-state=running]", (trs) => trs.map((t) => t.dataset.job));
    return ids.length >= 2 ? ids : null;
  }, 45000);
  check(rows.length >= 2, "table: " + rows.length + " running experiments");
  const cells = await page.$$eval(`#jobs tbody tr[data-job="${rows[0]}"] td`, (tds) => tds.map((t) => t.textContent));
  check(cells.length === 11 && /=/.test(cells[1]) && /\d+ \/ \d+ \/ \d+/.test(cells[3]),
        "row shows parameters and workers: " + JSON.stringify(cells));

  // The curves fill (one series per experiment, several points) and grow.
  const points = () => page.evaluate(() => {
    const c = window.virgaDashboard.charts;
    if (!c.time || !c.cost) return null;
    const count = (p) => p.data.slice(1).map((s) => s.filter((v) => v !== null && v !== undefined).length);
    return { series: c.time.plot.series.length - 1, time: count(c.time.plot), cost: count(c.cost.plot) };
  });
  const first = await until("curves with 3+ points each", async () => {
    const p = await points();
    return p && p.series >= 2 && p.time.every((n) => n >= 3) && p.cost.every((n) => n >= 3) ? p : null;
  }, 45000);
  check(first.series >= 2, "charts: " + first.series + " curves, points " + JSON.stringify(first.time));
  const grown = await until("curves to grow", async () => {
    const p = await points();
    return p && p.time.every((n, i) => n > first.time[i]) ? p : null;
  }, 15000);
  check(true, "curves grow without reload: " + JSON.stringify(first.time) + " -> " + JSON.stringify(grown.time));
  const legend = await page.$$eval("#chart-time .u-legend .u-series", (s) => s.length);
  check(legend >= 3, "chart legend lists the experiments (" + (legend - 1) + ")");
  // Legends name the parameters that differ (the search's grid), not job ids.
  const labels = await page.$$eval("#chart-time .u-legend .u-series .u-label", (s) => s.slice(1).map((x) => x.textContent));
  check(labels.length >= 2 && labels.every((l) => /^learning_rate=0\.0(1|2)$/.test(l)),
        "legends by the differing parameter: " + JSON.stringify(labels));
  // Colours: a function of the job id (the row's swatch is its curve's stroke, the same after a reload).
  const colours = () => page.evaluate((id) => ({
    swatch: document.querySelector(`#jobs tbody tr[data-job="${id}"] .swatch`).style.background,
    stroke: window.virgaDashboard.charts.time.plot.series.slice(1).map((s) => s._stroke || s.stroke),
  }), rows[0]);
  const c1 = await colours();
  // Robust y axis: its range holds the bulk of the points (the 95th percentile), set by the page.
  const yr = await page.evaluate(() => {
    const c = window.virgaDashboard.charts.time.plot;
    const ys = c.data.slice(1).flat().filter((v) => v !== null && v !== undefined);
    return { range: window.virgaDashboard.yRanges.time, min: c.scales.y.min, max: c.scales.y.max,
             lo: Math.min(...ys), hi: Math.max(...ys) };
  });
  check(yr.range && yr.max <= yr.hi * 1.2 && yr.min <= yr.lo && yr.max > yr.min,
        "robust y range " + JSON.stringify(yr));
  await page.screenshot({ path: outDir + "/dashboard.png", fullPage: true });
  // Log scale toggle.
  await page.check("#log-y");
  await until("a log y axis", () => page.evaluate(() => {
    const c = window.virgaDashboard.charts.time;
    return c && c.plot.scales.y.distr === 3;
  }), 5000);
  check(true, "log y: the charts use a logarithmic y scale");
  await page.uncheck("#log-y");
  // Search: words filter rows and curves.
  await page.fill("#search", "learning_rate=0.01");
  const found = await page.$$eval("#jobs tbody tr", (trs) => trs.map((t) => t.dataset.job));
  const foundSeries = await page.evaluate(() => window.virgaDashboard.charts.time.plot.series.length - 1);
  check(found.length === 1 && foundSeries === 1, "search learning_rate=0.01: " + JSON.stringify(found) + ", " + foundSeries + " curve");
  await page.fill("#search", "");
  // Compare: select both, parameters side by side, curves overlaid.
  for (const id of rows.slice(0, 2)) await page.check(`#jobs tbody tr[data-job="${id}"] input.pick`);
  await page.click("#compare");
  await page.waitForSelector("#comparison:not([hidden])");
  await until("comparison chart", () => page.evaluate(() => {
    const c = window.virgaDashboard.charts.compare;
    return c && c.plot.series.length === 3;
  }), 10000);
  const cmp = await page.evaluate(() => ({
    cols: document.querySelectorAll("#compare-table thead th").length - 1,
    lr: [...document.querySelectorAll('#compare-table tr[data-param="learning_rate"] td')].map((t) => t.textContent),
    differs: document.querySelector('#compare-table tr[data-param="learning_rate"]').className,
    same: document.querySelector('#compare-table tr[data-param="minibatch"]')?.className ?? "absent",
  }));
  check(cmp.cols === 2 && cmp.lr.length === 2 && cmp.lr[0] !== cmp.lr[1] && cmp.differs === "differs" && cmp.same !== "differs",
        "comparison: parameters side by side " + JSON.stringify(cmp));
  await page.screenshot({ path: outDir + "/compare.png", fullPage: true });
  await page.click("#comparison a[href='#/']");
  await page.waitForSelector("#overview:not([hidden])");
  await until("overview charts again", () => page.evaluate(() => !!window.virgaDashboard.charts.time), 10000);
  const c2 = await colours();
  const other = await page.$eval(`#jobs tbody tr[data-job="${rows[1]}"] .swatch`, (e) => e.style.background);
  check(c1.swatch && c1.swatch === c2.swatch && other !== c1.swatch,
        "a job's colour is stable and its own: " + c1.swatch + " / " + c2.swatch + " vs " + other);

  // Kill the first experiment from its row.
  const victim = rows[0], survivor = rows[1];
  const before = await page.evaluate(async (id) => (await (await fetch("/api/jobs/" + id)).json()), victim);
  const pids = (before.status.live_workers || []).map((w) => w.pid).filter((p) => p > 0);
  check(pids.length > 0, "victim " + victim + " has live worker processes " + JSON.stringify(pids));
  await page.click(`#jobs tbody tr[data-job="${victim}"] button.kill`);
  await until("victim killed", () => page.$eval(`#jobs tbody tr[data-job="${victim}"]`,
                                                  (tr) => tr.dataset.state === "killed"), 15000);
  check(true, "victim's row shows state killed");
  const after = await page.evaluate(async (id) => (await (await fetch("/api/jobs/" + id)).json()), victim);
  check(after.summary.workers_alive === 0 && (after.status.live_workers || []).length === 0,
        "victim reports no live workers");
  await until("victim's worker processes to end", async () => pids.every((p) => !alive(p)), 10000);
  check(true, "victim's worker processes are gone");
  const sstate = await page.$eval(`#jobs tbody tr[data-job="${survivor}"]`, (tr) => tr.dataset.state);
  check(sstate === "running", "the other experiment still runs (" + sstate + ")");

  // The survivor's page: workers with their breakdown, server table stats.
  await page.click(`#jobs tbody tr[data-job="${survivor}"] a`);
  await until("worker rows", () => page.$$eval("#workers tbody tr[data-worker]", (t) => t.length > 0), 15000);
  const wcells = await page.$$eval("#workers tbody tr[data-worker] td", (tds) => tds.map((t) => t.textContent));
  check(wcells.length >= 12 && wcells[4] !== "–", "worker row: " + JSON.stringify(wcells.slice(0, 12)));
  await until("iteration breakdown", () => page.$$eval("#workers tbody tr[data-worker]",
    (trs) => trs.some((tr) => tr.children[8].textContent !== "–")), 15000);
  const tables = await page.$$eval("#servers table.tables tbody tr", (t) => t.length);
  const mine = await page.$$eval("#servers tr.mine", (t) => t.length);
  check(tables >= 1 && mine >= 1, "server table stats: " + tables + " tables, the job's highlighted");
  await page.waitForTimeout(2500);  // the phase chart gathers a few points
  const phases = await page.$$eval("#job-phases .phase", (p) => p.map((x) => x.textContent));
  check(phases.length === 4 && phases.every((t) => /µs \(\d+%\)/.test(t)), "phase breakdown: " + JSON.stringify(phases));
  const errTitle = await page.$eval("#servers .errors", (e) => e.title).catch(() => "");
  check(/answered with an error status/.test(errTitle), "server errors explained: " + errTitle.slice(0, 60));
  await page.screenshot({ path: outDir + "/job.png", fullPage: true });

  // Kill all from the header.
  await page.click("a[href='#/']");
  await page.waitForSelector("#overview:not([hidden])");
  await page.click("#kill-all");
  await until("every experiment to end", () => page.$$eval("#jobs tbody tr",
    (trs) => trs.length > 0 && trs.every((tr) => !["running", "killing", "starting"].includes(tr.dataset.state))), 20000);
  check(true, "kill all: no experiment runs");
  await page.screenshot({ path: outDir + "/after-kill-all.png", fullPage: true });
  // The ended victim's page keeps its per-phase breakdown (from the registry's merged times).
  await page.goto(base + "/#/job/" + encodeURIComponent(victim));
  await until("ended job's phases", () => page.$$eval("#job-phases .phase", (p) => p.length === 4), 10000);
  check(true, "an ended job keeps its phase breakdown");
  await page.goto(base + "/#/");
  await page.waitForSelector("#overview:not([hidden])");

  // Filters: best 1 and worst 1 are the two ends by best test logloss.
  const best = await page.evaluate(() => window.virgaDashboard.jobs.filter((j) => j.best_logloss !== null)
    .sort((a, b) => a.best_logloss - b.best_logloss).map((j) => j.job_id));
  await page.fill("#filter-n", "1");
  for (const [mode, want] of [["best", best[0]], ["worst", best[best.length - 1]]]) {
    await page.selectOption("#filter", mode);
    const shown = await page.$$eval("#jobs tbody tr", (trs) => trs.map((t) => t.dataset.job));
    const series = await page.evaluate(() => window.virgaDashboard.charts.time.plot.series.length - 1);
    check(shown.length === 1 && shown[0] === want && series === 1,
          `filter ${mode} 1: ${JSON.stringify(shown)} (want ${want}), ${series} curve(s)`);
  }
  check(errors.length === 0, "no page errors " + JSON.stringify(errors));
} catch (e) {
  check(false, String(e && e.stack || e));
  errors.length && console.log("page errors: " + JSON.stringify(errors));
} finally {
  await browser.close();
}
console.log(failures ? `dashboard browser test: ${failures} check(s) failed` : "dashboard browser test: all checks passed");
process.exit(failures ? 1 : 0);
