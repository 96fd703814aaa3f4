/**
 * The supervisor's relay between roles. A child whose spec lists
 * `connects: ['browser']` gets a channel `role:browser`; instance `j` of the
 * `browser` role gets a channel `client:<child>#<i>` for each client instance
 * routed to it (client instance i goes to role instance i % count). The
 * supervisor copies frames between the two, type and priority kept, bytes
 * untouched (both parent-side ends use the `raw` codec) but for the call ids
 * of RPC messages, below.
 *
 * Why a relay and not a direct socket pair: either side may be restarted on
 * its own; the supervisor's ends of the links stay put while the processes
 * behind them come and go. While the role instance is down (or not yet
 * ready), messages for it wait here; RPC calls that were in flight at a role
 * instance that exited are answered with an `ERR_MULTIPROC_CLOSED` error, and
 * calls of a client that exited are cancelled at the role, so that neither
 * side waits for an answer that will never come.
 *
 * Call ids (RPC on the default message types) are the caller's, and a
 * restarted client numbers its calls from 1 again while the role may still
 * run, and later answer, calls of the process before it. So the relay shifts
 * the ids of calls and cancels of each client process above every id the
 * link used before (the first process keeps its own ids: bytes untouched)
 * and maps answers back; an answer to an id it does not know (a call of an
 * exited client, or one its caller cancelled) goes nowhere.
 *
 * @internal
 */
import type { Channel, Message } from '../channel/channel.js';
import { structured } from '../channel/codec.js';
import { ClosedError, ProtocolError } from '../errors.js';
import { CALL, CANCEL, ERROR, RESULT, defaultMessageTypes, isId } from '../rpc/protocol.js';
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
  /** RPC calls (default message types) forwarded to the target and not answered yet: the id the target saw -> the client's own id. */
  readonly pending: Map<number, number>;
  /** Added to the current client process's call ids on the way to the target. */
  base: number;
  /** The highest call id forwarded to the target so far. */
  top: number;
}

/** @internal */
export function newLink(client: string, role: string, target: string, atClient: string, atTarget: string): Link {
  return { client, role, target, atClient, atTarget, clientEnd: undefined, targetEnd: undefined, targetReady: false, queue: [], pending: new Map(), base: 0, top: 0 };
}

function rpcMessage(bytes: Uint8Array): unknown[] | undefined {
  try {
    const m = structured.decode(bytes);
    return Array.isArray(m) && isId(m[1]) ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The message `rpc` with call id `id`, encoded. */
function withId(rpc: unknown[], id: number): Uint8Array {
  const copy = [...rpc];
  copy[1] = id;
  return structured.encode(copy);
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
      // A new process numbers its calls from 1: above every id the target has seen, so that
      // they never meet calls of the process before, which the target may still be running.
      link.base = link.top;
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
      for (const callId of link.pending.keys()) {
        end?.send(structured.encode([CANCEL, callId, 'closed']), { type: defaultMessageTypes.request }).catch(() => {});
      }
      // Answers to these that still come are dropped: their ids are no longer known.
      link.pending.clear();
    }
  }

  /** A role instance exited: the calls it was serving fail at their callers. */
  targetExited(id: string, why: string): void {
    for (const link of this.linksOfTarget(id)) {
      link.targetEnd = undefined;
      link.targetReady = false;
      for (const callId of link.pending.values()) this.#fail(link, callId, new ClosedError(`role '${link.role}' (${link.target}) ${why} while serving this call`));
      link.pending.clear();
    }
  }

  /** Answers the client's call `callId` (its own id) with `err`. */
  #fail(link: Link, callId: number, err: Error): void {
    const wire = serializeError(err);
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

  /**
   * Forwards to the role instance, noting the RPC calls it now owes an answer;
   * calls and cancels carry the client's ids shifted by `link.base`.
   */
  async #send(link: Link, end: Channel<Uint8Array>, m: Message<Uint8Array>): Promise<void> {
    let data = m.data;
    const rpc = m.type === defaultMessageTypes.request ? rpcMessage(m.data) : undefined;
    if (rpc?.[0] === CALL || rpc?.[0] === CANCEL) {
      const own = rpc[1] as number;
      const id = own + link.base;
      if (rpc[0] === CANCEL) {
        // Already answered (or cancelled): nothing to cancel at the target.
        if (!link.pending.delete(id)) return;
      } else if (!Number.isSafeInteger(id)) {
        this.#fail(link, own, new ProtocolError(`rpc: call id ${own} is too large to be relayed to role '${link.role}'`));
        return;
      } else {
        link.pending.set(id, own);
        if (id > link.top) link.top = id;
      }
      if (id !== own) {
        try {
          data = withId(rpc, id);
        } catch (err) {
          // What was decoded encodes again; should it not, the call fails rather than go out under the wrong id.
          if (rpc[0] === CALL) {
            link.pending.delete(id);
            this.#fail(link, own, new ClosedError(`the relay could not forward the call to role '${link.role}': ${(err as Error).message}`, { cause: err }));
          }
          return;
        }
      }
    }
    await end.send(data, { type: m.type, priority: m.priority }).catch(() => {});
  }

  async #toTarget(link: Link, m: Message<Uint8Array>): Promise<void> {
    const end = link.targetEnd;
    if (end !== undefined && link.targetReady && link.queue.length === 0) return this.#send(link, end, m);
    if (link.queue.length < MAX_QUEUED) {
      link.queue.push(m);
      return;
    }
    const rpc = m.type === defaultMessageTypes.request ? rpcMessage(m.data) : undefined;
    if (rpc?.[0] === CALL) this.#fail(link, rpc[1] as number, new ClosedError(`role '${link.role}' (${link.target}) is down and ${MAX_QUEUED} messages already wait for it`));
  }

  /** Forwards to the client; answers go back under the client's own call ids, or nowhere when nobody waits for them. */
  async #toClient(link: Link, m: Message<Uint8Array>): Promise<void> {
    let data = m.data;
    const rpc = m.type === defaultMessageTypes.response ? rpcMessage(m.data) : undefined;
    if (rpc?.[0] === RESULT || rpc?.[0] === ERROR) {
      const id = rpc[1] as number;
      const own = link.pending.get(id);
      // A call of a client process that exited, or one its caller cancelled: a new process could
      // have a call of the same id waiting, which this answer must not settle.
      if (own === undefined) return;
      link.pending.delete(id);
      if (own !== id) {
        try {
          data = withId(rpc, own);
        } catch (err) {
          this.#fail(link, own, new ClosedError(`the relay could not forward the answer of role '${link.role}': ${(err as Error).message}`, { cause: err }));
          return;
        }
      }
    }
    await link.clientEnd?.send(data, { type: m.type, priority: m.priority }).catch(() => {});
  }
}
