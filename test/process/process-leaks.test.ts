// Nothing left behind: no live children, no open descriptors, after close()
// and after children that end on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { spawn } from '../../src/process/spawn.js';
import { leakGuard, liveChildren } from '../helpers/leak-guard.js';
import { childEnv, fixture, reap, within } from './helpers.js';

leakGuard();

const openFds = (): number => readdirSync('/proc/self/fd').length;

async function settle(baseline: number): Promise<number> {
  // Sockets close on the next turns of the event loop.
  for (let i = 0; i < 100 && openFds() > baseline; i++) await new Promise((r) => setTimeout(r, 20));
  return openFds();
}

test('close() on many children leaves no process and no descriptor', async () => {
  const baseline = openFds();
  const handles = Array.from({ length: 12 }, (_, i) => spawn(fixture('echo'), { env: childEnv, name: `w${i}`, channels: { a: 'stream', b: 'stream' } }));
  try {
    await within(Promise.all(handles.map((h) => h.ready)), 60000, 'all ready');
    assert.ok(openFds() > baseline);
    const exits = await within(Promise.all(handles.map((h) => h.close())), 60000, 'all closed');
    assert.deepEqual(new Set(exits.map((e) => e.reason)), new Set(['clean-exit']));
    assert.deepEqual(liveChildren(), []);
    assert.equal(await settle(baseline), baseline);
  } finally {
    await reap(...handles);
  }
});

test('children that end on their own release their channels without close()', async () => {
  const baseline = openFds();
  const handles = Array.from({ length: 6 }, () => spawn(fixture('behave'), { env: childEnv, args: ['exit-0'], channels: { a: 'stream' } }));
  try {
    const exits = await within(Promise.all(handles.map((h) => h.exited)), 60000, 'all exited');
    assert.deepEqual(new Set(exits.map((e) => e.reason)), new Set(['clean-exit']));
    assert.equal(await settle(baseline), baseline);
  } finally {
    await reap(...handles);
  }
});

test('a child whose module is done exits by itself: spawn() keeps nothing open in it', async () => {
  // echo.ts waits on its control channel, so it stays; behave.ts 'exit-0' has
  // nothing pending after ready(), so only the library could keep it alive.
  const h = spawn(fixture('behave'), { env: childEnv, args: ['exit-0'], channels: { a: 'stream' } });
  try {
    assert.equal((await within(h.exited, 20000, 'exit')).reason, 'clean-exit');
  } finally {
    await reap(h);
  }
});
