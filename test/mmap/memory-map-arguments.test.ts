import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { MemoryMap } from '../../src/index.js';
import { leakGuard } from '../helpers/leak-guard.js';
import { tempDir } from '../helpers/temp-files.js';

leakGuard();
const tmp = tempDir('mmap-args');
const PAGE = MemoryMap.pageSize;

const typeError = (code: string) => ({ name: 'TypeError', code });
const rangeError = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };

test('open() rejects bad arguments before touching the file', () => {
  // The file does not exist: an argument checked too late would surface as ENOENT instead.
  const file = tmp.file('missing');
  const open = MemoryMap.open as (...args: unknown[]) => MemoryMap;
  assert.throws(() => open(5), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(undefined), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(Buffer.from(file)), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(''), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(`${file}\0x`), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(new URL('https://example.com/file')), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(file, 'read'), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(file, null), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(file, { acces: 'read' }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(file, { readOnly: true }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(file, { access: 'write' }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(file, { access: 'r+' }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => open(file, { offset: '0' }), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(file, { offset: -PAGE }), rangeError);
  assert.throws(() => open(file, { offset: 1.5 }), rangeError);
  assert.throws(() => open(file, { offset: 100 }), { ...rangeError, message: /multiple of the page size/ });
  assert.throws(() => open(file, { length: 0 }), rangeError);
  assert.throws(() => open(file, { length: -1 }), rangeError);
  assert.throws(() => open(file, { length: NaN }), rangeError);
  assert.throws(() => open(file, { length: 10n }), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => open(file), { code: 'ENOENT' });
});

test('create() rejects bad arguments before creating the file', () => {
  const file = tmp.file('never');
  const create = MemoryMap.create as (...args: unknown[]) => MemoryMap;
  assert.throws(() => create(file), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => create(file, '4096'), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => create(file, 0), rangeError);
  assert.throws(() => create(file, -1), rangeError);
  assert.throws(() => create(file, 1.5), rangeError);
  assert.throws(() => create(file, Infinity), rangeError);
  assert.throws(() => create(42, 4096), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => create(file, 4096, { mode: 0o1000 }), rangeError);
  assert.throws(() => create(file, 4096, { mode: '600' }), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => create(file, 4096, { creation: 'always' }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => create(file, 4096, { access: 'read' }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => create(file, 4096, { size: 4096 }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.equal(existsSync(file), false);
});

test('view() and flush() reject bad arguments', () => {
  const file = tmp.file('small');
  writeFileSync(file, Buffer.alloc(1000));
  using map = MemoryMap.open(file);
  const view = map.view.bind(map) as (...args: unknown[]) => Uint8Array;
  const flush = map.flush.bind(map) as (...args: unknown[]) => void;
  assert.throws(() => view(), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => view('0', 1), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => view(0), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => view(-1, 1), rangeError);
  assert.throws(() => view(0.5, 1), rangeError);
  assert.throws(() => view(1001, 0), rangeError);
  assert.throws(() => view(0, 1001), rangeError);
  assert.throws(() => view(999, 2), rangeError);
  assert.throws(() => flush('sync'), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => flush({ sync: 'yes' }), typeError('ERR_INVALID_ARG_TYPE'));
  assert.throws(() => flush({ async: true }), typeError('ERR_INVALID_ARG_VALUE'));
  assert.throws(() => flush({ offset: 1001 }), rangeError);
  assert.throws(() => flush({ offset: -1 }), rangeError);
  assert.throws(() => flush({ length: 1001 }), rangeError);
  assert.throws(() => flush({ offset: 500, length: 501 }), rangeError);
});

test('a file: URL is accepted as the path', () => {
  const file = tmp.file('url');
  writeFileSync(file, 'hello');
  using map = MemoryMap.open(pathToFileURL(file), { access: 'read' });
  assert.equal(map.path, file);
  assert.equal(Buffer.from(new Uint8Array(map.buffer)).toString(), 'hello');
});
