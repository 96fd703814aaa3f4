// Which methods may be called: own and prototype methods only; never
// constructor, __proto__ or what every object inherits; getters never run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NoSuchMethodError, rpcClient } from '../../src/index.js';
import { rpcPair } from '../helpers/rpc-pair.js';
import { leakGuard } from '../helpers/leak-guard.js';

leakGuard();

class Base {
  inherited(): string {
    return 'from base';
  }
}
class Service extends Base {
  static shared(): string {
    return 'static';
  }
  value = 42;
  getterRuns = 0;
  own = (): string => 'own arrow';
  method(): string {
    return 'prototype method';
  }
  get computed(): () => string {
    this.getterRuns++;
    return () => 'from a getter';
  }
}

async function noSuchMethod(p: Promise<unknown>, method: string): Promise<void> {
  await assert.rejects(p, (e: any) => {
    assert.ok(e instanceof NoSuchMethodError, `${method}: ${e}`);
    assert.equal(e.code, 'ERR_MULTIPROC_NO_SUCH_METHOD');
    assert.equal(e.method, method);
    return true;
  });
}

test('own, prototype and inherited class methods are callable', async () => {
  const { remote, cleanup } = await rpcPair(new Service());
  try {
    assert.equal(await remote.own(), 'own arrow');
    assert.equal(await remote.method(), 'prototype method');
    assert.equal(await remote.inherited(), 'from base');
  } finally {
    cleanup();
  }
});

test('unknown names, non-function properties and getters answer ERR_MULTIPROC_NO_SUCH_METHOD; getters are not run', async () => {
  const service = new Service();
  const { client, cleanup } = await rpcPair(service);
  try {
    await noSuchMethod(client.call('missing'), 'missing');
    await noSuchMethod(client.call('value'), 'value');
    await noSuchMethod(client.call('computed'), 'computed');
    await noSuchMethod(client.call(''), '');
    assert.equal(service.getterRuns, 0);
  } finally {
    cleanup();
  }
});

test('constructor, __proto__ and Object.prototype members are never callable', async () => {
  const service = new Service();
  const { remote, client, cleanup } = await rpcPair(service);
  try {
    for (const name of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__defineSetter__', '__lookupGetter__']) {
      await noSuchMethod(client.call(name), name);
    }
    await noSuchMethod((remote as any).constructor(), 'constructor');
    // Nothing was changed on the exposed object or its prototypes.
    assert.equal(service.value, 42);
    assert.equal(Object.getPrototypeOf(service), Service.prototype);
  } finally {
    cleanup();
  }
});

test('an exposed class serves its static methods, not Function.prototype (call, apply, bind)', async () => {
  const { client, cleanup } = await rpcPair(Service);
  try {
    assert.equal(await client.call('shared'), 'static');
    for (const name of ['call', 'apply', 'bind', 'toString', 'constructor', 'prototype', 'name']) {
      await noSuchMethod(client.call(name), name);
    }
  } finally {
    cleanup();
  }
});

test('methods the object defines itself under inherited names are callable; null-prototype objects work', async () => {
  const api = Object.assign(Object.create(null) as Record<string, () => string>, {
    toString: () => 'my own toString',
    hasOwnProperty: () => 'my own hasOwnProperty',
  });
  const { client, cleanup } = await rpcPair(api);
  try {
    assert.equal(await client.call('toString'), 'my own toString');
    assert.equal(await client.call('hasOwnProperty'), 'my own hasOwnProperty');
    await noSuchMethod(client.call('valueOf'), 'valueOf');
  } finally {
    cleanup();
  }
});

test('a method added after expose() is callable; a removed one is not', async () => {
  const api: Record<string, unknown> = { a: () => 'a' };
  const { remote, cleanup } = await rpcPair(api);
  try {
    api.b = () => 'b';
    assert.equal(await rpcClient(remote).call('b'), 'b');
    delete api.a;
    await noSuchMethod(rpcClient(remote).call('a'), 'a');
  } finally {
    cleanup();
  }
});
