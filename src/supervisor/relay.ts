/**
 * The supervisor's relay between roles. A child whose spec lists
 * `connects: ['browser']` gets a channel `role:browser`; instance `j` of the
 * `browser` role gets a channel `client:<child>#<i>` for each client instance
 * routed to it (client instance i goes to role instance i % count). The
 * supervisor copies frames between the two, type and priority kept, bytes
 * untouched (both parent-side ends use the `raw` codec).
 *
 * Why a relay and not a direct socket pair: either side may be restarted on
 * its own; the supervisor's ends of the links stay put while the processes
 * behind them come and go. While the role instance is down (or not yet
 * ready), messages for it wait here; RPC calls that were in flight at a role
 * instance that exited are answered with an `ERR_MULTIPROC_CLOSED` error, and
 * calls of a client that exited are cancelled at the role, so that neither
 * side waits for an answer that will never come.
 *
 * @internal
 */
import type { Channel, Message } from '../channel/channel.js';
import { structured } from '../channel/codec.js';
import { ClosedError } from '../errors.js';
import { CALL, CANCEL, ERROR, RESULT, defaultMessageTypes } from '../rpc/protocol.js';
import { serializeError } from '../rpc/remote-error.js';

/** Messages held for a role instance that is down; beyond this, calls are refused. */
const MAX_QUEUED = 10_000;

/** One client instance's link to one role. @internal */
export interface Link {
  /** `client#i`. */
  readonly client: string;
  readonly role: string;
  /** `role#j`: the instance this client instance is routed to. */
  readonly target: string;
  /** The channel's name at the client and at the target. */
  readonly atClient: string;
  readonly atTarget: string;
  clientEnd: Channel<Uint8Array> | undefined;
  targetEnd: Channel<Uint8Array> | undefined;
  targetReady: boolean;
  readonly queue: Message<Uint8Array>[];
  /** Ids of RPC calls (default message types) forwarded to the target and not answered yet. */
  readonly pending: Set<number>;
}

/** @internal */
export function newLink(client: string, role: string, target: string, atClient: string, atTarget: string): Link {
  return { client, role, target, atClient, atTarget, clientEnd: undefined, targetEnd: undefined, targetReady: false, queue: [], pending: new Set() };
}

function rpcMessage(bytes: Uint8Array): unknown[] | undefined {
  try {
    const m = structured.decode(bytes);
    return Array.isArray(m) && typeof m[1] === 'number' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** @internal */
export class Relay {
  readonly #links: Link[];

  constructor(links: Link[]) {
    this.#links = links;
  }

  /** Link ends at the client `id`, channel names at the client. */
  linksOfClient(id: string): Link[] {
    return this.#links.filter((l) => l.client === id);
  }

  /** Links routed to the role instance `id`. */
  linksOfTarget(id: string): Link[] {
    return this.#links.filter((l) => l.target === id);
  }

  /** A client instance was spawned: `channel(name)` gives its ends. */
  clientStarted(id: string, channel: (name: string) => Channel<Uint8Array>): void {
    for (const link of this.linksOfClient(id)) {
      const end = channel(link.atClient);
      link.clientEnd = end;
      void this.#pump(end, () => link.clientEnd === end, (m) => this.#toTarget(link, m));
    }
  }

  /** A role instance was spawned (not ready yet). */
  targetStarted(id: string, channel: (name: string) => Channel<Uint8Array>): void {
    for (const link of this.linksOfTarget(id)) {
      const end = channel(link.atTarget);
      link.targetEnd = end;
      link.targetReady = false;
      void this.#pump(end, () => link.targetEnd === end, (m) => this.#toClient(link, m));
    }
  }

  /** A role instance called ready(): what waited for it goes out. */
  async targetReady(id: string): Promise<void> {
    for (const link of this.linksOfTarget(id)) {
      link.targetReady = true;
      const end = link.targetEnd;
      while (end !== undefined && link.targetEnd === end && link.queue.length > 0) await this.#send(link, end, link.queue.shift()!);
    }
  }

  /** A client instance exited: its calls in flight are cancelled at the role. */
  clientExited(id: string): void {
    for (const link of this.linksOfClient(id)) {
      link.clientEnd = undefined;
      link.queue.length = 0;
      const end = link.targetReady ? link.targetEnd : undefined;
      for (const callId of link.pending) {
        end?.send(structured.encode([CANCEL, callId, 'closed']), { type: defaultMessageTypes.request }).catch(() => {});
      }
      link.pending.clear();
    }
  }

  /** A role instance exited: the calls it was serving fail at their callers. */
  targetExited(id: string, why: string): void {
    for (const link of this.linksOfTarget(id)) {
      link.targetEnd = undefined;
      link.targetReady = false;
      for (const callId of link.pending) this.#fail(link, callId, `role '${link.role}' (${link.target}) ${why} while serving this call`);
      link.pending.clear();
    }
  }

  #fail(link: Link, callId: number, message: string): void {
    const wire = serializeError(new ClosedError(message));
    link.clientEnd?.send(structured.encode([ERROR, callId, wire]), { type: defaultMessageTypes.response }).catch(() => {});
  }

  async #pump(end: Channel<Uint8Array>, current: () => boolean, forward: (m: Message<Uint8Array>) => Promise<void>): Promise<void> {
    for (;;) {
      let m: Message<Uint8Array>;
      try {
        m = await end.receiveMessage();
      } catch {
        return; // the process behind this end is gone, or the supervisor closed it
      }
      if (!current()) return;
      await forward(m);
    }
  }

  /** Forwards to the role instance, noting the RPC calls it now owes an answer. */
  async #send(link: Link, end: Channel<Uint8Array>, m: Message<Uint8Array>): Promise<void> {
    if (m.type === defaultMessageTypes.request) {
      const rpc = rpcMessage(m.data);
      if (rpc?.[0] === CALL) link.pending.add(rpc[1] as number);
      else if (rpc?.[0] === CANCEL) link.pending.delete(rpc[1] as number);
    }
    await end.send(m.data, { type: m.type, priority: m.priority }).catch(() => {});
  }

  async #toTarget(link: Link, m: Message<Uint8Array>): Promise<void> {
    const end = link.targetEnd;
    if (end !== undefined && link.targetReady && link.queue.length === 0) return this.#send(link, end, m);
    if (link.queue.length < MAX_QUEUED) {
      link.queue.push(m);
      return;
    }
    const rpc = m.type === defaultMessageTypes.request ? rpcMessage(m.data) : undefined;
    if (rpc?.[0] === CALL) this.#fail(link, rpc[1] as number, `role '${link.role}' (${link.target}) is down and ${MAX_QUEUED} messages already wait for it`);
  }

  async #toClient(link: Link, m: Message<Uint8Array>): Promise<void> {
    if (m.type === defaultMessageTypes.response) {
      const rpc = rpcMessage(m.data);
      if (rpc?.[0] === RESULT || rpc?.[0] === ERROR) link.pending.delete(rpc[1] as number);
    }
    await link.clientEnd?.send(m.data, { type: m.type, priority: m.priority }).catch(() => {});
  }
}
