/**
 * spawn(): starts a Node process running an ES module, with a control channel
 * (a Unix socket pair on the child's fd 3), named channels, readiness,
 * graceful shutdown, classified exits, no orphans, and optional sandboxing
 * through Node's permission model.
 *
 * The child runs `node [permission flags] --import=<bootstrap> [execArgv]
 * <entry> <module URL> [args]`: bootstrap.ts sets the parent-death signal and
 * opens the control channel before anything else runs; entry.ts imports the
 * module and reports a failed import.
 */
import { spawn as spawnProcess, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { PassThrough, Stream, type Readable, type Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serialize } from 'node:v8';
import type { Socket } from 'node:net';
import type { Channel } from '../channel/channel.js';
import { resolveCodec, type CodecOption } from '../channel/codec.js';
import { validateMaxMessageSize } from '../channel/base-channel.js';
import {
  AbortError,
  ProcessExitedError,
  TimeoutError,
  typeError,
  validateBoolean,
  validateOptions,
  validateSignal,
  validateString,
  validateTimeout,
} from '../errors.js';
import { ControlChannel, deserializeError, type SystemMessage } from './control.js';
import { exitReason, type ExitReason } from './exit-reason.js';
import { SocketPairChannel } from './socket-pair-channel.js';
import { registryEnvKeys, sweep, treeId } from '../resources/registry.js';
import { describeChannel, transportOf, type ChannelDescriptor, type DescribeContext, type StreamDescriptor } from './transports.js';
import { native } from '../binding/native.js';
import { setLongTimeout, type LongTimeout } from '../long-timeout.js';

/** A channel that spawn() creates as its own socket pair. */
export interface StreamChannelSpec {
  kind: 'stream';
  /** Codec of both ends (default 'structured'). A custom codec must be given to the child's `parentChannel` too. */
  codec?: CodecOption<any>;
  /** Largest message, in bytes (default 64 MiB). */
  maxMessageSize?: number;
}

/**
 * What a child gets under one name: `'stream'` (a new socket pair), a
 * {@link StreamChannelSpec}, the descriptor of a named object the child opens
 * itself (a plain object `{ kind, ... }`), or any other object (a channel, an
 * endpoint) that a registered transport can describe (see `registerTransport`).
 */
export type ChannelSpec = 'stream' | StreamChannelSpec | ChannelDescriptor | Channel<any> | object;

/** Node's permission model for the child (`--permission`; `--experimental-permission` on Node 20). */
export interface ProcessPermissions {
  /**
   * Paths the child may read (files, or directories with everything below),
   * resolved against the parent's current directory; `'*'` for all. The
   * module itself, the multiproc package and its dependencies are added.
   */
  fsRead?: string[];
  /** Paths the child may write; `'*'` for all. */
  fsWrite?: string[];
  /** May start processes (`--allow-child-process`). Default false. */
  childProcess?: boolean;
  /** May start worker threads (`--allow-worker`). Default false. */
  worker?: boolean;
  /**
   * May load native addons (`--allow-addons`). Default true: multiproc's own
   * addon sets the parent-death signal in the child. With false (or on a Node
   * without `--allow-addons`), the child runs without it: use
   * `multiproc/child` there, and the control channel's end-of-file is then the
   * only parent-death signal.
   */
  addons?: boolean;
  /** May use WASI (`--allow-wasi`). Default false. */
  wasi?: boolean;
}

/** One of the child's stdio streams. */
export type StdioSpec = 'inherit' | 'pipe' | 'ignore' | number | Stream;

/** Options of {@link spawn}. */
export interface SpawnOptions {
  /** Arguments for the module: `process.argv.slice(2)` in the child. */
  args?: string[];
  /** The child's environment (default `process.env`); replaces, does not merge. */
  env?: NodeJS.ProcessEnv;
  /** A name for messages and for the child (`parent.name`); default the module's file name. */
  name?: string;
  /** Channels the child opens by name with `parentChannel(name)`. `'control'` is taken. */
  channels?: Record<string, ChannelSpec>;
  /** Run the child under Node's permission model. */
  permissions?: ProcessPermissions;
  /** Working directory of the child (default the parent's). */
  cwd?: string | URL;
  /**
   * stdin, stdout, stderr: `'inherit'`, `'pipe'`, `'ignore'`, an fd or a
   * stream; one value for all three, or an array. Default
   * `['ignore', 'inherit', 'inherit']`. stderr `'inherit'` is forwarded
   * through a pipe to the parent's stderr, so that the handle keeps its last
   * 8 KiB (out-of-memory detection, error reports); with `'pipe'` the handle's
   * `stderr` stream gets it and the tail is kept too; with an fd, a stream or
   * `'ignore'` there is no tail.
   */
  stdio?: StdioSpec | [StdioSpec, StdioSpec, StdioSpec];
  /** Node options for the child, e.g. `['--max-old-space-size=64']`. Default none (not inherited). */
  execArgv?: string[];
  /** Milliseconds until `ready` rejects with `ERR_MULTIPROC_TIMEOUT`. Default 30000; `Infinity` waits for ever. */
  readyTimeout?: number;
  /** Milliseconds `close()` waits after the shutdown request, and again after SIGTERM. Default 5000. */
  shutdownTimeout?: number;
  /**
   * Whether the child dies with its parent (default true): the kernel
   * SIGKILLs it when the parent thread that spawned it exits
   * (PR_SET_PDEATHSIG), and it kills itself when the control channel closes
   * without a shutdown request. With false, neither: the child outlives the
   * parent, and its channels simply end.
   */
  exitWithParent?: boolean;
}

/** How a child ended. */
export interface ChildExit {
  /** Exit code, or null (ended by a signal, or never started). */
  code: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
  /** The classification (see {@link ExitReason}). */
  reason: ExitReason;
  /**
   * The error behind an abnormal exit, when known: the uncaught exception the
   * child reported over the control channel (rebuilt with its name, message,
   * stack and code), or the spawn error.
   */
  error?: Error;
  /** The last 8 KiB of stderr, when the handle read it. */
  stderrTail?: string;
}

const TAIL = 8 * 1024;
const DEFAULT_READY_TIMEOUT = 30000;
const DEFAULT_SHUTDOWN_TIMEOUT = 5000;
/** After 'exit': how long to wait for the control socket and stderr to drain. */
const DRAIN_GRACE = 1000;

const bootstrapUrl = new URL('./bootstrap.js', import.meta.url).href;
const entryPath = fileURLToPath(new URL('./entry.js', import.meta.url));

// --- permission model -------------------------------------------------------

let packageRootCache: string | undefined;
function packageRoot(): string {
  if (packageRootCache !== undefined) return packageRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return (packageRootCache = dir);
    dir = dirname(dir);
  }
  return (packageRootCache = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'));
}

/**
 * Directories of the runtime dependencies a child may load (msgpackr by the
 * codecs, the NATS client by the package's entry point), and theirs, found
 * from the package's own `dependencies`. Node's permission model checks every
 * module file it reads (Node 22 and later also through the ESM loader).
 */
let dependencyDirsCache: string[] | undefined;
function dependencyDirs(): string[] {
  if (dependencyDirsCache !== undefined) return dependencyDirsCache;
  const out = new Set<string>();
  const visit = (fromDir: string, name: string): void => {
    // Node's lookup: node_modules/<name> here or in a parent directory (not
    // require.resolve: packages with "exports" may hide their package.json).
    let dir: string | undefined;
    for (let d = fromDir; ; d = dirname(d)) {
      const candidate = join(d, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        dir = candidate;
        break;
      }
      if (dirname(d) === d) break;
    }
    // Not installed (an optional dependency): the child will not load it either.
    if (dir === undefined || out.has(dir)) return;
    out.add(dir);
    // Modules are loaded from their real path (a linked node_modules, a pnpm store).
    try {
      out.add(realpathSync(dir));
    } catch {
      // gone meanwhile
    }
    let pkg: { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg;
    } catch {
      return;
    }
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dir, dep);
  };
  try {
    const root = packageRoot();
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(root, dep);
  } catch {
    // no package.json to read: only the package itself is allowed
  }
  return (dependencyDirsCache = [...out]);
}

function permissionFlag(): string {
  return process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission';
}

/** Whether this Node can allow addons under the permission model. @internal */
export function canAllowAddons(): boolean {
  return process.allowedNodeEnvironmentFlags.has('--allow-addons');
}

function validatePaths(value: unknown, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" option must be an array of paths`);
  return value.map((p, i) => {
    validateString(p, `${what}[${i}]`);
    if (p.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', `The "${what}[${i}]" path is empty`);
    return p === '*' ? p : resolve(p);
  });
}

/** Node flags for `permissions`, and whether the child can load the addon. @internal */
export function permissionFlags(permissions: ProcessPermissions, modulePath: string | undefined): { flags: string[]; addons: boolean } {
  const p = validateOptions<ProcessPermissions>(permissions, 'options.permissions', ['fsRead', 'fsWrite', 'childProcess', 'worker', 'addons', 'wasi']);
  const read = validatePaths(p.fsRead, 'permissions.fsRead');
  const write = validatePaths(p.fsWrite, 'permissions.fsWrite');
  const flag = (v: unknown, what: string): boolean => (v === undefined ? false : validateBoolean(v, `options.permissions.${what}`));
  const addons = (p.addons === undefined ? true : validateBoolean(p.addons, 'options.permissions.addons')) && canAllowAddons();
  const readAll = [...new Set([...read, packageRoot(), ...dependencyDirs(), ...(modulePath !== undefined ? [modulePath] : [])])];
  const flags = [permissionFlag()];
  for (const r of readAll) flags.push(`--allow-fs-read=${r}`);
  for (const w of [...new Set(write)]) flags.push(`--allow-fs-write=${w}`);
  if (flag(p.childProcess, 'childProcess')) flags.push('--allow-child-process');
  if (flag(p.worker, 'worker')) flags.push('--allow-worker');
  if (flag(p.wasi, 'wasi')) flags.push('--allow-wasi');
  if (addons) flags.push('--allow-addons');
  return { flags, addons };
}

// --- the kernel's OOM killer --------------------------------------------------

/**
 * How many processes the OOM killer has killed: in this process's cgroup (v2
 * memory.events) when readable, else system-wide (/proc/vmstat). Undefined
 * when neither can be read.
 */
function oomKillCount(): number | undefined {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (line !== undefined) {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(`/sys/fs/cgroup${line.slice(3).trim()}/memory.events`, 'utf8'));
      if (m) return Number(m[1]);
    }
  } catch {
    // cgroup v1, or not readable
  }
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux, or a sandbox
  }
  return undefined;
}

// --- argument checks ----------------------------------------------------------

/** Checks spawn()'s `module` (and a Supervisor spec's, named `name`, a `kind` 'option'). @internal */
export function validateModule(module: unknown, name = 'module', kind = 'argument'): { url: string; path: string } {
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw typeError('ERR_INVALID_ARG_VALUE', `The "${name}" ${kind} must be a file: URL. Received ${module.href}`);
    return { url: module.href, path: fileURLToPath(module) };
  }
  validateString(module, name);
  const m = module as string;
  if (m.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', `The "${name}" ${kind} must not be empty`);
  if (m.startsWith('file:')) return validateModule(new URL(m), name, kind);
  const path = isAbsolute(m) ? m : resolve(m);
  return { url: pathToFileURL(path).href, path };
}

function validateStringArray(value: unknown, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" option must be an array of strings`);
  value.forEach((v, i) => validateString(v, `${what}[${i}]`));
  return value as string[];
}

/** Checks spawn()'s `options.stdio` (and a Supervisor spec's, named `name`). @internal */
export function validateStdio(value: unknown, name = 'options.stdio'): [StdioSpec, StdioSpec, StdioSpec] {
  const one = (v: unknown, i: number): StdioSpec => {
    if (v === 'inherit' || v === 'pipe' || v === 'ignore') return v;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
    if (v instanceof Stream) return v;
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${name}[${i}]" option must be 'inherit', 'pipe', 'ignore', a file descriptor or a stream. Received ${String(v)}`);
  };
  if (value === undefined) return ['ignore', 'inherit', 'inherit'];
  if (Array.isArray(value)) {
    if (value.length !== 3) throw typeError('ERR_INVALID_ARG_VALUE', `The "${name}" array must have 3 entries: stdin, stdout, stderr`);
    return [one(value[0], 0), one(value[1], 1), one(value[2], 2)];
  }
  const v = one(value, 0);
  return [v, v, v];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function validateSignalName(signal: unknown): NodeJS.Signals | number {
  if (typeof signal === 'number' && Number.isInteger(signal) && signal >= 0) return signal;
  if (typeof signal === 'string' && signal in constants.signals) return signal as NodeJS.Signals;
  throw typeError('ERR_UNKNOWN_SIGNAL', `Unknown signal: ${String(signal)}`);
}

// --- the handle -----------------------------------------------------------------

interface Prepared {
  name: string;
  argv: string[];
  stdio: StdioOptions;
  stdioSpec: [StdioSpec, StdioSpec, StdioSpec];
  env: NodeJS.ProcessEnv;
  cwd: string | URL | undefined;
  hello: SystemMessage;
  /** stdio index -> name, for the channels spawn() creates. */
  streams: Array<{ name: string; index: number; spec: StreamChannelSpec }>;
  passed: Map<string, unknown>;
  afterSpawn: Array<() => void>;
  readyTimeout: number;
  shutdownTimeout: number;
}

/**
 * A child process started by {@link spawn}. Created by `spawn()` only.
 *
 * Lifetime: `ready` settles once; `exited` resolves once, never rejects.
 * `close()` asks the child to shut down (its `onShutdown` handlers run), then
 * sends SIGTERM after `shutdownTimeout` ms, then SIGKILL after as long again;
 * it is idempotent and `await using` calls it.
 */
export class ChildHandle {
  /** The name given in `spawn`'s options (default: the module's file name). */
  readonly name: string;
  /**
   * Resolves with the value the child passed to `ready(value)`. Rejects with
   * `ERR_MULTIPROC_PROCESS_EXITED` (a {@link ProcessExitedError}, `cause` the
   * child's error) when the child exits first, or `ERR_MULTIPROC_TIMEOUT`
   * after `readyTimeout`. Never an unhandled rejection when nobody awaits it.
   */
  readonly ready: Promise<unknown>;
  /** Resolves with how the child ended; never rejects. */
  readonly exited: Promise<ChildExit>;
  /** The child's stdin, when `stdio[0]` is 'pipe'. */
  readonly stdin: Writable | null;
  /** The child's stdout, when `stdio[1]` is 'pipe'. */
  readonly stdout: Readable | null;
  /** The child's stderr, when `stdio[2]` is 'pipe'. */
  readonly stderr: Readable | null;

  readonly #child: ChildProcess | undefined;
  readonly #control: ControlChannel | undefined;
  readonly #channels = new Map<string, Channel<any> | undefined>();
  readonly #own: Channel<any>[] = [];
  readonly #shutdownTimeout: number;
  readonly #oomBefore: number | undefined;
  #resolveReady!: (value: unknown) => void;
  #rejectReady!: (err: Error) => void;
  #readySettled = false;
  #readyTimer: LongTimeout | undefined;
  #resolveExited!: (exit: ChildExit) => void;
  #exit: ChildExit | undefined;
  #exiting = false;
  #started = false;
  #lastError: { error: Error; phase: 'load' | 'run' } | undefined;
  #tail = '';
  #sentKill = false;
  #pingSeq = 0;
  /** Pings waiting for their pong, by sequence number; those left when the child exits fail then. */
  readonly #pings = new Map<number, (err?: Error) => void>();
  #closing: Promise<ChildExit> | undefined;
  readonly #controlEnded: Promise<void>;
  #stderrEnded: Promise<void> = Promise.resolve();

  /** @internal */
  constructor(p: Prepared) {
    this.name = p.name;
    this.#shutdownTimeout = p.shutdownTimeout;
    this.ready = new Promise<unknown>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.exited = new Promise<ChildExit>((resolve) => (this.#resolveExited = resolve));
    this.#oomBefore = oomKillCount();

    let child: ChildProcess | undefined;
    let spawnError: Error | undefined;
    try {
      child = spawnProcess(process.execPath, p.argv, { cwd: p.cwd, env: p.env, stdio: p.stdio });
    } catch (err) {
      spawnError = err as Error;
    }
    for (const fn of p.afterSpawn) {
      try {
        fn();
      } catch {
        // a transport's clean-up; the spawn result stands
      }
    }
    this.#child = child;
    this.stdin = p.stdioSpec[0] === 'pipe' ? (child?.stdin ?? null) : null;
    this.stdout = p.stdioSpec[1] === 'pipe' ? (child?.stdout ?? null) : null;
    this.stderr = p.stdioSpec[2] === 'pipe' && child?.stderr ? new PassThrough() : null;

    const controlSocket = child?.stdio[3] as Socket | null | undefined;
    if (controlSocket) {
      this.#control = new ControlChannel(controlSocket, `control channel of '${this.name}'`, (m) => this.#onSystem(m));
      this.#controlEnded = new Promise<void>((resolve) => {
        controlSocket.once('end', resolve);
        controlSocket.once('close', resolve);
      });
      this.#control.sendSystem(p.hello);
    } else {
      this.#controlEnded = Promise.resolve();
    }
    for (const s of p.streams) {
      const socket = child?.stdio[s.index] as Socket | null | undefined;
      if (!socket) continue;
      const ch = new SocketPairChannel({
        socket,
        codec: resolveCodec(s.spec.codec, 'structured'),
        maxMessageSize: validateMaxMessageSize(s.spec.maxMessageSize),
        label: `channel '${s.name}' of '${this.name}'`,
        // The parent has the addon: large frames skip Node's stream buffers (the child's side may load none).
        readInto: native.readInto,
        writeFrom: native.writeFrom,
      });
      this.#channels.set(s.name, ch);
      this.#own.push(ch);
    }
    for (const [name, ch] of p.passed) this.#channels.set(name, ch as Channel<any> | undefined);

    const stderr = child?.stderr;
    if (stderr && (p.stdioSpec[2] === 'inherit' || p.stdioSpec[2] === 'pipe')) {
      const forward = p.stdioSpec[2] === 'inherit';
      const out = this.stderr as PassThrough | null;
      // A grandchild that inherited stderr must not hold this process open.
      (stderr as Socket).unref?.();
      stderr.on('data', (chunk: Buffer) => {
        this.#keepTail(chunk.toString('utf8'));
        if (forward) process.stderr.write(chunk);
      });
      if (out !== null) stderr.pipe(out);
      this.#stderrEnded = new Promise<void>((resolve) => {
        stderr.once('end', resolve);
        stderr.once('close', resolve);
      });
    }

    if (p.readyTimeout !== Infinity) {
      this.#readyTimer = setLongTimeout(() => {
        this.#settleReady(new TimeoutError(`child '${this.name}' did not call ready() within ${p.readyTimeout} ms`, p.readyTimeout));
      }, p.readyTimeout);
      this.#readyTimer.unref();
    }

    if (child === undefined) {
      queueMicrotask(() => this.#finish(null, null, spawnError));
      return;
    }
    child.on('error', (err) => {
      // 'error' also reports a failed kill(); only a failed spawn ends the handle.
      if (child.pid === undefined) this.#finish(null, null, err);
    });
    child.on('exit', (code, signal) => this.#onExit(code, signal));
  }

  /** The child's process id; undefined when the spawn failed. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * The control channel (structured codec): the child's `parent.control`.
   * Message types 1 to 2^31 - 2. `close()` on it ends this view only; the
   * handle keeps using the socket for readiness and shutdown.
   */
  get control(): Channel<unknown> {
    // A failed spawn (a missing cwd, say) still got its socket pair: no pid tells it apart.
    if (this.#control === undefined || this.pid === undefined) throw typeError('ERR_INVALID_STATE', `child '${this.name}' never started: it has no control channel`);
    return this.#control;
  }

  /** How the child ended, once it has; else undefined. */
  get exit(): ChildExit | undefined {
    return this.#exit;
  }

  /**
   * The parent's side of the channel passed under `name`: the channel
   * spawn() created for `'stream'` specs, or the channel object passed.
   *
   * Errors: `ERR_INVALID_ARG_VALUE` (no such name, or it was passed as a
   * bare descriptor, so the parent holds no channel for it).
   */
  channel<T = unknown>(name: string): Channel<T> {
    validateString(name, 'name');
    if (name === 'control') return this.control as Channel<T>;
    const ch = this.#channels.get(name);
    if (ch === undefined) {
      const why = this.#channels.has(name) ? 'it was passed as a descriptor, so the parent holds no channel for it' : `names: ${['control', ...this.#channels.keys()].join(', ')}`;
      throw typeError('ERR_INVALID_ARG_VALUE', `child '${this.name}' has no channel '${name}' here (${why})`);
    }
    return ch as Channel<T>;
  }

  /**
   * Sends `signal` (default SIGTERM) to the child. Returns false when the
   * child has exited (or never started). A child killed by a signal exits
   * with reason `'killed'`.
   *
   * Errors: `ERR_UNKNOWN_SIGNAL`.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const s = validateSignalName(signal);
    // No pid: the spawn failed. Until its 'error' event (next tick) Node's ChildProcess still
    // has its native handle, and kill() through it signals whatever pid the failed spawn left
    // there: an unrelated process.
    if (this.#child?.pid === undefined || this.#exiting || this.#child.exitCode !== null || this.#child.signalCode !== null) return false;
    if (s === 'SIGKILL' || s === constants.signals.SIGKILL) this.#sentKill = true;
    return this.#child.kill(s);
  }

  /**
   * Graceful shutdown: asks the child over the control channel to shut down
   * (its `onShutdown` handlers run, then it exits), sends SIGTERM if it has not
   * exited after `shutdownTimeout` ms, SIGKILL after as long again; then
   * closes the channels spawn() created. Resolves with how the child ended.
   * Idempotent: later calls return the same promise. Never rejects.
   */
  close(): Promise<ChildExit> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<ChildExit> {
    if (this.#exit === undefined && !this.#exiting) {
      this.#control?.sendSystem({ kind: 'shutdown', timeout: this.#shutdownTimeout });
      if (!(await this.#exitWithin(this.#shutdownTimeout))) {
        this.kill('SIGTERM');
        if (!(await this.#exitWithin(this.#shutdownTimeout))) this.kill('SIGKILL');
      }
    }
    const exit = await this.exited;
    await Promise.allSettled(this.#own.map((c) => c.close()));
    await this.#control?.closeTransport().catch(() => {});
    return exit;
  }

  /**
   * Asks the child's event loop for a sign of life over the control channel
   * and resolves with the round trip in milliseconds. The child's runtime
   * answers by itself; a child stuck in synchronous code (`while (true) {}`)
   * cannot, so the ping times out. The Supervisor's heartbeat uses this.
   *
   * Errors (rejections): `ERR_MULTIPROC_TIMEOUT` (no answer within `timeout`,
   * default 5000), `ABORT_ERR`, `ERR_MULTIPROC_PROCESS_EXITED` (the child
   * exited or never started), `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`.
   */
  async ping(options?: { timeout?: number; signal?: AbortSignal }): Promise<number> {
    const o = validateOptions<{ timeout: number; signal: AbortSignal }>(options, 'options', ['timeout', 'signal']);
    const timeout = o.timeout === undefined ? 5000 : validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    // The same error as for an abort during the wait, not the signal's bare reason.
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
    if (this.#control === undefined || this.pid === undefined || this.#exiting) throw this.#gone();
    const seq = ++this.#pingSeq;
    const start = performance.now();
    return new Promise<number>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.#pings.delete(seq);
        timer?.clear();
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) resolve(performance.now() - start);
        else reject(err);
      };
      const onAbort = (): void => done(new AbortError(undefined, { cause: signal?.reason }));
      const timer = timeout === Infinity ? undefined : setLongTimeout(() => done(new TimeoutError(`child '${this.name}' did not answer a ping within ${timeout} ms`, timeout)), timeout);
      timer?.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      // No reaction on `exited` per ping: a heartbeat pings for the child's whole life, and each
      // would stay until it exits. #finish fails what is still here.
      this.#pings.set(seq, done);
      this.#control!.sendSystem({ kind: 'ping', seq });
    });
  }

  #gone(): ProcessExitedError {
    return new ProcessExitedError(`child '${this.name}' has exited`, this.#exit ?? { code: null, signal: null, reason: 'launch-failed' });
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Lets the parent's event loop exit while the child runs. */
  unref(): void {
    this.#child?.unref();
  }

  /** Undoes `unref()`. */
  ref(): void {
    this.#child?.ref();
  }

  #exitWithin(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setLongTimeout(() => resolve(false), ms);
      void this.exited.then(() => {
        timer.clear();
        resolve(true);
      });
    });
  }

  #keepTail(text: string): void {
    const joined = this.#tail + text;
    this.#tail = joined.length > TAIL ? joined.slice(-TAIL) : joined;
  }

  #onSystem(m: SystemMessage): void {
    // Any word from the child means its bootstrap ran.
    this.#started = true;
    switch (m.kind) {
      case 'ready':
        this.#settleReady(undefined, m.value);
        break;
      case 'error':
        this.#lastError = { error: deserializeError(m.error), phase: m.phase };
        break;
      case 'pong':
        this.#pings.get(m.seq)?.();
        break;
      default:
        break;
    }
  }

  #settleReady(err: Error | undefined, value?: unknown): void {
    if (this.#readySettled) return;
    this.#readySettled = true;
    this.#readyTimer?.clear();
    if (err === undefined) this.#resolveReady(value);
    else this.#rejectReady(err);
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#exiting) return;
    this.#exiting = true;
    // The child's last words (its error report, the end of stderr) may still
    // be in flight; a grandchild holding either open must not stall us.
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_GRACE)));
    void Promise.race([Promise.all([this.#controlEnded, this.#stderrEnded]), grace]).then(() => {
      clearTimeout(timer);
      this.#finish(code, signal, undefined);
    });
  }

  #finish(code: number | null, signal: NodeJS.Signals | null, spawnError: Error | undefined): void {
    if (this.#exit !== undefined) return;
    this.#exiting = true;
    const tail = this.#tail.length > 0 ? this.#tail : undefined;
    let reason: ExitReason;
    if (spawnError !== undefined) {
      reason = 'launch-failed';
    } else {
      reason = exitReason(code, signal, tail);
      if (reason === 'error-exit' && !this.#started) reason = 'launch-failed';
      if (reason === 'error-exit' && !this.#readySettled && this.#lastError?.phase === 'load') reason = 'launch-failed';
      if (reason === 'killed' && signal === 'SIGKILL' && !this.#sentKill && this.#oomBefore !== undefined) {
        const after = oomKillCount();
        if (after !== undefined && after > this.#oomBefore) reason = 'out-of-memory';
      }
    }
    const exit: ChildExit = { code, signal, reason };
    const error = spawnError ?? (reason !== 'clean-exit' ? this.#lastError?.error : undefined);
    if (error !== undefined) exit.error = error;
    if (tail !== undefined) exit.stderrTail = tail;
    this.#exit = exit;
    if (this.pid !== undefined) {
      // The child is gone: remove what it (or another dead process of this
      // tree) owned and nobody holds any more, before anyone sees the exit.
      try {
        sweep({ tree: treeId(), pid: this.pid });
      } catch {
        // the registry is a safety net; never fail an exit over it
      }
    }
    const status = signal !== null ? `signal ${signal}` : code !== null ? `code ${code}` : (spawnError?.message ?? 'no exit status');
    this.#settleReady(
      new ProcessExitedError(`child '${this.name}'${this.pid !== undefined ? ` (pid ${this.pid})` : ''} exited before it was ready: ${reason} (${status})`, exit, { cause: error }),
    );
    if (spawnError !== undefined) {
      this.#control?.destroyTransport();
      for (const c of this.#own) c.destroy();
    }
    this.#resolveExited(exit);
    for (const fail of [...this.#pings.values()]) fail(this.#gone());
  }
}

/** The child's environment, with what keeps it in this registry and process tree. */
function registryEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  treeId();
  if (env === undefined) return process.env;
  const out = { ...env };
  for (const k of registryEnvKeys) if (out[k] === undefined && process.env[k] !== undefined) out[k] = process.env[k];
  return out;
}

/**
 * Starts a Node process running the ES module `module` (a path, resolved
 * against the current directory, or a `file:` URL) and returns its handle at
 * once; `handle.ready` resolves when the child calls `ready()`.
 *
 * ```ts
 * await using worker = spawn('./worker.js', { channels: { jobs: 'stream' } });
 * await worker.ready;
 * await worker.channel('jobs').send({ id: 1 });
 * ```
 *
 * A failed start (no such `cwd`, an unreadable Node binary, a module that does
 * not exist or does not load) is not thrown: `ready` rejects and `exited`
 * resolves with reason `'launch-failed'`.
 *
 * Errors (thrown): `ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE` (unknown
 * option, a channel named 'control', a channel no registered transport can
 * describe, descriptors that cannot be cloned), `ERR_OUT_OF_RANGE`.
 */
export function spawn(module: string | URL, options?: SpawnOptions): ChildHandle {
  const o = validateOptions<SpawnOptions>(options, 'options', [
    'args', 'env', 'name', 'channels', 'permissions', 'cwd', 'stdio', 'execArgv', 'readyTimeout', 'shutdownTimeout', 'exitWithParent',
  ]);
  const mod = validateModule(module);
  const args = validateStringArray(o.args, 'options.args');
  const execArgv = validateStringArray(o.execArgv, 'options.execArgv');
  const name = o.name === undefined ? basename(mod.path).replace(/\.[cm]?[jt]s$/, '') : validateString(o.name, 'options.name');
  if (o.env !== undefined && (o.env === null || typeof o.env !== 'object')) throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.env" option must be an object');
  if (o.cwd !== undefined && !(o.cwd instanceof URL)) validateString(o.cwd, 'options.cwd');
  const stdioSpec = validateStdio(o.stdio);
  const readyTimeout = o.readyTimeout === undefined ? DEFAULT_READY_TIMEOUT : validateTimeout(o.readyTimeout, 'options.readyTimeout');
  const shutdownTimeout = o.shutdownTimeout === undefined ? DEFAULT_SHUTDOWN_TIMEOUT : validateTimeout(o.shutdownTimeout, 'options.shutdownTimeout');
  if (shutdownTimeout === Infinity) throw typeError('ERR_INVALID_ARG_VALUE', 'The "options.shutdownTimeout" option must be finite');
  const exitWithParent = o.exitWithParent === undefined ? true : validateBoolean(o.exitWithParent, 'options.exitWithParent');

  let addon = true;
  const flags: string[] = [];
  if (o.permissions !== undefined) {
    const perm = permissionFlags(o.permissions, mod.path);
    flags.push(...perm.flags);
    addon = perm.addons;
  }

  const stdio: Array<StdioSpec | 'pipe'> = [stdioSpec[0], stdioSpec[1], stdioSpec[2] === 'inherit' ? 'pipe' : stdioSpec[2], 'pipe'];
  const streams: Prepared['streams'] = [];
  const passed = new Map<string, unknown>();
  const afterSpawn: Array<() => void> = [];
  const descriptors: Record<string, ChannelDescriptor> = {};
  if (o.channels !== undefined) {
    if (o.channels === null || typeof o.channels !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.channels" option must be an object');
    for (const [key, spec] of Object.entries(o.channels)) {
      if (key === 'control') throw typeError('ERR_INVALID_ARG_VALUE', `The channel name 'control' is taken by the control channel`);
      if (key.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', 'A channel name must not be empty');
      if (spec === 'stream' || (isPlainObject(spec) && spec.kind === 'stream')) {
        const s = spec === 'stream' ? { kind: 'stream' as const } : (validateOptions<StreamChannelSpec>(spec, `options.channels.${key}`, ['kind', 'codec', 'maxMessageSize']) as StreamChannelSpec);
        const codec = resolveCodec(s.codec, 'structured');
        const index = stdio.length;
        stdio.push('pipe');
        streams.push({ name: key, index, spec: s });
        const d: StreamDescriptor = { kind: 'stream', fd: index, codec: typeof s.codec === 'object' ? null : codec.name, maxMessageSize: validateMaxMessageSize(s.maxMessageSize) };
        descriptors[key] = d;
        continue;
      }
      if (isPlainObject(spec)) {
        if (typeof spec.kind !== 'string') throw typeError('ERR_INVALID_ARG_VALUE', `The channel '${key}' must be 'stream', a descriptor { kind, ... } or a channel`);
        const r = transportOf(spec.kind);
        descriptors[key] = (r?.module !== undefined && spec.module === undefined ? { ...spec, module: r.module } : spec) as ChannelDescriptor;
        passed.set(key, undefined);
        continue;
      }
      const context: DescribeContext = {
        name: key,
        passFd(fd: number | Stream): number {
          if (!(fd instanceof Stream) && !(typeof fd === 'number' && Number.isInteger(fd) && fd >= 0)) {
            throw typeError('ERR_INVALID_ARG_TYPE', 'passFd() takes a file descriptor or a stream');
          }
          stdio.push(fd);
          return stdio.length - 1;
        },
        afterSpawn(fn: () => void): void {
          afterSpawn.push(fn);
        },
      };
      const d = describeChannel(spec, context);
      if (d === undefined) throw typeError('ERR_INVALID_ARG_VALUE', `No registered transport can hand channel '${key}' to a child (see registerTransport)`);
      descriptors[key] = d;
      passed.set(key, spec);
    }
  }

  // Every descriptor past stdio 0-2 is ours: the child marks them close-on-exec.
  const fds = stdio.map((_, i) => i).filter((i) => i >= 3);
  const hello: SystemMessage = { kind: 'hello', name, channels: descriptors, exitWithParent, fds };
  try {
    serialize(hello);
  } catch (err) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The channel descriptors cannot be sent to a child: ${(err as Error).message}`);
  }

  const argv = [
    ...flags,
    `--import=${bootstrapUrl}?ppid=${process.pid}&exit=${exitWithParent ? 1 : 0}&addon=${addon ? 1 : 0}`,
    ...execArgv,
    entryPath,
    mod.url,
    ...args,
  ];
  return new ChildHandle({
    name,
    argv,
    stdio: stdio as StdioOptions,
    stdioSpec,
    env: registryEnv(o.env),
    cwd: o.cwd,
    hello,
    streams,
    passed,
    afterSpawn,
    readyTimeout,
    shutdownTimeout,
  });
}
