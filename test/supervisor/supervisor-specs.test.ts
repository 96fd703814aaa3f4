// Bad specs and options fail at construction with Node-style codes, before
// anything starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { connectRole, serveRole } from '../../src/supervisor/child.js';
import { fixture } from './helpers.js';

const ok = { name: 'w', module: fixture('member') };
const make = (children: unknown[], extra: object = {}) => () => new Supervisor({ handleSignals: false, children, ...extra } as any);

test('bad child specs throw TypeError / RangeError with codes', () => {
  const cases: Array<[unknown[], string, RegExp?]> = [
    [[null], 'ERR_INVALID_ARG_TYPE'],
    [[{ module: fixture('member') }], 'ERR_INVALID_ARG_TYPE', /name/],
    [[{ name: 'a b', module: 'x.js' }], 'ERR_INVALID_ARG_VALUE', /name/],
    [[{ name: 'w' }], 'ERR_INVALID_ARG_TYPE', /module/],
    [[{ name: 'w', module: '' }], 'ERR_INVALID_ARG_VALUE'],
    [[{ ...ok, restart: 'sometimes' }], 'ERR_INVALID_ARG_VALUE', /restart/],
    [[{ ...ok, count: 0 }], 'ERR_OUT_OF_RANGE', /count/],
    [[{ ...ok, count: 1.5 }], 'ERR_OUT_OF_RANGE'],
    [[{ ...ok, count: '2' }], 'ERR_INVALID_ARG_TYPE'],
    [[{ ...ok, shutdownTimeout: -1 }], 'ERR_OUT_OF_RANGE'],
    [[{ ...ok, shutdownTimeout: Infinity }], 'ERR_INVALID_ARG_VALUE'],
    [[{ ...ok, heartbeat: { interval: 0, timeout: 10 } }], 'ERR_OUT_OF_RANGE', /interval/],
    [[{ ...ok, heartbeat: { interval: 10 } }], 'ERR_INVALID_ARG_TYPE', /timeout/],
    [[{ ...ok, heartbeat: { interval: 10, timeout: 10, every: 1 } }], 'ERR_INVALID_ARG_VALUE'],
    [[{ ...ok, permissions: { fsRead: 'x' } }], 'ERR_INVALID_ARG_TYPE'],
    [[{ ...ok, permissions: { network: true } }], 'ERR_INVALID_ARG_VALUE'],
    [[{ ...ok, args: [1] }], 'ERR_INVALID_ARG_TYPE'],
    // What spawn() refuses is refused here too, before the children listed before it were started.
    [[ok, { ...ok, name: 'v', stdio: 'bogus' }], 'ERR_INVALID_ARG_VALUE', /children\[1\]\.stdio/],
    [[{ ...ok, stdio: ['ignore', 'inherit'] }], 'ERR_INVALID_ARG_VALUE', /stdio/],
    [[{ ...ok, stdio: [0, 1, -2] }], 'ERR_INVALID_ARG_VALUE', /stdio\[2\]/],
    [[ok, { ...ok, name: 'v', module: new URL('http://example.com/x.js') }], 'ERR_INVALID_ARG_VALUE', /children\[1\]\.module.*file: URL/],
    [[{ ...ok, module: 42 }], 'ERR_INVALID_ARG_TYPE', /module/],
    [[{ ...ok, restrat: 'permanent' }], 'ERR_INVALID_ARG_VALUE', /restrat/],
    [[ok, { ...ok }], 'ERR_INVALID_ARG_VALUE', /Two children/],
    [[{ ...ok, connects: ['nobody'] }], 'ERR_INVALID_ARG_VALUE', /nobody/],
    [[{ ...ok, connects: ['w'] }], 'ERR_INVALID_ARG_VALUE', /itself/],
    [[{ ...ok, connects: 'x' }], 'ERR_INVALID_ARG_TYPE'],
  ];
  for (const [children, code, message] of cases) {
    assert.throws(make(children), (err: any) => {
      assert.equal(err.code, code, `${JSON.stringify(children)}: ${err.message}`);
      assert.ok(err instanceof (code === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError));
      if (message) assert.match(err.message, message);
      return true;
    });
  }
});

test('bad supervisor options throw with codes; a supervisor nests once', () => {
  assert.throws(() => new Supervisor(undefined as any), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(make([ok], { strategy: 'all_for_one' }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(make([ok], { maxRestarts: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(make([ok], { period: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(make([ok], { backoff: { initial: -5 } }), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(make([ok], { backoff: { start: 5 } }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(make([ok], { handleSignals: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(make([ok], { name: '' }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new Supervisor({ children: 'w' } as any), { code: 'ERR_INVALID_ARG_TYPE' });
  const inner = new Supervisor({ name: 'inner', children: [ok] });
  assert.throws(make([{ ...ok, connects: ['inner'] }, inner]), { code: 'ERR_INVALID_ARG_VALUE' }, 'a nested supervisor is not a role');
  assert.throws(make([inner, inner]), { code: 'ERR_INVALID_ARG_VALUE' });
  // The failed constructions above did not claim it.
  const root = new Supervisor({ handleSignals: false, children: [inner] });
  assert.equal(root.children()[0]!.kind, 'supervisor');
  assert.throws(make([inner]), { code: 'ERR_INVALID_ARG_VALUE' }, 'already nested');
  assert.throws(() => root.handle('nobody'), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(root.handle('inner'), undefined);
});

test('the child-side role functions outside a supervised child', async () => {
  await assert.rejects(connectRole('browser'), { code: 'ERR_INVALID_STATE' });
  await assert.rejects(serveRole({}), { code: 'ERR_INVALID_STATE' });
  await assert.rejects(serveRole(null as any), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(connectRole(1 as any), { code: 'ERR_INVALID_ARG_TYPE' });
});
