// The pool's task queue: FIFO order across compaction, items put back at the
// front, removal from the middle, and emptying.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskQueue } from '../../src/pool/task-queue.js';

/** Drains `q` front first. */
function drain<T>(q: TaskQueue<T>): T[] {
  const out: T[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x);
  return out;
}

test('FIFO through many pushes and shifts (with compaction), and at() looks without taking', () => {
  const q = new TaskQueue<number>();
  assert.equal(q.shift(), undefined);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 1000; i++) q.push(next++);
    for (let i = 0; i < 900; i++) assert.equal(q.shift(), expect++);
    assert.equal(q.length, next - expect);
    assert.equal(q.at(0), expect);
    assert.equal(q.at(1), expect + 1);
    assert.equal(q.at(q.length), undefined);
    assert.equal(q.at(-1), undefined);
  }
  assert.deepEqual(drain(q), Array.from({ length: next - expect }, (_, i) => expect + i));
  assert.equal(q.length, 0);
});

test('items put back go to the front in their order, with or without free slots there', () => {
  const q = new TaskQueue<string>();
  for (const x of ['a', 'b', 'c', 'd']) q.push(x);
  assert.equal(q.shift(), 'a');
  assert.equal(q.shift(), 'b');
  q.unshift('b');
  q.unshiftAll(['x', 'y', 'z']);
  assert.deepEqual(drain(q), ['x', 'y', 'z', 'b', 'c', 'd']);
  q.unshift('only');
  q.push('last');
  assert.deepEqual(q.takeAll(), ['only', 'last']);
  assert.equal(q.length, 0);
});

test('remove() takes an item out of the middle; takeAll() empties', () => {
  const q = new TaskQueue<object>();
  const items = Array.from({ length: 10 }, (_, i) => ({ i }));
  for (const x of items) q.push(x);
  q.shift();
  assert.equal(q.remove(items[5]!), true);
  assert.equal(q.remove(items[5]!), false);
  assert.equal(q.remove(items[0]!), false, 'already taken');
  assert.deepEqual(q.takeAll(), items.filter((_, i) => i !== 0 && i !== 5));
  assert.equal(q.length, 0);
  assert.equal(q.shift(), undefined);
});
