/**
 * The plugin process of the browser demo: draws a clock into its own
 * shared-memory frame, which the GPU process places where pages embed it.
 */
import { expose, parent, ready } from '../../index.js';
import { fillRect } from './raster.js';
import { Tile } from './tile.js';

export interface PluginApi {
  /** Draws frame `n` of the clock into the frame `tile`. */
  tick(tile: string, n: number): Promise<number>;
}

if (parent === null) throw new Error('plugin.js is started by the browser demo');
let frame: Tile | undefined;

const plugin: PluginApi = {
  async tick(tile, n) {
    frame ??= Tile.open(tile);
    const f = frame;
    using guard = await f.lock.acquire({ timeout: 5000 });
    void guard;
    const c = f.width / 2;
    const r = c - 3;
    fillRect(f, 0, 0, f.width, f.height, 0x002b36);
    for (let a = 0; a < 60; a++) {
      const t = (a / 60) * 2 * Math.PI;
      fillRect(f, c + Math.cos(t) * r - 1, c + Math.sin(t) * r - 1, 2, 2, a % 5 === 0 ? 0xfdf6e3 : 0x586e75);
    }
    const angle = (n / 40) * 2 * Math.PI - Math.PI / 2;
    for (let d = 0; d < r - 4; d++) fillRect(f, c + Math.cos(angle) * d - 1, c + Math.sin(angle) * d - 1, 3, 3, 0xb58900);
    return f.publish();
  },
};

expose(plugin, parent.control);
ready({ pid: process.pid });
