/** `multiproc stat NAME`: everything known about one object. */
import { Command } from 'commander';
import { statResource, type ResourceStat } from '../resources/inspect.js';
import { formatAge, formatOwner, formatSize, toJson } from './format.js';

function show(r: ResourceStat): string {
  const lines: Array<[string, string]> = [
    ['kind', r.kind],
    ['name', r.name],
    ['exists', r.exists ? 'yes' : 'no (only its record is left)'],
    ['owner', formatOwner(r)],
    ['users', r.userPids === null ? 'unknown' : r.userPids.length === 0 ? '0' : `${r.userPids.length} (pids ${r.userPids.join(', ')})`],
    ['size', r.size === null ? '-' : `${r.size} (${formatSize(r.size)})`],
    ['created', `${r.created.toISOString()} (${formatAge(r.ageMs)} ago)`],
    ['removable', r.removable ? 'yes (owner dead, nobody has it open)' : 'no'],
    ['tree', r.record.tree],
  ];
  if (r.record.ino !== undefined) lines.push(['inode', String(r.record.ino)]);
  const q = r.queue;
  if (q !== undefined) {
    const d = (v: Date | null): string => (v === null ? '-' : v.toISOString());
    const n = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : String(v));
    lines.push(
      ['backend', q.backend],
      ['messages', String(q.messages)],
      ['bytes', n(q.bytes)],
      ['capacity (messages)', n(q.capacityMessages)],
      ['capacity (bytes)', n(q.capacityBytes)],
      ['max message size', String(q.maxMessageSize)],
      ['last send pid', n(q.lastSendPid)],
      ['last receive pid', n(q.lastReceivePid)],
      ['last send', d(q.lastSendTime)],
      ['last receive', d(q.lastReceiveTime)],
      ['changed', d(q.changeTime)],
      ['mode', q.mode === null ? '-' : `0${q.mode.toString(8)}`],
    );
    if (q.key !== undefined) lines.push(['key', `0x${(q.key >>> 0).toString(16).padStart(8, '0')}`], ['id', n(q.id)]);
    if (q.repairs !== undefined) lines.push(['repairs', String(q.repairs)], ['lost', n(q.lost)]);
  }
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${v}`).join('\n');
}

/** The `stat` command. */
export function statCommand(): Command {
  return new Command('stat')
    .description("show one object's full statistics (queues: msqid_ds-like fields)")
    .argument('<name>', "kernel name ('/jobs', a path) or the name given to multiproc ('jobs')")
    .option('--json', 'print JSON (an array: a name may match several objects)')
    .action((name: string, opts: { json?: boolean }) => {
      const found = statResource(name);
      if (opts.json === true) {
        process.stdout.write(`${toJson(found)}\n`);
      } else if (found.length > 0) {
        process.stdout.write(`${found.map(show).join('\n\n')}\n`);
      }
      if (found.length === 0) {
        process.stderr.write(`multiproc stat: no object named '${name}' in the registry (see multiproc ls)\n`);
        process.exitCode = 1;
      }
    });
}
