/**
 * Finds and loads the compiled addon. A missing addon, or one built for
 * another Node ABI, fails with a message that says how to rebuild.
 *
 * @internal
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from '../errors.js';

function packageRoot(): string {
  // Compiled to dist/src/binding/load.js; sources live at src/binding/load.ts.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  throw new NativeLoadError('cannot find the multiproc package root (binding.gyp)');
}

/** @internal */
export function loadAddon(): unknown {
  if (process.platform !== 'linux') {
    throw new NativeLoadError(
      `multiproc supports Linux only for now (this is ${process.platform}); the native seam is src/native/`,
    );
  }
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  const candidates = [
    process.env.MULTIPROC_ADDON,
    join(root, 'build', 'Release', 'multiproc.node'),
    join(root, 'build', 'Debug', 'multiproc.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const found = candidates.find((p) => existsSync(p));
  const rebuild = `rebuild it with \`npm rebuild multiproc\` (or \`npm run install\` in ${root}); ` +
    'it needs g++, make, python3 and the headers of the Node that runs it';
  if (found === undefined) {
    throw new NativeLoadError(`the multiproc native addon is not built: ${rebuild}`);
  }
  try {
    return require(found);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_DLOPEN_DISABLED') {
      throw new NativeLoadError(
        'native addons are disabled in this process (Node\'s permission model without --allow-addons): ' +
          "a sandboxed child imports 'multiproc/child', which needs no addon, or is spawned with permissions.addons: true",
        { cause: err },
      );
    }
    const message = (err as Error).message ?? String(err);
    const abi = /NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(message);
    throw new NativeLoadError(
      abi
        ? `the multiproc native addon at ${found} was built for another Node.js (this is ${process.version}, ABI ${process.versions.modules}): ${rebuild}`
        : `cannot load the multiproc native addon at ${found}: ${message}; ${rebuild}`,
      { cause: err },
    );
  }
}
