/**
 * Codec micro-benchmark: nanoseconds per encode + decode of a few typical
 * messages, plain `v8.serialize`/`v8.deserialize` (the `structured` codec
 * before its fast path) against the codecs. One process, no transport.
 *
 *   node dist/bench/codec/run.js [--rounds N] [--ms MS]
 *
 * Each cell is the fastest of N rounds (default 300) of about MS milliseconds
 * (default 1) each: on a busy machine, short rounds are the ones that other
 * work does not interrupt.
 */
import os from 'node:os';
import { deserialize, serialize } from 'node:v8';
import { codecs, type Codec } from '../../src/channel/codec.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const rounds = arg('--rounds', 300);
const ms = arg('--ms', 1);

const v8codec: Codec<unknown> = { name: 'v8', encode: (v) => serialize(v), decode: (b) => deserialize(b) };

const values: [string, unknown][] = [
  ['12345', 12345],
  ['1.5', 1.5],
  ["'hello'", 'hello'],
  ['rpc call [0, 42, "echo", [7]]', [0, 42, 'echo', [7]]],
  ["rpc result [1, 42, 'ok']", [1, 42, 'ok']],
  ["{a:1,b:'x',c:[true,null]}", { a: 1, b: 'x', c: [true, null] }],
  ['{id, name, tags[3], score} x 10', Array.from({ length: 10 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b', 'c'], score: i / 3 }))],
  ['unicode string (40 chars)', 'Grüße, 世界! 😀 — naïve café façade 1234'],
  ['Buffer 256 B', Buffer.alloc(256, 7)],
  ['Date (falls back)', new Date(0)],
  ['Map (falls back)', new Map([[1, 'a']])],
];

function nsPerOp(codec: Codec<unknown>, value: unknown): number {
  let sink = 0;
  // Warm up (the optimizing compiler), then calibrate a batch to ~ms/10.
  for (let i = 0; i < 20000; i++) sink ^= (codec.decode(codec.encode(value)) === undefined ? 1 : 0);
  let batch = 10;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) sink ^= (codec.decode(codec.encode(value)) === undefined ? 1 : 0);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (dt > ms / 10) break;
    batch *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let dt = 0;
    while (dt < ms * 1e6) {
      for (let i = 0; i < batch; i++) sink ^= (codec.decode(codec.encode(value)) === undefined ? 1 : 0);
      n += batch;
      dt = Number(process.hrtime.bigint() - t0);
    }
    samples.push(dt / n);
  }
  if (sink === 42) console.log('');
  return Math.min(...samples);
}

const load0 = os.loadavg()[0]!;
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'}, load average ${load0.toFixed(2)}`);
const cols = [v8codec, codecs.structured, codecs.msgpack, codecs.json];
console.log(['value'.padEnd(34), ...cols.map((c) => `${c.name} ns`.padStart(13)), 'v8/structured'.padStart(14)].join(''));
for (const [name, value] of values) {
  const cells = cols.map((c) => {
    try {
      return nsPerOp(c, value);
    } catch {
      return NaN;
    }
  });
  const ratio = cells[0]! / cells[1]!;
  console.log([name.padEnd(34), ...cells.map((v) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a').padStart(13)), `${ratio.toFixed(1)}x`.padStart(14)].join(''));
}
console.log(`load average at the end ${os.loadavg()[0]!.toFixed(2)}`);
