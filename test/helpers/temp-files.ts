/** Temporary files for tests: one directory per test file, removed after its tests. */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueName } from './names.js';

export interface TempDir {
  /** The directory, under os.tmpdir(). */
  readonly dir: string;
  /** A fresh path inside the directory (the file is not created). */
  file(tag?: string): string;
}

/** Creates a directory under os.tmpdir() and removes it, with its contents, after the calling file's tests. */
export function tempDir(tag = 'x'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), `multiproc-${tag}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, file: (name = 'f') => join(dir, uniqueName(name)) };
}
