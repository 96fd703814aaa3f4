/**
 * A renderer process of the browser demo: one per tab, sandboxed (Node's
 * permission model allows it to read only the package's own files). It
 * draws pages into its tab's shared-memory frame; what it may not read, it
 * asks the browser process for over RPC.
 */
import { readFileSync } from 'node:fs';
import { callContext, connect, expose, parent, ready } from '../../index.js';
import { draw, scan, type Layout, type Page } from './layout.js';
import { fillRect } from './raster.js';
import { Tile } from './tile.js';

/** What the browser process offers its renderers. */
export interface BrokerApi {
  /** Reads a file of the browser's profile (renderers cannot). */
  readProfileFile(path: string): Promise<string>;
}

/** What a renderer offers the browser process. */
export interface RendererApi {
  /** Draws `page` as frame `n` into the shared-memory frame `tile`. */
  render(tile: string, page: Page, n: number): Promise<{ seq: number; title: string; pid: number }>;
  /** Tries to read a file itself (the sandbox says no). */
  tryRead(path: string): { ok: boolean; code?: string };
  /** Dies: 'segv' while holding the frame's lock half-way through a frame, 'abort', or 'hang'. */
  crash(how: 'segv' | 'abort' | 'hang'): void;
}

if (parent === null) throw new Error('renderer.js is started by the browser demo');
const port = parent;
const broker = connect<BrokerApi>(port.control, { timeout: 10_000 });
const tiles = new Map<string, Tile>();
const pageFiles = new Map<string, Record<string, string>>();
let current: Tile | undefined;

const tileFor = (name: string): Tile => {
  let t = tiles.get(name);
  if (t === undefined) tiles.set(name, (t = Tile.open(name)));
  return (current = t);
};

const renderer: RendererApi = {
  async render(tileName, page, n) {
    const { signal } = callContext();
    const tile = tileFor(tileName);
    // Files the page shows come from the browser: this process may not read them.
    const need: Layout = scan(page.html);
    let files = pageFiles.get(page.url);
    if (files === undefined && need.files.length > 0) {
      files = {};
      for (const f of need.files) {
        try {
          files[f] = await broker.readProfileFile(f);
        } catch (err) {
          files[f] = `ERROR: ${(err as Error).message}`.slice(0, 120);
        }
      }
      pageFiles.set(page.url, files);
    }
    signal.throwIfAborted();
    using guard = await tile.lock.acquire({ timeout: 5000, signal });
    void guard;
    const layout = draw({ ...page, files }, tile, n);
    tile.embed = layout.embed;
    return { seq: tile.publish(), title: layout.title, pid: process.pid };
  },
  tryRead(path) {
    try {
      readFileSync(path);
      return { ok: true };
    } catch (err) {
      return { ok: false, code: (err as NodeJS.ErrnoException).code };
    }
  },
  crash(how) {
    // Reply first, then die, so the caller sees the call succeed.
    setTimeout(() => {
      if (how === 'hang') for (;;);
      if (how === 'abort') process.abort();
      // Mid-frame: take the lock, scribble half a frame, die holding it.
      const t = current;
      if (t !== undefined && t.lock.tryAcquire() !== null) fillRect(t, 0, 0, t.width, t.height / 2, 0xff00ff);
      process.kill(process.pid, 'SIGSEGV');
    }, 10);
  },
};

expose(renderer, port.control);
ready({ pid: process.pid });
