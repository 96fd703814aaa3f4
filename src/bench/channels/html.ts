/**
 * A self-contained HTML report of a channel benchmark run: the comparison
 * tables and charts (latency by size, throughput by size, and one chart per
 * size with every mechanism). Chart.js is inlined from node_modules, so the
 * file opens offline and can be mailed around.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ChannelBenchResult } from './core.js';
import { sizeName } from './core.js';
import { displayName, formatRow, parkedCaption, parkedHead, parkedRows, rowsForSize, tableHead } from './table.js';

const require = createRequire(import.meta.url);

/** The UMD build of Chart.js, as text. */
function chartJsSource(): string {
  const dist = path.dirname(require.resolve('chart.js'));
  for (const f of ['chart.umd.min.js', 'chart.umd.js']) {
    try {
      return readFileSync(path.join(dist, f), 'utf8');
    } catch {
      // try the next name
    }
  }
  throw new Error(`Chart.js UMD build not found in ${dist}`);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** Code that may sit inside <script>: no "</script". */
const scriptSafe = (s: string): string => s.replace(/<\/(script)/gi, '<\\/$1');
/** JSON that may sit inside <script>: every "<" escaped. */
const jsonSafe = (s: string): string => s.replace(/</g, '\\u003c');

/** What the page's script draws, kept small and free of NaN. */
function chartData(result: ChannelBenchResult): unknown {
  const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
  const byKey = new Map(result.cells.map((c) => [`${c.row}@${c.size}`, c]));
  return {
    sizes: result.options.sizes.map((s) => ({ bytes: s, label: sizeName(s) })),
    series: result.rows.map((r) => ({
      id: r.id,
      name: displayName(r),
      group: r.group,
      points: result.options.sizes.map((s) => {
        const c = byKey.get(`${r.id}@${s}`);
        return c && c.status === 'ok' ? { p50: num(c.rttP50), p99: num(c.rttP99), mbps: num(c.mbPerSec), msgs: num(c.msgsPerSec) } : null;
      }),
    })),
  };
}

const pageScript = `
const data = JSON.parse(document.getElementById('bench-data').textContent);
const palette = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#17becf','#bcbd22','#393b79','#637939','#8c6d31','#843c39','#7b4173','#3182bd','#e6550d','#31a354','#756bb1','#636363','#a55194','#6b6ecf'];
const colour = (i, s) => s.group === 'baseline' ? ['#555','#888','#aaa'][i % 3] : s.group === 'c' ? '#000' : palette[i % palette.length];
const charts = [];
function lineChart(id, title, field, unit) {
  const el = document.getElementById(id);
  charts.push(new Chart(el, {
    type: 'line',
    data: {
      labels: data.sizes.map((s) => s.label),
      datasets: data.series.map((s, i) => ({
        label: s.name, data: s.points.map((p) => p ? p[field] : null),
        borderColor: colour(i, s), backgroundColor: colour(i, s),
        borderDash: s.group === 'baseline' ? [6, 3] : s.group === 'c' ? [2, 2] : [], spanGaps: false,
      })),
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: title } },
      scales: { y: { type: 'logarithmic', title: { display: true, text: unit } }, x: { title: { display: true, text: 'message size' } } } },
  }));
}
lineChart('chart-latency', 'Round-trip latency p50 by message size (lower is better)', 'p50', 'µs');
lineChart('chart-throughput', 'One-way throughput by message size (higher is better)', 'mbps', 'MB/s');
data.sizes.forEach((size, k) => {
  const el = document.querySelector('canvas.size-chart[data-size="' + size.bytes + '"]');
  const rows = data.series.filter((s) => s.points[k]);
  charts.push(new Chart(el, {
    type: 'bar',
    data: {
      labels: rows.map((s) => s.name),
      datasets: [
        { label: 'RTT p50 (µs, lower is better)', data: rows.map((s) => s.points[k].p50), xAxisID: 'lat', backgroundColor: '#d62728' },
        { label: 'MB/s one-way (higher is better)', data: rows.map((s) => s.points[k].mbps), xAxisID: 'bw', backgroundColor: '#1f77b4' },
      ],
    },
    options: { indexAxis: 'y', animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { title: { display: true, text: size.label + ' messages' } },
      scales: {
        y: { ticks: { autoSkip: false } },
        lat: { type: 'logarithmic', position: 'bottom', title: { display: true, text: 'RTT p50 µs' } },
        bw: { type: 'logarithmic', position: 'top', title: { display: true, text: 'MB/s' }, grid: { drawOnChartArea: false } },
      } },
  }));
});
window.benchCharts = charts.length;
`;

/** Renders the report. Throws when Chart.js cannot be found. */
export function renderHtml(result: ChannelBenchResult): string {
  const chart = chartJsSource();
  const m = result.machine;
  const sizes = result.options.sizes;
  const tables = sizes
    .map((size) => {
      const rows = rowsForSize(result, size).map(formatRow);
      const head = tableHead.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
      const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= 5 && i < r.length - 1 ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
      const height = Math.max(240, 28 * rows.length + 90);
      return `<section class="size">
<h2>${escapeHtml(sizeName(size))} messages</h2>
<div class="chart" style="height:${height}px"><canvas class="size-chart" data-size="${size}"></canvas></div>
<table><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table>
</section>`;
    })
    .join('\n');
  const parked = parkedRows(result);
  const parkedSection =
    parked.length === 0
      ? ''
      : `<section class="parked">
<h2>${escapeHtml(sizeName(result.parked!.size))} round trips to a parked peer</h2>
<p>${escapeHtml(parkedCaption(result))}</p>
<table><thead><tr>${parkedHead.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>
${parked.map((r) => `<tr>${r.map((c, i) => `<td${i > 0 ? ' class="num"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n')}
</tbody></table>
</section>`;
  const failures = result.cells.filter((c) => c.status === 'failed').map((c) => `<li>${escapeHtml(`${c.row} ${sizeName(c.size)}: ${c.errors[0] ?? ''}`)}</li>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>multiproc channel benchmark</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1300px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
.chart { position: relative; width: 100%; }
.overview .chart { height: 420px; margin-bottom: 2em; }
table { border-collapse: collapse; margin-top: 1em; font-size: 12px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.meta { color: #555; }
</style>
</head>
<body>
<h1>multiproc channel benchmark</h1>
<p class="meta">${escapeHtml(`${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}; load average ${m.loadavgBefore?.join(' ') ?? '?'} → ${m.loadavgAfter?.join(' ') ?? '?'}`)}<br>
${escapeHtml(`${result.started}; ${result.options.trials} trial(s) per cell${result.options.quick ? ', quick' : ''}; sizes ${sizes.map(sizeName).join(', ')}`)}</p>
<p>RTT: round trip (send, the peer echoes, receive). MB/s and msg/s: a one-way burst until the receiver has
counted every message. "x IPC": times better than child_process IPC (json) in this run; above 1x is better.
Every mechanism runs between two fresh processes (worker_threads: a thread).</p>
<section class="overview">
<div class="chart"><canvas id="chart-latency"></canvas></div>
<div class="chart"><canvas id="chart-throughput"></canvas></div>
</section>
${tables}
${parkedSection}
${failures.length > 0 ? `<h2>Failed trials</h2><ul>${failures.join('')}</ul>` : ''}
<script id="bench-data" type="application/json">${jsonSafe(JSON.stringify(chartData(result)))}</script>
<script>${scriptSafe(chart)}</script>
<script>${scriptSafe(pageScript)}</script>
</body>
</html>
`;
}
