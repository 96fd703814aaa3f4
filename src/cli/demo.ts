/**
 * `multiproc demo browser`: the seeds' multi-process web browser, running.
 */
import { Command, InvalidArgumentError } from 'commander';
import { once } from 'node:events';
import { startBrowserDemo, type DemoEvent } from '../demo/browser/main.js';

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`an integer from ${min} to ${max}`);
    return n;
  };
}

/** Runs the scripted tour: open pages, crash tab 0, wait for it to come back. */
async function tour(demo: Awaited<ReturnType<typeof startBrowserDemo>>, tabs: number, timeout: number): Promise<void> {
  const seen: DemoEvent[] = [];
  demo.events.on('event', (e: DemoEvent) => seen.push(e));
  const waitFor = async (pred: (e: DemoEvent) => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + timeout;
    let from = 0;
    for (;;) {
      if (seen.slice(from).some(pred)) return;
      from = seen.length;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await Promise.race([once(demo.events, 'event'), new Promise((r) => setTimeout(r, 200))]);
    }
  };
  const paths = ['/news', '/clock', '/ipc', '/secret'];
  for (let i = 0; i < tabs; i++) await demo.navigate(i, paths[i % paths.length]!);
  for (let i = 0; i < tabs; i++) await waitFor((e) => e.kind === 'rendered' && e.tab === i, `tab ${i} to render`);
  const mark = seen.length;
  await demo.crash(0, 'segv');
  await waitFor((e) => e.kind === 'crashed' && e.tab === 0, 'the crash of tab 0');
  await waitFor((e) => e.kind === 'restarted' && e.tab === 0, 'the restart of tab 0');
  await waitFor((e) => e.kind === 'rendered' && e.tab === 0 && seen.indexOf(e) > mark, 'tab 0 to render again');
}

export function demoCommand(): Command {
  const demo = new Command('demo').description('runnable demonstrations built on the public API');
  demo
    .command('browser')
    .description('a multi-process web browser: privileged browser, sandboxed renderers, plugin and GPU processes')
    .option('--tabs <n>', 'tabs, one renderer process each', intOption(1, 8), 2)
    .option('--port <port>', 'loopback port of the window (0: any free port)', intOption(0, 65535), 0)
    .option('--headless', 'no window: run a scripted tour (open pages, crash a renderer, watch it recover) and print the events')
    .option('--timeout <ms>', 'headless: how long to wait for each step', intOption(1000, 600_000), 30_000)
    .action(async (opts: { tabs: number; port: number; headless?: boolean; timeout: number }) => {
      const d = await startBrowserDemo({ tabs: opts.tabs, port: opts.port });
      d.events.on('event', (e: DemoEvent) => console.log(`${new Date(e.time).toISOString().slice(11, 23)} ${e.kind.padEnd(9)} ${e.text}`));
      if (opts.headless) {
        try {
          await tour(d, opts.tabs, opts.timeout);
          console.log('tour complete: a renderer crashed, the other tabs kept rendering, and the crashed tab recovered');
        } catch (err) {
          process.exitCode = 1;
          console.error(`tour failed: ${(err as Error).message}`);
        } finally {
          await d.close();
        }
        return;
      }
      console.log(`browser window: ${d.ui}  (Ctrl-C to stop)`);
      const stop = (): void => void d.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  return demo;
}
