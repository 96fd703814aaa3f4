/**
 * The browser demo's window: one self-contained HTML page, served on
 * loopback by the browser process. It polls the state, draws the composed
 * screen from shared memory on a canvas, and lists processes and IPC traffic.
 */
export const uiPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>multiproc browser demo</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; background: #fafafa; color: #222; }
h1 { font-size: 18px; margin: 0 0 12px; }
.row { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }
.tab { border: 1px solid #ccc; border-radius: 6px; padding: 8px; margin-bottom: 8px; background: #fff; width: 340px; }
.tab.crashed { border-color: #d93025; background: #fce8e6; }
.state { font-weight: bold; }
#log { height: 180px; overflow: auto; font: 12px monospace; background: #fff; border: 1px solid #ddd; padding: 4px; width: 680px; }
canvas { border: 1px solid #999; image-rendering: pixelated; }
</style></head>
<body>
<h1>multiproc browser demo: one process per tab</h1>
<div class="row">
  <div id="tabs"></div>
  <div><canvas id="screen" width="10" height="10"></canvas>
    <div>screen frame <span id="screen-seq">0</span> composed by the GPU process</div></div>
</div>
<div class="row">
  <div><h2>Processes</h2><table id="procs"><thead><tr><th>name</th><th>pid</th><th>state</th><th>restarts</th><th>last exit</th><th>sandbox</th></tr></thead><tbody></tbody></table></div>
  <div><h2>IPC traffic</h2><table id="traffic"><thead><tr><th>from</th><th>to</th><th>mechanism</th><th>messages</th></tr></thead><tbody></tbody></table></div>
</div>
<h2>Events</h2><div id="log"></div>
<script>
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
let pages = [];
async function post(path) { await fetch(path, { method: 'POST' }); }
function renderTabs(state) {
  const root = $('#tabs');
  if (root.children.length !== state.tabs.length) {
    root.innerHTML = state.tabs.map((t) => '<div class="tab" id="tab-' + t.index + '" data-index="' + t.index + '">'
      + '<div><b>Tab ' + t.index + '</b>: <span class="title"></span></div>'
      + '<div>state <span class="state"></span>, frame <span class="frames"></span>, renderer pid <span class="pid"></span>, restarts <span class="restarts"></span></div>'
      + '<div><select class="url">' + state.pages.map((p) => '<option>' + esc(p) + '</option>').join('') + '</select>'
      + ' <button class="go">Open</button> <button class="crash">Crash renderer</button></div></div>').join('');
    for (const el of root.querySelectorAll('.tab')) {
      const i = el.dataset.index;
      el.querySelector('.go').onclick = () => post('/api/tabs/' + i + '/navigate?url=' + encodeURIComponent(el.querySelector('.url').value));
      el.querySelector('.crash').onclick = () => post('/api/tabs/' + i + '/crash');
    }
  }
  for (const t of state.tabs) {
    const el = $('#tab-' + t.index);
    el.className = 'tab ' + t.state;
    el.dataset.state = t.state;
    el.querySelector('.title').textContent = t.title || t.url || '(blank)';
    el.querySelector('.state').textContent = t.state;
    el.querySelector('.frames').textContent = t.frames;
    el.querySelector('.pid').textContent = t.pid ?? '-';
    el.querySelector('.restarts').textContent = t.restarts;
  }
}
function renderTables(state) {
  $('#procs tbody').innerHTML = state.processes.map((p) => '<tr><td>' + esc(p.name) + '</td><td>' + esc(p.pid) + '</td><td>' + esc(p.state)
    + '</td><td>' + esc(p.restarts) + '</td><td>' + esc(p.lastExit) + '</td><td>' + esc(p.sandbox) + '</td></tr>').join('');
  $('#traffic tbody').innerHTML = state.traffic.map((e) => '<tr><td>' + esc(e.from) + '</td><td>' + esc(e.to) + '</td><td>' + esc(e.mechanism)
    + '</td><td>' + esc(e.messages) + '</td></tr>').join('');
}
let lastEvent = 0;
function renderLog(state) {
  const log = $('#log');
  for (const e of state.events) {
    if (e.id <= lastEvent) continue;
    lastEvent = e.id;
    const line = document.createElement('div');
    line.textContent = new Date(e.time).toISOString().slice(11, 23) + ' ' + e.text;
    log.prepend(line);
  }
}
async function drawScreen() {
  const res = await fetch('/api/screen');
  const w = Number(res.headers.get('x-width')), h = Number(res.headers.get('x-height'));
  const bytes = new Uint8ClampedArray(await res.arrayBuffer());
  const c = $('#screen');
  if (c.width !== w) { c.width = w; c.height = h; }
  c.getContext('2d').putImageData(new ImageData(bytes, w, h), 0, 0);
  $('#screen-seq').textContent = res.headers.get('x-seq');
}
async function tick() {
  try {
    const state = await (await fetch('/api/state')).json();
    renderTabs(state); renderTables(state); renderLog(state);
    await drawScreen();
  } catch (err) { console.warn('refresh failed', err); }
  setTimeout(tick, 250);
}
tick();
</script></body></html>`;
