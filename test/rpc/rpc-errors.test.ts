// Errors thrown by exposed methods come back with class, code, message,
// properties, cause chain and the remote stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClosedError, IpcError, MessageTooLargeError, RemoteError, TimeoutError } from '../../src/errors.js';
import { rpcPair } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

class ValidationError extends Error {}
class HttpError extends Error {
  override name = 'HttpError';
  status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

function throwsTypeError(): never {
  const e = new TypeError('bad input') as TypeError & { code: string; field: string; details: unknown };
  e.code = 'E_BAD_INPUT';
  e.field = 'age';
  e.details = { min: 0, max: 150, seen: [-1] };
  throw e;
}

const api = {
  typeError: throwsTypeError,
  rangeError() {
    throw new RangeError('too far');
  },
  syntaxError() {
    JSON.parse('{');
  },
  async asyncFailure() {
    await new Promise((r) => setImmediate(r));
    throw new Error('later');
  },
  custom() {
    throw new ValidationError('not valid');
  },
  named() {
    throw new HttpError('not found', 404);
  },
  coded() {
    throw Object.assign(new ValidationError('coded'), { code: 'E_VALIDATION' });
  },
  renamed() {
    const e = new Error('renamed');
    e.name = 'ConfigError';
    throw e;
  },
  chain() {
    const root = new RangeError('root cause');
    const mid = new HttpError('middle', 500);
    (mid as any).cause = root;
    throw new Error('top', { cause: mid });
  },
  valueCause() {
    throw new Error('with a plain cause', { cause: { reason: 'quota', left: 0 } });
  },
  aggregate() {
    throw new AggregateError([new TypeError('one'), new ValidationError('two')], 'several');
  },
  timeout() {
    throw new TimeoutError('waited too long', 250);
  },
  closed() {
    throw new ClosedError('gone', { cause: new Error('why') });
  },
  ipcBase() {
    throw new IpcError('E_BASE', 'a base IpcError');
  },
  tooLarge() {
    throw new MessageTooLargeError('big', 10, 5);
  },
  system() {
    readFileSync('/nonexistent/multiproc-rpc-test');
  },
  nonError() {
    throw { reason: 'plain object' };
  },
  string() {
    throw 'just a string';
  },
  dom() {
    throw new DOMException('nope', 'NotSupportedError');
  },
  unencodableProp() {
    throw Object.assign(new Error('has a function'), { code: 'E_FN', fn: () => 1 });
  },
  unencodableResult() {
    return { fn: () => 1 };
  },
  echo: (x: unknown) => x,
};

async function caught(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

test('built-in classes are re-created with code, message and own properties', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.typeError());
    assert.equal(e instanceof TypeError, true);
    assert.equal(e.name, 'TypeError');
    assert.equal(e.message, 'bad input');
    assert.equal(e.code, 'E_BAD_INPUT');
    assert.equal(e.field, 'age');
    assert.deepEqual(e.details, { min: 0, max: 150, seen: [-1] });
    assert.equal((await caught(remote.rangeError())) instanceof RangeError, true);
    const s = await caught(remote.syntaxError());
    assert.equal(s instanceof SyntaxError, true);
    const later = await caught(remote.asyncFailure());
    assert.equal(later.constructor, Error);
    assert.equal(later.message, 'later');
  } finally {
    cleanup();
  }
});

test('the remote stack is in remoteStack and appended to the local stack, which starts at the caller', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.typeError());
    assert.match(e.remoteStack, /^TypeError: bad input\n/);
    assert.match(e.remoteStack, /throwsTypeError/);
    assert.doesNotMatch(e.remoteStack, /rpc\/expose\.js/);
    assert.ok(e.stack.endsWith(e.remoteStack));
    assert.match(e.stack, /^TypeError: bad input\n/);
    assert.match(e.stack, /rpc-errors\.test\.js/);
    assert.match(e.stack, /From the remote side: TypeError/);
    assert.equal(Object.keys(e).includes('remoteStack'), false);
  } finally {
    cleanup();
  }
});

test('other classes become RemoteError named after the remote class; code defaults to ERR_MULTIPROC_REMOTE', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const custom = await caught(remote.custom());
    assert.equal(custom instanceof RemoteError, true);
    assert.equal(custom instanceof IpcError, true);
    assert.equal(custom.name, 'ValidationError');
    assert.equal(custom.code, 'ERR_MULTIPROC_REMOTE');
    assert.equal(custom.message, 'not valid');
    assert.match(custom.stack, /^ValidationError: not valid\n/);

    const named = await caught(remote.named());
    assert.equal(named.name, 'HttpError');
    assert.equal(named.status, 404);

    const coded = await caught(remote.coded());
    assert.equal(coded.name, 'ValidationError');
    assert.equal(coded.code, 'E_VALIDATION');

    const renamed = await caught(remote.renamed());
    assert.equal(renamed.constructor, Error);
    assert.equal(renamed.name, 'ConfigError');
  } finally {
    cleanup();
  }
});

test('cause chains come back, error and non-error causes alike', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.chain());
    assert.equal(e.message, 'top');
    assert.equal(e.cause.name, 'HttpError');
    assert.equal(e.cause instanceof RemoteError, true);
    assert.equal(e.cause.status, 500);
    assert.equal(e.cause.cause instanceof RangeError, true);
    assert.equal(e.cause.cause.message, 'root cause');
    assert.match(e.cause.cause.remoteStack, /RangeError: root cause/);
    const v = await caught(remote.valueCause());
    assert.deepEqual(v.cause, { reason: 'quota', left: 0 });
  } finally {
    cleanup();
  }
});

test('AggregateError keeps its errors; DOMException its name', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.aggregate());
    assert.equal(e instanceof AggregateError, true);
    assert.equal(e.message, 'several');
    assert.equal(e.errors.length, 2);
    assert.equal(e.errors[0] instanceof TypeError, true);
    assert.equal(e.errors[1].name, 'ValidationError');
    const d = await caught(remote.dom());
    assert.equal(d instanceof DOMException, true);
    assert.equal(d.name, 'NotSupportedError');
  } finally {
    cleanup();
  }
});

test("multiproc's own errors come back as their class with their properties", async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const t = await caught(remote.timeout());
    assert.equal(t instanceof TimeoutError, true);
    assert.equal(t.code, 'ERR_MULTIPROC_TIMEOUT');
    assert.equal(t.timeout, 250);
    assert.ok(t.remoteStack);
    const c = await caught(remote.closed());
    assert.equal(c instanceof ClosedError, true);
    assert.equal(c.cause.message, 'why');
    const m = await caught(remote.tooLarge());
    assert.equal(m.name, 'MessageTooLargeError');
    assert.equal(m.code, 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
    assert.deepEqual([m.size, m.limit], [10, 5]);
    const b = await caught(remote.ipcBase());
    assert.equal(b.constructor, IpcError);
    assert.deepEqual([b.code, b.message], ['E_BASE', 'a base IpcError']);
  } finally {
    cleanup();
  }
});

test('system errors keep code, errno, syscall and path', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.system());
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.syscall, 'open');
    assert.equal(e.errno, -2);
    assert.equal(e.path, '/nonexistent/multiproc-rpc-test');
  } finally {
    cleanup();
  }
});

test('thrown non-errors arrive as RemoteError with the value', async () => {
  const { remote, cleanup } = await rpcPair(api);
  try {
    const o = await caught(remote.nonError());
    assert.equal(o instanceof RemoteError, true);
    assert.deepEqual(o.value, { reason: 'plain object' });
    assert.match(o.message, /plain object/);
    const s = await caught(remote.string());
    assert.equal(s.value, 'just a string');
  } finally {
    cleanup();
  }
});

test('what the codec cannot carry: error properties are dropped, results and arguments are refused with a coded error', async () => {
  const { remote, client, server, cleanup } = await rpcPair(api);
  try {
    const e = await caught(remote.unencodableProp());
    assert.equal(e.message, 'has a function');
    assert.equal(e.code, 'E_FN');
    assert.equal(e.fn, undefined);
    const r = await caught(remote.unencodableResult());
    assert.equal(r instanceof TypeError, true);
    assert.equal(r.code, 'ERR_INVALID_RETURN_VALUE');
    assert.match(r.message, /unencodableResult\(\)/);
    const a = await caught(remote.echo(() => 1));
    assert.equal(a.code, 'ERR_INVALID_ARG_VALUE');
    assert.match(a.message, /echo\(\)/);
    assert.equal(await remote.echo('still fine'), 'still fine');
    assert.equal(client.pending, 0);
    assert.equal(server.pending, 0);
  } finally {
    cleanup();
  }
});

for (const codec of ['json', 'msgpack'] as const) {
  test(`errors over the ${codec} codec`, async () => {
    const { remote, cleanup } = await rpcPair(api, { channel: { codec } });
    try {
      const e = await caught(remote.typeError());
      assert.equal(e instanceof TypeError, true);
      assert.equal(e.code, 'E_BAD_INPUT');
      assert.deepEqual(e.details, { min: 0, max: 150, seen: [-1] });
      assert.match(e.remoteStack, /throwsTypeError/);
      const c = await caught(remote.chain());
      assert.equal(c.cause.cause instanceof RangeError, true);
      const t = await caught(remote.timeout());
      assert.equal(t instanceof TimeoutError, true);
      assert.equal(t.timeout, 250);
    } finally {
      cleanup();
    }
  });
}

test('a result too large for the channel comes back as ERR_MULTIPROC_MESSAGE_TOO_LARGE', async () => {
  const { remote, cleanup } = await rpcPair({ make: (n: number) => new Uint8Array(n) }, { channel: { maxMessageSize: 4096 } });
  try {
    const e = await caught(remote.make(10000));
    assert.equal(e.code, 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
    assert.ok(e.size > 4096);
    const big = await caught(remote.make.with({})(new Uint8Array(10000) as any));
    assert.equal(big.code, 'ERR_MULTIPROC_MESSAGE_TOO_LARGE');
    assert.equal((await remote.make(10)).length, 10);
  } finally {
    cleanup();
  }
});
