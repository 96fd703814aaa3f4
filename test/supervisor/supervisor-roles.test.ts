// Roles with privileges, the browser model: a sandboxed 'renderer' cannot
// read a file (ERR_ACCESS_DENIED inside its process) and asks the privileged
// 'browser' role over RPC, relayed by the supervisor. The relay survives a
// restart of the browser; a call the browser was serving when it died fails
// with ERR_MULTIPROC_CLOSED instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';
import { childEnv, fixture, nextEvent } from './helpers.js';

leakGuard();
const tmp = tempDir('sup-roles');
const secret = join(tmp.dir, 'secret.txt');
writeFileSync(secret, 'for the browser only');
const T = { timeout: 30000 };

test('a sandboxed renderer is denied a file, and gets it from the privileged browser over RPC', async () => {
  const sup = new Supervisor({
    handleSignals: false,
    backoff: { initial: 0 },
    children: [
      // Each role with its own permission set; --no-warnings keeps Node's permission warnings out of the test output.
      { name: 'browser', module: fixture('browser'), env: childEnv, execArgv: ['--no-warnings'], permissions: { fsRead: [tmp.dir] } },
      {
        name: 'renderer',
        module: fixture('renderer'),
        env: childEnv,
        execArgv: ['--no-warnings'],
        args: [secret],
        // No file access beyond its own code, no native addons: it runs on the addon-free child API.
        permissions: { addons: false },
        connects: ['browser'],
      },
    ],
  });
  try {
    await sup.start();
    const renderer = sup.handle('renderer')!.control;
    const report = (await renderer.receive(T)) as any;
    assert.equal(report.readDirectly, undefined, 'the sandbox let the renderer read the file');
    assert.equal(report.denied.code, 'ERR_ACCESS_DENIED');
    assert.equal(report.denied.resource, secret);
    assert.equal(report.unknownRole, 'ERR_INVALID_ARG_VALUE');
    assert.equal(report.content, 'for the browser only');
    assert.equal(report.browserPid, sup.handle('browser')!.pid);

    // The browser dies while serving a call: the caller hears of it.
    const restarted = nextEvent(sup, 'restarted', (e) => e.name === 'browser');
    await renderer.send({ cmd: 'die-while-serving' });
    const failure = (await renderer.receive(T)) as any;
    assert.equal(failure.code, 'ERR_MULTIPROC_CLOSED', JSON.stringify(failure));
    assert.match(failure.message, /role 'browser' \(browser#0\) exited/);
    await restarted;

    // The restarted browser serves the same renderer, over the same relay.
    await renderer.send({ cmd: 'again' });
    const again = (await renderer.receive(T)) as any;
    assert.equal(again.content, 'for the browser only');
    assert.equal(again.browserPid, sup.handle('browser')!.pid);
    assert.notEqual(again.browserPid, report.browserPid);
    assert.equal(sup.children().find((c) => c.name === 'renderer')!.restarts, 0);
  } finally {
    await sup.close();
  }
});
