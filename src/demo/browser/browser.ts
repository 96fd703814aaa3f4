/**
 * The browser process of the demo: the privileged one. It alone fetches
 * pages (network) and reads the profile directory (files); it supervises the
 * renderers (one per tab, sandboxed), the plugin and the GPU processes, and
 * serves the window (the UI) on loopback.
 *
 * Arguments: <web URL> <tabs> <UI port> <profile dir>
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, expose, onShutdown, parent, ready, rpcClient, Supervisor, type ChildHandle, type Remote } from '../../index.js';
import { drawCrashPage } from './layout.js';
import type { GpuApi } from './gpu.js';
import type { PluginApi } from './plugin.js';
import type { BrokerApi, RendererApi } from './renderer.js';
import { Tile } from './tile.js';
import { uiPage } from './ui.js';

/** What the browser reports to the demo's launcher, message type 1 on the control channel. */
export interface DemoEvent {
  id: number;
  time: number;
  text: string;
  kind: 'rendered' | 'crashed' | 'restarted' | 'navigated' | 'info' | 'denied';
  tab?: number;
}

interface Tab {
  index: number;
  url: string;
  title: string;
  html: string | null;
  state: 'blank' | 'loading' | 'rendered' | 'crashed';
  frames: number;
  pid: number | null;
  restarts: number;
  renderer: Remote<RendererApi> | null;
  tile: Tile;
}

if (parent === null) throw new Error('browser.js is started by the browser demo');
const port = parent;
const [webUrl = '', tabsArg = '2', uiPortArg = '0', profileDir = ''] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const tag = `mpdemo-${process.pid}`;
const COLUMNS = 2;
const TILE_W = 320;
const TILE_H = 200;
const tabCount = Math.max(1, Math.min(8, Number(tabsArg) || 2));

const screen = Tile.create(`${tag}-screen`, 4 + COLUMNS * (TILE_W + 4), 4 + Math.ceil(tabCount / COLUMNS) * (TILE_H + 4));
const pluginTile = Tile.create(`${tag}-plugin`, 64, 64);
const tabs: Tab[] = Array.from({ length: tabCount }, (_, index) => ({
  index,
  url: '',
  title: '',
  html: null,
  state: 'blank',
  frames: 0,
  pid: null,
  restarts: 0,
  renderer: null,
  tile: Tile.create(`${tag}-tab${index}`, TILE_W, TILE_H),
}));

// ---- events and traffic ----------------------------------------------------
const events: DemoEvent[] = [];
let eventId = 0;
function emit(kind: DemoEvent['kind'], text: string, tab?: number): void {
  const e: DemoEvent = { id: ++eventId, time: Date.now(), text, kind, ...(tab === undefined ? {} : { tab }) };
  events.push(e);
  if (events.length > 200) events.shift();
  port.control.send(e, { type: 1 }).catch(() => {});
}
const traffic = new Map<string, { from: string; to: string; mechanism: string; messages: number }>();
function count(from: string, to: string, mechanism: string): void {
  const key = `${from}>${to}>${mechanism}`;
  const e = traffic.get(key) ?? { from, to, mechanism, messages: 0 };
  e.messages++;
  traffic.set(key, e);
}

// ---- the processes ---------------------------------------------------------
let stopped = false;
let gpu: Remote<GpuApi> | null = null;
let plugin: Remote<PluginApi> | null = null;

/** Served to every renderer: the privileged file access they lack. */
const broker: BrokerApi = {
  async readProfileFile(path: string) {
    count('renderer', 'browser', 'rpc (socket pair)');
    emit('info', `browser reads ${basename(path)} for a renderer`);
    // Only names inside the profile directory: no way out with '..'.
    return readFile(join(profileDir, basename(path)), 'utf8');
  },
};

function attach(name: string, index: number, handle: ChildHandle): void {
  const channel = handle.control;
  if (name === 'renderer') {
    const tab = tabs[index]!;
    expose(broker, channel);
    tab.renderer = connect<RendererApi>(channel, { timeout: 5000 });
    tab.pid = handle.pid ?? null;
    void probeSandbox(tab);
  } else if (name === 'gpu') {
    gpu = connect<GpuApi>(channel, { timeout: 5000 });
  } else if (name === 'plugin') {
    plugin = connect<PluginApi>(channel, { timeout: 5000 });
  }
}

async function probeSandbox(tab: Tab): Promise<void> {
  const r = await tab.renderer?.tryRead(join(profileDir, 'bookmarks.txt')).catch(() => null);
  if (r && !r.ok) emit('denied', `renderer ${tab.pid} (tab ${tab.index}) may not read the profile: ${r.code}`, tab.index);
}

function detach(name: string, index: number, reason: string): void {
  if (name === 'renderer') {
    const tab = tabs[index]!;
    if (tab.renderer !== null) void rpcClient(tab.renderer).destroy();
    tab.renderer = null;
    tab.pid = null;
    tab.state = 'crashed';
    emit('crashed', `renderer of tab ${index} exited: ${reason}`, index);
    // The renderer may have died holding the frame's lock: the robust lock hands it over.
    void (async () => {
      using g = await tab.tile.lock.acquire({ timeout: 5000 });
      void g;
      drawCrashPage(tab.tile, reason);
      tab.tile.embed = null;
      tab.tile.publish();
    })().catch(() => {});
  } else if (name === 'gpu') {
    gpu = null;
  } else if (name === 'plugin') {
    plugin = null;
  }
}

const rendererModule = join(here, 'renderer.js');
// Sandboxed roles: Node warns at every start that the permission model is experimental (Node 20)
// and that addons may bypass it (they may: see docs/demo.md).
const quiet = ['--no-warnings'];
const supervisor = new Supervisor({
  name: 'browser',
  strategy: 'one_for_one',
  maxRestarts: 20,
  period: 10_000,
  children: [
    { name: 'gpu', module: join(here, 'gpu.js'), restart: 'permanent', permissions: {}, execArgv: quiet },
    { name: 'plugin', module: join(here, 'plugin.js'), restart: 'permanent', permissions: {}, execArgv: quiet },
    // A renderer stuck in a loop misses its heartbeat and is restarted like a crashed one.
    { name: 'renderer', module: rendererModule, count: tabCount, restart: 'permanent', permissions: {}, execArgv: quiet, heartbeat: { interval: 1000, timeout: 3000 } },
  ],
});
supervisor.on('started', (e) => {
  const handle = supervisor.handle(e.name, e.index);
  if (handle === undefined) return;
  attach(e.name, e.index, handle);
  if (e.name === 'renderer') {
    const tab = tabs[e.index]!;
    tab.restarts = e.restarts;
    if (e.restarts > 0) {
      emit('restarted', `renderer of tab ${e.index} restarted (pid ${e.pid})`, e.index);
      if (tab.html !== null) tab.state = 'loading';
    }
  }
});
supervisor.on('exited', (e) => {
  if (stopped) return;
  detach(e.name, e.index, e.exit.signal ? `${e.exit.reason}, ${e.exit.signal}` : e.exit.reason);
});

// ---- the frame loop --------------------------------------------------------
let frame = 0;
async function loop(): Promise<void> {
  while (!stopped) {
    frame++;
    await Promise.all(
      tabs.map(async (tab) => {
        if (tab.renderer === null || tab.html === null) return;
        try {
          count('browser', `renderer ${tab.index}`, 'rpc (socket pair)');
          const r = await tab.renderer.render(tab.tile.shm.name, { url: tab.url, html: tab.html }, frame);
          count(`renderer ${tab.index}`, 'gpu', 'shared memory + robust mutex');
          tab.frames++;
          tab.title = r.title;
          if (tab.state !== 'rendered') emit('rendered', `tab ${tab.index} rendered ${tab.url} (renderer ${r.pid})`, tab.index);
          tab.state = 'rendered';
        } catch {
          // The renderer died or hung: the supervisor's events say which.
        }
      }),
    );
    try {
      if (plugin !== null) {
        count('browser', 'plugin', 'rpc (socket pair)');
        await plugin.tick(pluginTile.shm.name, frame);
        count('plugin', 'gpu', 'shared memory + robust mutex');
      }
      if (gpu !== null) {
        count('browser', 'gpu', 'rpc (socket pair)');
        await gpu.compose({ screen: screen.shm.name, tabs: tabs.map((t) => t.tile.shm.name), plugin: pluginTile.shm.name, columns: COLUMNS });
        count('gpu', 'browser', 'shared memory + robust mutex');
      }
    } catch {
      // A restarting helper process; the next frame tries again.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function navigate(index: number, url: string): Promise<void> {
  const tab = tabs[index];
  if (tab === undefined) throw new RangeError(`no tab ${index}`);
  const target = new URL(url, webUrl);
  if (target.origin !== new URL(webUrl).origin) throw new RangeError('the demo only browses its own web server');
  tab.url = target.href;
  tab.state = 'loading';
  const res = await fetch(target);
  tab.html = await res.text();
  count('web', 'browser', 'tcp (loopback http)');
  emit('navigated', `tab ${index} navigated to ${target.pathname}`, index);
}

async function crash(index: number, how: 'segv' | 'abort' | 'hang' = 'segv'): Promise<void> {
  const tab = tabs[index];
  if (tab?.renderer == null) throw new RangeError(`tab ${index} has no live renderer`);
  emit('info', `crashing the renderer of tab ${index} (${how})`, index);
  await tab.renderer.crash(how);
}

function state(): unknown {
  const processes = [
    { name: 'browser', pid: process.pid, state: 'running', restarts: 0, lastExit: '', sandbox: 'privileged: network, files' },
    ...supervisor.children().map((c) => ({
      name: c.name === 'renderer' ? `renderer ${c.index}` : c.name,
      pid: c.pid,
      state: c.state,
      restarts: c.restarts,
      lastExit: c.lastExit ?? '',
      sandbox: 'permission model: no fs, no child processes',
    })),
  ];
  return {
    pages: ['/news', '/clock', '/ipc', '/secret'],
    tabs: tabs.map((t) => ({ index: t.index, url: t.url, title: t.title, state: t.state, frames: t.frames, pid: t.pid, restarts: t.restarts })),
    processes,
    traffic: [...traffic.values()],
    events,
    screenSeq: screen.seq,
  };
}

// ---- the window, on loopback ----------------------------------------------
function send(res: ServerResponse, status: number, body: string | Uint8Array, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers }).end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const m = /^\/api\/tabs\/(\d+)\/(navigate|crash)$/.exec(url.pathname);
  if (req.method === 'GET' && url.pathname === '/') return send(res, 200, uiPage, 'text/html; charset=utf-8');
  if (req.method === 'GET' && url.pathname === '/api/state') return send(res, 200, JSON.stringify(state()), 'application/json');
  if (req.method === 'GET' && url.pathname === '/api/screen') {
    using g = await screen.lock.acquire({ timeout: 5000 });
    void g;
    const copy = Buffer.from(screen.pixels);
    return send(res, 200, copy, 'application/octet-stream', { 'x-width': String(screen.width), 'x-height': String(screen.height), 'x-seq': String(screen.seq) });
  }
  if (req.method === 'POST' && m) {
    const index = Number(m[1]);
    if (m[2] === 'navigate') await navigate(index, url.searchParams.get('url') ?? '/news');
    else await crash(index, (url.searchParams.get('how') as 'segv' | 'abort' | 'hang' | null) ?? 'segv');
    return send(res, 200, '{"ok":true}', 'application/json');
  }
  return send(res, 404, 'not found', 'text/plain');
}

const ui = createServer((req, res) => {
  handle(req, res).catch((err: Error) => send(res, 400, JSON.stringify({ error: err.message }), 'application/json'));
});
await new Promise<void>((resolve, reject) => {
  ui.once('error', reject);
  ui.listen(Number(uiPortArg), '127.0.0.1', () => resolve());
});
const uiUrl = `http://127.0.0.1:${(ui.address() as AddressInfo).port}/`;

// Commands from the launcher (headless mode), message type 2 on the control channel.
void (async () => {
  for (;;) {
    let cmd: { op: string; tab: number; url?: string; how?: 'segv' | 'abort' | 'hang' };
    try {
      cmd = (await port.control.receive({ type: 2 })) as typeof cmd;
    } catch {
      return;
    }
    try {
      if (cmd.op === 'navigate') await navigate(cmd.tab, cmd.url ?? '/news');
      else if (cmd.op === 'crash') await crash(cmd.tab, cmd.how);
    } catch (err) {
      emit('info', `command ${cmd.op} failed: ${(err as Error).message}`);
    }
  }
})();

onShutdown(async () => {
  stopped = true;
  ui.closeAllConnections();
  ui.close();
  await supervisor.close();
  for (const t of [screen, pluginTile, ...tabs.map((x) => x.tile)]) t.close();
});

await supervisor.start();
void loop();
emit('info', `browser ${process.pid} up: ${tabCount} tabs, window at ${uiUrl}`);
ready({ ui: uiUrl, pid: process.pid });
