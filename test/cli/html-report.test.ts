// The HTML report of `multiproc bench` renders in headless Chromium: one chart
// per message size plus the two overview charts, no console errors, and no
// request leaves the page (Chart.js is inlined).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
const chromiumPath = '/usr/bin/chromium';

test('the HTML report renders one chart per size, offline and without errors', { skip: existsSync(chromiumPath) ? false : `${chromiumPath} is missing (scripts/setup-chromium.mjs installs it as root)` }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mpt-html-'));
  try {
    const html = join(dir, 'report.html');
    await new Promise<void>((resolve, reject) => {
      const args = [cli, 'bench', '--quick', '--no-progress', '--mechanisms', 'fork-json,shmring,c-ring', '--sizes', '100,4k,64k', '--html', html];
      execFile(process.execPath, args, { timeout: 120_000, env: { ...process.env, MULTIPROC_TEST_CHILD: '1' } }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
    });
    const text = readFileSync(html, 'utf8');
    assert.doesNotMatch(text, /<script[^>]+src=/, 'no external scripts');

    const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('file:')) requests.push(r.url());
      });
      await page.goto(pathToFileURL(html).href);
      // (Strings, not functions: this file is compiled without the DOM types.)
      await page.waitForFunction('window.benchCharts !== undefined', null, { timeout: 30_000 });
      const sizes = await page.locator('canvas.size-chart').evaluateAll((els) => els.map((e) => e.getAttribute('data-size')));
      assert.deepEqual(sizes, ['100', '4096', '65536']);
      assert.equal(await page.evaluate('window.benchCharts'), 3 + 2);
      // Each chart drew something: its canvas has a size and some non-blank pixels.
      const drawn = await page.evaluate(`[...document.querySelectorAll('canvas')].map((canvas) => {
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let ink = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) ink++;
        return canvas.width > 0 && canvas.height > 0 && ink > 100;
      })`);
      assert.deepEqual(drawn, [true, true, true, true, true]);
      assert.equal(await page.locator('section.size table tbody tr').count(), 3 * 3);
      // The parked round trips (100 B only): one row per mechanism, figures in the cells.
      assert.equal(await page.locator('section.parked h2').textContent(), '100 B round trips to a parked peer');
      const parked = await page.locator('section.parked table tbody tr').allTextContents();
      assert.equal(parked.length, 3);
      assert.match(parked[1]!, /^ShmRing[\d,.]+[\d,.]+[\d,.]+[\d.]+x[\d.]+x c-ring$/);
      assert.deepEqual(problems, []);
      assert.deepEqual(requests, []);
    } finally {
      await context.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
