/**
 * The browser demo's launcher: starts "the web" (a page server on
 * loopback), a profile directory, and a root supervisor whose one child is
 * the privileged browser process; the browser supervises the rest:
 *
 *   launcher (root supervisor)
 *   └── browser        privileged: network, files; serves the window
 *       ├── gpu        composes the tabs' frames from shared memory
 *       ├── plugin     draws the clock pages embed
 *       └── renderer×N one per tab, sandboxed by Node's permission model
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Supervisor, type ChildHandle } from '../../index.js';
import type { DemoEvent } from './browser.js';
import { startWeb } from './web.js';

export type { DemoEvent } from './browser.js';

export interface BrowserDemoOptions {
  /** Number of tabs (renderer processes), 1 to 8. Default 2. */
  tabs?: number;
  /** Loopback port of the window; 0 (default) picks a free one. */
  port?: number;
}

/** A running demo. */
export interface BrowserDemo extends AsyncDisposable {
  /** URL of the window (the web UI) on loopback. */
  readonly ui: string;
  /** Emits 'event' with every {@link DemoEvent} of the browser process. */
  readonly events: EventEmitter;
  /** Opens `path` (of the demo's web server) in tab `tab`. */
  navigate(tab: number, path: string): Promise<void>;
  /** Crashes the renderer of tab `tab`. */
  crash(tab: number, how?: 'segv' | 'abort' | 'hang'): Promise<void>;
  /** Stops every process of the demo and removes what it created. */
  close(): Promise<void>;
}

/** Starts the browser demo. */
export async function startBrowserDemo(options: BrowserDemoOptions = {}): Promise<BrowserDemo> {
  const tabs = options.tabs ?? 2;
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > 8) throw new RangeError('tabs must be an integer from 1 to 8');
  const here = dirname(fileURLToPath(import.meta.url));
  const web = await startWeb();
  const profile = mkdtempSync(join(tmpdir(), 'multiproc-demo-profile-'));
  writeFileSync(join(profile, 'bookmarks.txt'), 'Bookmarks of this profile:\nmultiproc docs\nthe seeds of IPC\n', { mode: 0o600 });
  const events = new EventEmitter();
  let browser: ChildHandle | null = null;
  let uiResolve!: (ui: string) => void;
  const uiUrl = new Promise<string>((r) => (uiResolve = r));

  const root = new Supervisor({
    name: 'launcher',
    strategy: 'one_for_one',
    maxRestarts: 3,
    period: 60_000,
    children: [
      {
        name: 'browser',
        module: join(here, 'browser.js'),
        args: [web.url, String(tabs), String(options.port ?? 0), profile],
        restart: 'permanent',
        shutdownTimeout: 5000,
      },
    ],
  });
  root.on('started', (e) => {
    const h = root.handle(e.name, e.index);
    if (h === undefined) return;
    browser = h;
    void h.ready.then((v) => uiResolve((v as { ui: string }).ui), () => {});
    void (async () => {
      for (;;) {
        try {
          events.emit('event', (await h.control.receive({ type: 1 })) as DemoEvent);
        } catch {
          return;
        }
      }
    })();
  });
  await root.start();
  const ui = await uiUrl;

  const command = async (cmd: object): Promise<void> => {
    if (browser === null) throw new Error('the browser process is not running');
    await browser.control.send(cmd, { type: 2 });
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await root.close();
      web.server.closeAllConnections();
      web.server.close();
      rmSync(profile, { recursive: true, force: true });
    })());
  return {
    ui,
    events,
    navigate: (tab, path) => command({ op: 'navigate', tab, url: path }),
    crash: (tab, how = 'segv') => command({ op: 'crash', tab, how }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
