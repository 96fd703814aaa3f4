/**
 * Child specifications of a Supervisor: their types, defaults and checks.
 * Everything is validated when the Supervisor is constructed, before any
 * process starts.
 *
 * @internal
 */
import { permissionFlags, validateModule, validateStdio, type ProcessPermissions, type StdioSpec } from '../process/spawn.js';
import { rangeError, typeError, validateInteger, validateOneOf, validateOptions, validateString, validateTimeout } from '../errors.js';

/**
 * When an exited child is started again:
 * - `'permanent'`: always;
 * - `'transient'`: only after an abnormal exit (any reason but `'clean-exit'`);
 * - `'temporary'`: never.
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/**
 * Which children are restarted when one exits and must be restarted:
 * - `'one_for_one'`: that child only;
 * - `'one_for_all'`: all children (the others are stopped first, in reverse start order);
 * - `'rest_for_one'`: that child and the children started after it.
 */
export type RestartStrategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/** A liveness check over the control channel (see `ChildHandle.ping`). */
export interface HeartbeatOptions {
  /** Milliseconds between two pings (> 0). */
  interval: number;
  /** Milliseconds a ping may take before the child counts as hung (> 0). */
  timeout: number;
}

/** One role: a module run by `count` processes. */
export interface ChildSpec {
  /**
   * The role's name, unique among its siblings: letters, digits, `_`, `.`
   * and `-`, at most 64. Instance `i` is `name#i` in messages.
   */
  name: string;
  /** The ES module to run: a path (resolved against the current directory) or a `file:` URL. */
  module: string | URL;
  /** Arguments for the module (`process.argv.slice(2)` in the child). */
  args?: string[];
  /** The child's environment (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** How many processes run this role (default 1, at most 1024). Each is restarted on its own. */
  count?: number;
  /** When an exited instance is started again (default `'permanent'`). */
  restart?: RestartType;
  /**
   * Milliseconds a stopping child gets after the shutdown request before
   * SIGTERM, and again after SIGTERM before SIGKILL (default 5000), as for
   * `spawn()`.
   */
  shutdownTimeout?: number;
  /** Milliseconds until a starting child must have called `ready()` (default 30000). */
  readyTimeout?: number;
  /** Node's permission model for this role (see `spawn()`); none by default. */
  permissions?: ProcessPermissions;
  /** Ping the child every `interval` ms; one without an answer in `timeout` ms is killed and restarted (exit reason `'hung'`). */
  heartbeat?: HeartbeatOptions;
  /**
   * Sibling roles this child may call: for each, the child gets a channel
   * relayed by the supervisor to an instance of that role
   * (`connectRole(name)` in the child; the role serves with `serveRole(api)`).
   */
  connects?: string[];
  /** Working directory of the child. */
  cwd?: string | URL;
  /** Node options for the child. */
  execArgv?: string[];
  /** stdin, stdout, stderr (see `spawn()`). */
  stdio?: StdioSpec | [StdioSpec, StdioSpec, StdioSpec];
}

/** A validated ChildSpec with its defaults. @internal */
export interface NormalSpec {
  kind: 'process';
  name: string;
  module: string | URL;
  args: string[] | undefined;
  env: NodeJS.ProcessEnv | undefined;
  count: number;
  restart: RestartType;
  shutdownTimeout: number;
  readyTimeout: number | undefined;
  permissions: ProcessPermissions | undefined;
  heartbeat: HeartbeatOptions | undefined;
  connects: string[];
  cwd: string | URL | undefined;
  execArgv: string[] | undefined;
  stdio: ChildSpec['stdio'];
}

export const specKeys = [
  'name', 'module', 'args', 'env', 'count', 'restart', 'shutdownTimeout', 'readyTimeout', 'permissions', 'heartbeat', 'connects', 'cwd', 'execArgv', 'stdio',
] as const;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_COUNT = 1024;

/** Checks a role or supervisor name. @internal */
export function validateName(value: unknown, what: string): string {
  validateString(value, what);
  if (!NAME.test(value as string)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${what}" must be 1 to 64 letters, digits, '_', '.' or '-'. Received '${String(value)}'`);
  }
  return value as string;
}

function positiveFinite(value: unknown, what: string): number {
  if (typeof value !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" option must be of type number. Received type ${typeof value}`);
  if (!Number.isFinite(value) || value <= 0) throw rangeError(`The value of "${what}" is out of range. It must be a finite number > 0. Received ${value}`);
  return value;
}

function stringArray(value: unknown, what: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw typeError('ERR_INVALID_ARG_TYPE', `The "${what}" option must be an array of strings`);
  value.forEach((v, i) => validateString(v, `${what}[${i}]`));
}

/** Validates one process spec (not its `connects` targets, which need the siblings). @internal */
export function normalizeSpec(spec: unknown, where: string): NormalSpec {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${where}" must be a child spec object or a Supervisor. Received ${spec === null ? 'null' : typeof spec}`);
  }
  const s = validateOptions<ChildSpec>(spec, where, specKeys);
  const name = validateName(s.name, `${where}.name`);
  if (s.module === undefined) throw typeError('ERR_INVALID_ARG_TYPE', `The "${where}.module" option is required (a path or a file: URL)`);
  // As spawn() checks it at each start: a bad spec fails here, not after the children before it were started.
  validateModule(s.module, `${where}.module`, 'option');
  const count = s.count === undefined ? 1 : validateInteger(s.count, `${where}.count`, 1, MAX_COUNT);
  const restart = s.restart === undefined ? 'permanent' : validateOneOf(s.restart, `${where}.restart`, ['permanent', 'transient', 'temporary'] as const);
  const shutdownTimeout = s.shutdownTimeout === undefined ? 5000 : validateTimeout(s.shutdownTimeout, `${where}.shutdownTimeout`);
  if (shutdownTimeout === Infinity) throw typeError('ERR_INVALID_ARG_VALUE', `The "${where}.shutdownTimeout" option must be finite`);
  const readyTimeout = s.readyTimeout === undefined ? undefined : validateTimeout(s.readyTimeout, `${where}.readyTimeout`);
  let heartbeat: HeartbeatOptions | undefined;
  if (s.heartbeat !== undefined) {
    const h = validateOptions<HeartbeatOptions>(s.heartbeat, `${where}.heartbeat`, ['interval', 'timeout']);
    heartbeat = { interval: positiveFinite(h.interval, `${where}.heartbeat.interval`), timeout: positiveFinite(h.timeout, `${where}.heartbeat.timeout`) };
  }
  let connects: string[] = [];
  if (s.connects !== undefined) {
    if (!Array.isArray(s.connects)) throw typeError('ERR_INVALID_ARG_TYPE', `The "${where}.connects" option must be an array of role names`);
    connects = s.connects.map((c, i) => validateName(c, `${where}.connects[${i}]`));
    if (new Set(connects).size !== connects.length) throw typeError('ERR_INVALID_ARG_VALUE', `The "${where}.connects" option lists a role twice`);
    if (connects.includes(name)) throw typeError('ERR_INVALID_ARG_VALUE', `The role '${name}' cannot connect to itself`);
  }
  // spawn() checks these again at each start; checked here so that a bad spec fails at construction.
  validateStdio(s.stdio, `${where}.stdio`);
  if (s.permissions !== undefined) permissionFlags(s.permissions, undefined);
  stringArray(s.args, `${where}.args`);
  stringArray(s.execArgv, `${where}.execArgv`);
  if (s.env !== undefined && (s.env === null || typeof s.env !== 'object')) throw typeError('ERR_INVALID_ARG_TYPE', `The "${where}.env" option must be an object`);
  if (s.cwd !== undefined && !(s.cwd instanceof URL)) validateString(s.cwd, `${where}.cwd`);
  return {
    kind: 'process',
    name,
    module: s.module as string | URL,
    args: s.args,
    env: s.env,
    count,
    restart,
    shutdownTimeout,
    readyTimeout,
    permissions: s.permissions,
    heartbeat,
    connects,
    cwd: s.cwd,
    execArgv: s.execArgv,
    stdio: s.stdio,
  };
}

/** The channel a client instance gets for role `role`. @internal */
export function roleChannelName(role: string): string {
  return `role:${role}`;
}

/** The channel a role instance gets for client instance `client#index`. @internal */
export function clientChannelName(client: string, index: number): string {
  return `client:${client}#${index}`;
}
