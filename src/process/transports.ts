/**
 * How channels are handed from a parent to the child it spawns.
 *
 * A channel crosses the process boundary as a *descriptor*: a small
 * structured-cloneable object `{ kind, ... }` that the parent builds
 * (`describe`) and the child turns back into a channel (`open`). Each
 * transport registers its kind once, in the module that defines it:
 *
 * ```ts
 * registerTransport('fifo', {
 *   module: import.meta.url,
 *   describe: (ch) => (ch instanceof NamedPipe ? { kind: 'fifo', path: ch.path } : undefined),
 *   open: (d) => NamedPipe.open(d.path as string),
 * });
 * ```
 *
 * Descriptor-passing transports (anonymous pipes, socket pairs) hand over a
 * file descriptor with `context.passFd(fd)`, which adds it to the child's
 * stdio and returns its number there.
 */
import type { Stream } from 'node:stream';
import type { Channel } from '../channel/channel.js';
import { resolveCodec, type CodecOption } from '../channel/codec.js';
import { validateMaxMessageSize } from '../channel/base-channel.js';
import { typeError, validateOptions, validateString } from '../errors.js';
import { SocketPairChannel, socketFromFd } from './socket-pair-channel.js';

/**
 * A channel as it crosses to a child: `kind` names the registered transport,
 * the other fields are the transport's own. Must survive the structured
 * clone algorithm (no functions, no class instances other than the built-in
 * cloneable ones).
 */
export interface ChannelDescriptor {
  kind: string;
  /**
   * URL of a module that registers `kind`; the child imports it before
   * opening when `kind` is not registered there yet. Filled in from the
   * registration's `module` when the parent describes the channel.
   */
  module?: string;
  [field: string]: unknown;
}

/** What a transport may do while the parent describes a channel for a child. */
export interface DescribeContext {
  /** The channel's name in `spawn`'s `channels`. */
  readonly name: string;
  /**
   * Hands a file descriptor to the child: a number, or a stream with one
   * (a `net.Socket`, an `fs` stream). Returns the descriptor number the child
   * will see it under (3 and up; 3 is the control channel).
   */
  passFd(fd: number | Stream): number;
  /**
   * Runs `fn` once the child was started (or failed to start), e.g. to close
   * the parent's copy of the child's end of a pipe.
   */
  afterSpawn(fn: () => void): void;
}

/** What the child's side of `open` is told. */
export interface OpenContext<T = unknown> {
  /** The channel's name. */
  readonly name: string;
  /** Options the child gave `parentChannel(name, options)`, e.g. a custom codec. */
  readonly options: ParentChannelOptions<T>;
}

/** Options of `parentChannel(name, options)` in the child. */
export interface ParentChannelOptions<T = unknown> {
  /**
   * Codec for this end. Defaults to the codec named in the descriptor (what
   * the parent used); needed when the parent used a custom codec object.
   */
  codec?: CodecOption<T>;
}

/** How one kind of channel is handed to a child. */
export interface TransportRegistration {
  /**
   * Returns the descriptor of `channel` when this transport can hand it over,
   * or undefined (then the next registration is asked). Runs in the parent,
   * before the child starts.
   */
  describe?(channel: unknown, context: DescribeContext): ChannelDescriptor | undefined;
  /** Opens the channel a descriptor of this kind names. Runs in the child. */
  open(descriptor: ChannelDescriptor, context: OpenContext<any>): Channel<any> | Promise<Channel<any>>;
  /** URL of the module that registers this kind (`import.meta.url`): a child imports it on demand. */
  module?: string;
}

// On globalThis, so that two copies of the library in one process (a bundled
// one and an installed one) share what was registered.
const REGISTRY = Symbol.for('multiproc.transports.v1');
type Registry = Map<string, TransportRegistration>;
function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[REGISTRY] ??= new Map());
}

const KIND = /^[a-z][a-z0-9.+-]{0,63}$/;

/**
 * Registers how channels of `kind` are handed to child processes. A later
 * registration of the same kind replaces the earlier one.
 *
 * Errors: `ERR_INVALID_ARG_TYPE` (not a string / no `open` function),
 * `ERR_INVALID_ARG_VALUE` (a kind that is not lowercase letters, digits,
 * '.', '+' or '-', starting with a letter; or one of the built-in kinds).
 */
export function registerTransport(kind: string, registration: TransportRegistration): void {
  validateString(kind, 'kind');
  if (!KIND.test(kind)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The argument 'kind' must be lowercase letters, digits, '.', '+' or '-', starting with a letter (at most 64). Received '${kind}'`);
  }
  if (BUILT_IN.has(kind)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The transport kind '${kind}' is built in and cannot be replaced`);
  }
  const r = validateOptions<TransportRegistration>(registration, 'registration', ['describe', 'open', 'module']);
  if (typeof r.open !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', 'The "registration.open" property must be a function');
  if (r.describe !== undefined && typeof r.describe !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', 'The "registration.describe" property must be a function');
  if (r.module !== undefined && typeof r.module !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "registration.module" property must be a URL string');
  registry().set(kind, { describe: r.describe, open: r.open, module: r.module });
}

/** The registration of `kind`, if any. @internal */
export function transportOf(kind: string): TransportRegistration | undefined {
  return registry().get(kind);
}

/** Asks every registration to describe `channel`. @internal */
export function describeChannel(channel: unknown, context: DescribeContext): ChannelDescriptor | undefined {
  for (const [kind, r] of registry()) {
    if (r.describe === undefined) continue;
    const d = r.describe(channel, context);
    if (d === undefined) continue;
    if (d.kind !== kind) throw typeError('ERR_INVALID_RETURN_VALUE', `The transport '${kind}' described a channel as kind '${String(d.kind)}'`);
    return r.module !== undefined && d.module === undefined ? { ...d, module: r.module } : d;
  }
  return undefined;
}

/** Opens a descriptor in the child, importing its transport's module first when needed. @internal */
export async function openDescriptor(descriptor: ChannelDescriptor, context: OpenContext<any>): Promise<Channel<any>> {
  let r = registry().get(descriptor.kind);
  if (r === undefined && typeof descriptor.module === 'string') {
    await import(descriptor.module);
    r = registry().get(descriptor.kind);
  }
  if (r === undefined) {
    throw typeError(
      'ERR_INVALID_STATE',
      `cannot open channel '${context.name}': no transport of kind '${descriptor.kind}' is registered in this process` +
        (descriptor.module === undefined ? ' (import the module that registers it first)' : ` (importing ${descriptor.module} did not register it)`),
    );
  }
  return r.open(descriptor, context);
}

// --- the built-in kind: a socket pair that spawn() creates -----------------

const BUILT_IN = new Set(['stream']);

/** Descriptor of a channel that spawn() creates as a socket pair on the child's fd `fd`. @internal */
export interface StreamDescriptor extends ChannelDescriptor {
  kind: 'stream';
  fd: number;
  codec: string | null;
  maxMessageSize: number;
}

registry().set('stream', {
  open(descriptor, context) {
    const d = descriptor as StreamDescriptor;
    const opts = validateOptions<ParentChannelOptions>(context.options, 'options', ['codec']);
    if (opts.codec === undefined && d.codec === null) {
      throw typeError('ERR_INVALID_ARG_VALUE', `channel '${context.name}': the parent uses a custom codec; pass the same codec to parentChannel('${context.name}', { codec })`);
    }
    return new SocketPairChannel({
      socket: socketFromFd(d.fd),
      codec: resolveCodec(opts.codec ?? d.codec ?? undefined, 'structured'),
      maxMessageSize: validateMaxMessageSize(d.maxMessageSize),
      label: `channel '${context.name}' (fd ${d.fd})`,
    });
  },
});
