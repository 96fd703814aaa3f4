/**
 * The GPU process of the browser demo: composes the tabs' frames and the
 * plugin's frame, all in shared memory, into one screen frame (also shared
 * memory) that the browser process shows. Pixels are copied under each
 * frame's robust lock; a renderer that died holding its lock shows up here
 * as a damaged tab.
 */
import { expose, parent, ready } from '../../index.js';
import { blit, fillRect } from './raster.js';
import { Tile } from './tile.js';

export interface ComposeRequest {
  screen: string;
  tabs: string[];
  plugin: string;
  columns: number;
}

export interface GpuApi {
  /** Composes every tab into the screen; returns the screen's frame number and the damaged tabs. */
  compose(req: ComposeRequest): Promise<{ seq: number; damaged: number[] }>;
}

if (parent === null) throw new Error('gpu.js is started by the browser demo');
const opened = new Map<string, Tile>();
const open = (name: string): Tile => {
  let t = opened.get(name);
  if (t === undefined) opened.set(name, (t = Tile.open(name)));
  return t;
};
const GUTTER = 4;

const gpu: GpuApi = {
  async compose({ screen, tabs, plugin, columns }) {
    const out = open(screen);
    const clock = open(plugin);
    const damaged: number[] = [];
    using screenGuard = await out.lock.acquire({ timeout: 5000 });
    void screenGuard;
    fillRect(out, 0, 0, out.width, out.height, 0x202124);
    for (let i = 0; i < tabs.length; i++) {
      const tile = open(tabs[i]!);
      const x = GUTTER + (i % columns) * (tile.width + GUTTER);
      const y = GUTTER + Math.floor(i / columns) * (tile.height + GUTTER);
      const guard = await tile.lock.acquire({ timeout: 5000 });
      try {
        if (guard.ownerDied) damaged.push(i);
        blit(tile, 0, 0, out, x, y, tile.width, tile.height);
        const e = tile.embed;
        if (e !== null) {
          using pg = await clock.lock.acquire({ timeout: 5000 });
          void pg;
          blit(clock, 0, 0, out, x + e.x, y + e.y, Math.min(e.w, clock.width), Math.min(e.h, clock.height));
        }
      } finally {
        guard.release();
      }
    }
    return { seq: out.publish(), damaged };
  },
};

expose(gpu, parent.control);
ready({ pid: process.pid });
