/** `multiproc ls`: every named object multiproc created on this host (for this user). */
import { Command } from 'commander';
import { listResources, resourceRegistry } from '../resources/inspect.js';
import { formatAge, formatOwner, formatSize, table, toJson } from './format.js';

/** The `ls` command. */
export function lsCommand(): Command {
  return new Command('ls')
    .description('list the named objects multiproc created: kind, name, owner, users, size, age, queue depth')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const list = listResources();
      if (opts.json === true) {
        process.stdout.write(`${toJson(list)}\n`);
        return;
      }
      const reg = resourceRegistry();
      if (list.length === 0) {
        process.stdout.write(reg.path === null ? 'the registry is turned off (MULTIPROC_REGISTRY_DIR=off)\n' : `no objects (registry: ${reg.path})\n`);
        return;
      }
      const rows = list.map((r) => [
        r.kind,
        r.exists ? r.name : `${r.name} (gone)`,
        formatOwner(r),
        r.users === null ? '?' : String(r.users),
        formatSize(r.size),
        formatAge(r.ageMs),
        r.depth === null ? '-' : String(r.depth),
      ]);
      process.stdout.write(`${table(['KIND', 'NAME', 'OWNER', 'USERS', 'SIZE', 'AGE', 'DEPTH'], rows)}\n`);
    });
}
