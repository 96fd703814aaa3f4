// The browser demo, end to end: real processes (launcher, browser, GPU,
// plugin, one sandboxed renderer per tab) driven through its web UI in
// headless Chromium, and through the terminal (--headless).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { spawn as spawnProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startBrowserDemo } from '../../src/demo/browser/main.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();
const CHROMIUM = '/usr/bin/chromium';
const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('the window: two tabs render, a crashed renderer shows a crash page and recovers, the other tab keeps rendering', {
  timeout: 90_000,
  skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (npm test installs Debian's chromium when run as root)`,
}, async () => {
  const { chromium } = await import('playwright-core');
  const demo = await startBrowserDemo({ tabs: 2 });
  let browserPid = 0;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1200, height: 900 });
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(demo.ui);
    browserPid = ((await (await fetch(`${demo.ui}api/state`)).json()) as { processes: Array<{ pid: number }> }).processes[0]!.pid;
    await page.waitForSelector('#tab-1');
    await page.selectOption('#tab-0 .url', '/news');
    await page.click('#tab-0 .go');
    await page.selectOption('#tab-1 .url', '/clock');
    await page.click('#tab-1 .go');
    await page.waitForSelector('#tab-0[data-state="rendered"]', { timeout: 30_000 });
    await page.waitForSelector('#tab-1[data-state="rendered"]', { timeout: 30_000 });
    const pid0 = await page.textContent('#tab-0 .pid');
    const frames1 = Number(await page.textContent('#tab-1 .frames'));

    await page.click('#tab-0 .crash');
    // The crash is seen (state or log), the supervisor restarts the renderer (new pid, one restart), the tab renders again.
    // (Page functions as strings: this file is compiled without the DOM types.)
    await page.waitForFunction(`document.querySelector('#log').textContent.includes('renderer of tab 0 exited: crashed')`, null, { timeout: 30_000 });
    await page.waitForFunction(
      `(() => { const t = document.querySelector('#tab-0');
        return t.dataset.state === 'rendered' && t.querySelector('.restarts').textContent === '1'
          && t.querySelector('.pid').textContent !== ${JSON.stringify(pid0)}; })()`,
      null,
      { timeout: 30_000 },
    );
    // Meanwhile the other tab went on drawing frames, with its first renderer.
    assert.ok(Number(await page.textContent('#tab-1 .frames')) > frames1);
    assert.equal(await page.textContent('#tab-1 .restarts'), '0');
    assert.match((await page.textContent('#log'))!, /may not read the profile: ERR_ACCESS_DENIED/);
    // The composed screen arrived from the GPU process.
    assert.ok(Number(await page.textContent('#screen-seq')) > 0);
    assert.deepEqual(errors, []);
    if (process.env.MULTIPROC_DEMO_SCREENSHOT) await page.screenshot({ path: process.env.MULTIPROC_DEMO_SCREENSHOT, fullPage: true });
  } finally {
    await browser.close();
    await demo.close();
  }
  // The browser process owned the frames' segments; closing the demo removed them.
  assert.deepEqual(readdirSync('/dev/shm').filter((n) => n.startsWith(`mpdemo-${browserPid}-`)), []);
});

test('multiproc demo browser --headless runs the tour and exits 0', { timeout: 90_000 }, async () => {
  const child = spawnProcess(process.execPath, [cli, 'demo', 'browser', '--headless', '--tabs', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 0, out);
  assert.match(out, /tour complete/);
  assert.match(out, /renderer of tab 0 exited: crashed, SIGSEGV/);
  assert.match(out, /renderer of tab 0 restarted/);
  assert.match(out, /may not read the profile: ERR_ACCESS_DENIED/);
});
