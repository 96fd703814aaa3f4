/**
 * UDP as a channel: one message per datagram, under a connection set up by a
 * handshake and kept from overrunning the receiver by credit.
 *
 * Every datagram starts with a 20-byte header and, on an authenticated
 * connection, ends with a 16-byte tag (HMAC-SHA256, truncated, under a
 * per-connection key for that direction):
 *
 *    0  u16  magic 0x554d ('MU')      8  i32  priority
 *    2  u8   version (1)             12  u32  sequence number (DATA)
 *    3  u8   kind                    16  u32  credit offset (DATA, PROBE)
 *    4  i32  type
 *
 * Handshake (the client resends each step until answered):
 *   HELLO   c->s  nonce, flags, maxMessageSize, window
 *   WELCOME s->c  the same from the server
 *   PROOF   c->s  HMAC(key, client label | WELCOME | HELLO), or empty without a key
 *   READY   s->c  HMAC(key, server label | HELLO | WELCOME), or REJECT
 *
 * Flow control: each datagram costs an estimate of the kernel memory it
 * takes in the receiver's socket buffer (2 * size + 1088: the kernel books
 * whole power-of-two buffers plus overhead). The receiver grants credit up
 * to half its socket buffer minus what waits in its inbox, and says so in
 * ACKs (every quarter window, and when a blocked sender PROBEs); the
 * sender waits for credit instead of overrunning the buffer. A datagram that
 * is lost anyway (a real network; a sender on another host faster than the
 * grant) is gone: there is no retransmission. Gaps in the sequence numbers
 * are counted (`messagesLost`), duplicates and replays are dropped.
 */
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { AuthError, ClosedError, ProtocolError, TimeoutError, systemError } from '../../errors.js';
import { InboxChannel, capMaxMessageSize, validateMaxMessageSize, waitFor, type BaseChannelInit, type ChannelOptions, type TypeSelector, type Wait } from '../base-channel.js';
import { resolveCodec, type Codec } from '../codec.js';
import type { Frame } from '../framing.js';
import type { ChannelStats } from '../channel.js';
import {
  NONCE_SIZE,
  UDP_TRAITS,
  authRequired,
  backoff,
  checkListenHost,
  checkSignal,
  connectPolicy,
  hmac,
  innerWait,
  isLoopback,
  resolveAuthKey,
  retriable,
  sameProof,
  sleep,
  validateHandshakeTimeout,
  type SocketEndpoint,
  type Target,
} from './socket-common.js';
import { SocketServer, type SocketConnection } from './socket-server.js';

/** Largest UDP payload over IPv4: 65535 - 8 (UDP header) - 20 (IP header). */
export const UDP_MAX_DATAGRAM = 65507;
const HEADER = 20;
const TAG = 16;
/** Largest message on a UDP channel without (with) authKey. */
export const UDP_MAX_PAYLOAD = UDP_MAX_DATAGRAM - HEADER;
export const UDP_MAX_PAYLOAD_AUTH = UDP_MAX_DATAGRAM - HEADER - TAG;

const MAGIC = 0x554d;
const VERSION = 1;
const enum Kind {
  Data = 1,
  Ack = 2,
  Probe = 3,
  Close = 4,
  Hello = 10,
  Welcome = 11,
  Proof = 12,
  Ready = 13,
  Reject = 14,
}
const HELLO_PAYLOAD = NONCE_SIZE + 12;
const FLAG_AUTH = 1;
const ACK_PAYLOAD = 16;
/** ACK type field: this ACK answers the PROBE whose offset it echoes. */
const ACK_REPLY = 2;
/** Socket buffer we ask for (the kernel caps it at net.core.rmem_max). */
const SOCKET_BUFFER = 4 * 1024 * 1024;
/** Half-open handshakes a server keeps at most. */
const MAX_HALF_OPEN = 1024;
/** Datagrams of a server that arrive before its READY are kept (at most this many). */
const MAX_EARLY = 4096;
/** Bound on waiting for the peer's receipt of everything sent, on close. */
const LINGER = 2000;

const CLIENT_LABEL = 'multiproc udp client';
const SERVER_LABEL = 'multiproc udp server';

/** Kernel memory a datagram of `size` payload bytes may take at the receiver. */
function cost(size: number): number {
  return 2 * size + 1088;
}

/** a - b in serial-number arithmetic (u32). */
function diff(a: number, b: number): number {
  return (a - b) | 0;
}

function add(a: number, b: number): number {
  return (a + b) >>> 0;
}

function writeHead(b: Buffer, kind: Kind, type: number, priority: number, seq: number, offset: number): void {
  b.writeUInt16LE(MAGIC, 0);
  b.writeUInt8(VERSION, 2);
  b.writeUInt8(kind, 3);
  b.writeInt32LE(type, 4);
  b.writeInt32LE(priority, 8);
  b.writeUInt32LE(seq, 12);
  b.writeUInt32LE(offset, 16);
}

/** A datagram with room for its tag when `tagged`. */
function datagram(kind: Kind, payload: Uint8Array, tagged: boolean, type = 0, priority = 0, seq = 0, offset = 0): Buffer {
  const b = Buffer.allocUnsafe(HEADER + payload.length + (tagged ? TAG : 0));
  writeHead(b, kind, type, priority, seq, offset);
  b.set(payload, HEADER);
  return b;
}

function kindOf(msg: Buffer): Kind | undefined {
  if (msg.length < HEADER || msg.readUInt16LE(0) !== MAGIC || msg[2] !== VERSION) return undefined;
  return msg[3] as Kind;
}

interface Hello {
  nonce: Buffer;
  auth: boolean;
  maxMessageSize: number;
  window: number;
  /** The payload as sent, covered by the proofs. */
  bytes: Buffer;
}

function encodeHello(nonce: Buffer, auth: boolean, maxMessageSize: number, window: number): Buffer {
  const b = Buffer.alloc(HELLO_PAYLOAD);
  nonce.copy(b, 0);
  b.writeUInt16LE(auth ? FLAG_AUTH : 0, NONCE_SIZE);
  b.writeUInt32LE(maxMessageSize, NONCE_SIZE + 4);
  b.writeUInt32LE(window, NONCE_SIZE + 8);
  return b;
}

function decodeHello(msg: Buffer): Hello | undefined {
  if (msg.length !== HEADER + HELLO_PAYLOAD) return undefined;
  const p = Buffer.from(msg.subarray(HEADER));
  const maxMessageSize = p.readUInt32LE(NONCE_SIZE + 4);
  const window = p.readUInt32LE(NONCE_SIZE + 8);
  if (maxMessageSize === 0 || window === 0) return undefined;
  return { nonce: p.subarray(0, NONCE_SIZE), auth: (p.readUInt16LE(NONCE_SIZE) & FLAG_AUTH) !== 0, maxMessageSize, window, bytes: p };
}

interface Keys {
  send: Buffer;
  receive: Buffer;
}

function sessionKeys(key: Buffer, hello: Hello, welcome: Hello, role: 'client' | 'server'): Keys {
  const c2s = hmac(key, 'multiproc udp c2s', hello.bytes, welcome.bytes);
  const s2c = hmac(key, 'multiproc udp s2c', hello.bytes, welcome.bytes);
  return role === 'client' ? { send: c2s, receive: s2c } : { send: s2c, receive: c2s };
}

function sign(key: Buffer, b: Buffer): Buffer {
  const n = b.length - TAG;
  createHmac('sha256', key).update(b.subarray(0, n)).digest().copy(b, n, 0, TAG);
  return b;
}

/** Checks and strips the tag; undefined when it is wrong. */
function verified(key: Buffer, msg: Buffer): Buffer | undefined {
  if (msg.length < HEADER + TAG) return undefined;
  const n = msg.length - TAG;
  const want = createHmac('sha256', key).update(msg.subarray(0, n)).digest().subarray(0, TAG);
  return sameProof(want, msg.subarray(n)) ? msg.subarray(0, n) : undefined;
}

function familyOf(host: string): 'udp4' | 'udp6' {
  return isIP(host) === 6 ? 'udp6' : 'udp4';
}

function endpoint(address: string, port: number, family: string): SocketEndpoint {
  return { address, port, family: family === 'IPv6' ? 'IPv6' : 'IPv4' };
}

function socketBuffer(sock: DgramSocket): number {
  try {
    sock.setRecvBufferSize(SOCKET_BUFFER);
  } catch {
    // capped by the system: take what there is
  }
  try {
    sock.setSendBufferSize(SOCKET_BUFFER);
  } catch {
    // as above
  }
  return sock.getRecvBufferSize();
}

/** @internal */
interface UdpChannelInit<T> extends BaseChannelInit<T> {
  socket: DgramSocket;
  /** The peer, for a server's connections (they share the server's socket). */
  peer: { port: number; address: string } | undefined;
  keys: Keys | undefined;
  /** The peer's initial window (its first grant). */
  peerWindow: number;
  /** The window this end announced in the handshake. */
  window: number;
  /** This end's current receive window, in cost units. */
  share: () => number;
  /** Called once when the channel is finished (the server forgets it; a client closes its socket). */
  release: () => void;
  local: SocketEndpoint;
  remote: SocketEndpoint;
  authenticated: boolean;
}

/**
 * A UDP connection: a two-way {@link SocketConnection} whose messages are
 * datagrams. Rule 2 of the contract ("never drops") holds only while no
 * datagram is lost: on loopback, credit keeps the receiver's buffer from
 * overflowing; on a network a lost datagram is gone (`messagesLost` counts them).
 */
export class UdpChannel<T = unknown> extends InboxChannel<T> implements SocketConnection<T> {
  readonly local: SocketEndpoint;
  readonly remote: SocketEndpoint;
  readonly authenticated: boolean;
  readonly #socket: DgramSocket;
  readonly #peer: { port: number; address: string } | undefined;
  readonly #keys: Keys | undefined;
  readonly #share: () => number;
  readonly #release: () => void;
  // sending
  #seq = 0;
  #sndOffset = 0;
  #peerLimit: number;
  #peerRcvEnd = 0;
  /** The peer answered our latest probe and had nothing queued: one datagram may exceed the credit. */
  #idleGrant = false;
  #queue: Array<{ frame: Frame; cost: number; resolve: () => void; reject: (err: Error) => void }> = [];
  #ackWaiters: Array<() => void> = [];
  #probeTimer: NodeJS.Timeout | undefined;
  #probeDelay = 20;
  /** Cost of the datagram a failed trySend wanted to send (0: none since the last send). */
  #wanted = 0;
  /** sndOffset when the last probe went out (-1: none). */
  #probedAt = -1;
  // receiving
  #rcvEnd = 0;
  #advertised: number;
  #highest = -1;
  readonly #seen = new Int32Array(64).fill(-1);
  #lost = 0;
  #probe: { offset: number; need: number } | undefined;
  #ackScheduled = false;
  // lifetime
  #peerGone: Error | undefined;
  #finished = false;
  #released = false;

  /** @internal */
  constructor(init: UdpChannelInit<T>) {
    super(init);
    this.#socket = init.socket;
    this.#peer = init.peer;
    this.#keys = init.keys;
    this.#share = init.share;
    this.#release = init.release;
    this.#peerLimit = init.peerWindow;
    this.#advertised = init.window;
    this.local = init.local;
    this.remote = init.remote;
    this.authenticated = init.authenticated;
    this.highWaterMark = Infinity;
  }

  /** Datagrams of the peer that never arrived (gaps in its sequence numbers). */
  get messagesLost(): number {
    return this.#lost;
  }

  /** @see SocketConnection.ref */
  ref(): this {
    if (this.#peer === undefined) this.#socket.ref();
    return this;
  }

  /** @see SocketConnection.unref */
  unref(): this {
    if (this.#peer === undefined) this.#socket.unref();
    return this;
  }

  // --- the wire -----------------------------------------------------------

  #transmit(b: Buffer, done?: (err: Error | null) => void): void {
    if (this.#finished || this.#released) {
      done?.(null);
      return;
    }
    if (this.#keys !== undefined) sign(this.#keys.send, b);
    try {
      if (this.#peer === undefined) this.#socket.send(b, done);
      else this.#socket.send(b, this.#peer.port, this.#peer.address, done);
    } catch (err) {
      // The socket is closed under us (its server was destroyed).
      done?.(err as Error);
      this.#gone(err as Error);
    }
  }

  /** Lets go of the socket (a client closes it, a server forgets this peer); once. */
  #releaseOnce(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    this.#release();
  }

  #control(kind: Kind, payload: Uint8Array, type = 0, offset = 0, done?: (err: Error | null) => void): void {
    this.#transmit(datagram(kind, payload, this.#keys !== undefined, type, 0, 0, offset), done);
  }

  /** One datagram from the peer. @internal */
  _datagram(raw: Buffer): void {
    if (this.#finished) return;
    let msg: Buffer | undefined = raw;
    if (this.#keys !== undefined) {
      msg = verified(this.#keys.receive, raw);
      if (msg === undefined) return; // forged, corrupted or from an old session
    }
    switch (kindOf(msg)) {
      case Kind.Data:
        return this.#onData(msg);
      case Kind.Ack:
        return this.#onAck(msg);
      case Kind.Probe:
        return this.#onProbe(msg);
      case Kind.Close:
        return this.#onClose();
      default:
      // handshake leftovers (resent READY answers are the server's business)
    }
  }

  #onData(msg: Buffer): void {
    if (this.#peerGone !== undefined) return;
    const seq = msg.readUInt32LE(12);
    const offset = msg.readUInt32LE(16);
    const size = msg.length - HEADER;
    if (size > this.maxMessageSize) {
      // Only a peer that ignores the agreed limit sends this.
      this.#gone(new ProtocolError(`${this.label}: the peer sent a ${size}-byte message; the agreed limit is ${this.maxMessageSize}`));
      return;
    }
    if (!this.#fresh(seq)) return;
    const type = msg.readInt32LE(4);
    if (type <= 0) {
      this.#gone(new ProtocolError(`${this.label}: the peer sent a message of type ${type}; types are positive`));
      return;
    }
    const end = add(offset, cost(size));
    // A sender stays within the credit granted, plus one datagram when it
    // was told this end had nothing queued: beyond that it ignores flow
    // control, and its datagrams would grow this end's inbox without bound.
    if (diff(end, this.#advertised) > cost(this.maxMessageSize)) {
      this.#gone(new ProtocolError(`${this.label}: the peer sent beyond the credit it was granted (offset ${end >>> 0}, granted ${this.#advertised >>> 0})`));
      return;
    }
    if (diff(end, this.#rcvEnd) > 0) this.#rcvEnd = end;
    const frame: Frame = { payload: msg.subarray(HEADER), type, priority: msg.readInt32LE(8) };
    this._deliver(frame);
    this.#scheduleAck();
  }

  /** Sequence check: drops duplicates and replays, counts gaps. */
  #fresh(seq: number): boolean {
    if (this.#highest < 0) {
      this.#lost += seq;
      this.#highest = seq;
      this.#seen[seq & 63] = seq | 0;
      return true;
    }
    const d = diff(seq, this.#highest);
    if (d > 0) {
      this.#lost += d - 1;
      this.#highest = seq;
    } else {
      if (d <= -64 || this.#seen[seq & 63] === (seq | 0)) return false;
      this.#lost--; // arrived late, not lost
    }
    this.#seen[seq & 63] = seq | 0;
    return true;
  }

  #onAck(msg: Buffer): void {
    if (msg.length < HEADER + ACK_PAYLOAD) return;
    const rcvEnd = msg.readUInt32LE(HEADER);
    const limit = msg.readUInt32LE(HEADER + 4);
    const queued = msg.readUInt32LE(HEADER + 8);
    const echo = msg.readUInt32LE(HEADER + 12);
    if (diff(limit, this.#peerLimit) > 0) this.#peerLimit = limit;
    if (diff(rcvEnd, this.#peerRcvEnd) > 0) this.#peerRcvEnd = rcvEnd;
    if (msg.readInt32LE(4) === ACK_REPLY && echo === this.#sndOffset && queued === 0) this.#idleGrant = true;
    this.#wake();
  }

  #onProbe(msg: Buffer): void {
    const probe = { offset: msg.readUInt32LE(16), need: msg.readUInt32LE(4) };
    // Answer at once (the sender learns what arrived); if that does not
    // meet the need, answer again once it is met.
    this.#probe = this.#satisfies(this.#limit(), probe) ? undefined : probe;
    this.#ack(probe.offset);
  }

  /** Whether a grant up to `limit` lets the prober go on: room for its need (and a quarter window, to batch), or an idle inbox. */
  #satisfies(limit: number, probe: { offset: number; need: number }): boolean {
    return diff(limit, probe.offset) >= Math.max(probe.need, this.#share() / 4) || (this.inboxLength === 0 && this.#rcvEnd === probe.offset);
  }

  #onClose(): void {
    this.#gone(new ClosedError(`${this.label}: the peer closed the channel`));
  }

  /** The peer is gone: what arrived is still received, then `err`; sends fail; the socket is let go. */
  #gone(err: Error): void {
    if (this.#peerGone !== undefined) return;
    this.#peerGone = err;
    this._end(err);
    this.#failSenders(this.#sendError()!);
    this.#releaseOnce();
  }

  /** Socket-level failure (a client's ICMP "port unreachable": the server is gone). @internal */
  _socketError(err: Error): void {
    this.#gone(err);
  }

  // --- credit -------------------------------------------------------------

  #inboxCost(): number {
    return 2 * this.inboxBytes + 1088 * this.inboxLength;
  }

  #limit(): number {
    const share = this.#share();
    const candidate = add(this.#rcvEnd, Math.max(0, share - this.#inboxCost()));
    return diff(candidate, this.#advertised) > 0 ? candidate : this.#advertised;
  }

  #ack(echo?: number): void {
    this.#advertised = this.#limit();
    const p = Buffer.allocUnsafe(ACK_PAYLOAD);
    p.writeUInt32LE(this.#rcvEnd, 0);
    p.writeUInt32LE(this.#advertised, 4);
    p.writeUInt32LE(this.inboxLength, 8);
    p.writeUInt32LE(echo ?? 0, 12);
    this.#control(Kind.Ack, p, echo === undefined ? 1 : ACK_REPLY);
  }

  #scheduleAck(): void {
    if (this.#ackScheduled || this.#finished) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      if (this.#finished) return;
      const limit = this.#limit();
      const share = this.#share();
      const probe = this.#probe;
      if (probe !== undefined && this.#satisfies(limit, probe)) {
        this.#probe = undefined;
        this.#ack(probe.offset);
      } else if (diff(limit, this.#advertised) >= share / 4) {
        this.#ack();
      }
    });
  }

  #canSend(c: number): boolean {
    return diff(this.#peerLimit, this.#sndOffset) >= c || this.#idleGrant;
  }

  /** Sends queued messages, in order, while there is credit. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (!this.#canSend(head.cost)) {
        this.#sendProbe(head.cost);
        return;
      }
      this.#queue.shift();
      this.#emit(head.frame);
      head.resolve();
    }
  }

  #wake(): void {
    this.#pump();
    const waiters = this.#ackWaiters;
    this.#ackWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Asks the peer for credit: at once when this is a new state (something
   * was sent since the last probe), else again only after a backoff, in
   * case the probe or its answer was lost (the peer answers by itself once
   * it has room).
   */
  #sendProbe(need: number): void {
    if (this.#probedAt !== this.#sndOffset) {
      if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
      this.#probeTimer = undefined;
      this.#probeDelay = 20;
      this.#probedAt = this.#sndOffset;
      this.#control(Kind.Probe, new Uint8Array(0), need, this.#sndOffset);
    }
    if (this.#probeTimer !== undefined) return;
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      const need = this.#queue[0]?.cost ?? this.#wanted;
      if (need === 0 || this.#finished) return;
      this.#probedAt = this.#sndOffset;
      this.#control(Kind.Probe, new Uint8Array(0), need, this.#sndOffset);
      this.#probeDelay = Math.min(1000, this.#probeDelay * 2);
      this.#sendProbe(need);
    }, this.#probeDelay);
  }

  #sendError(): Error | undefined {
    if (this.#peerGone !== undefined) {
      return this.#peerGone instanceof ClosedError ? new ClosedError(`${this.label}: the peer closed the channel`) : this.#peerGone;
    }
    if (this.#finished) return new ClosedError(`${this.label} is closed`);
    return undefined;
  }

  #emit(frame: Frame): void {
    const c = cost(frame.payload.length);
    const b = datagram(Kind.Data, frame.payload, this.#keys !== undefined, frame.type, frame.priority, this.#seq, this.#sndOffset);
    this.#seq = add(this.#seq, 1);
    this.#sndOffset = add(this.#sndOffset, c);
    this.#idleGrant = false;
    this.#wanted = 0;
    if (diff(this.#peerLimit, this.#sndOffset) < 0) this.#peerLimit = this.#sndOffset;
    this.#transmit(b);
  }

  /** @internal */
  protected _send(frame: Frame, wait: Wait): Promise<void> {
    const err = this.#sendError();
    if (err !== undefined) return Promise.reject(err);
    const c = cost(frame.payload.length);
    if (this.#queue.length === 0 && this.#canSend(c)) {
      this.#emit(frame);
      return Promise.resolve();
    }
    return waitFor<void>(wait, (resolve, reject) => {
      // The payload may be the caller's buffer: keep a copy while it waits.
      const entry = { frame: { ...frame, payload: Uint8Array.prototype.slice.call(frame.payload) }, cost: c, resolve, reject };
      this.#queue.push(entry);
      this.#pump();
      return () => {
        const i = this.#queue.indexOf(entry);
        if (i >= 0) this.#queue.splice(i, 1);
      };
    });
  }

  /** @internal */
  protected _trySend(frame: Frame): boolean {
    const err = this.#sendError();
    if (err !== undefined) throw err;
    const c = cost(frame.payload.length);
    if (this.#queue.length > 0 || !this.#canSend(c)) {
      this.#wanted = c;
      this.#sendProbe(c);
      return false;
    }
    this.#emit(frame);
    return true;
  }

  #failSenders(err: Error): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) q.reject(err);
    this.#wake();
  }

  /** @internal */
  protected override async _receive(selector: TypeSelector, wait: Wait): Promise<Frame> {
    const frame = await super._receive(selector, wait);
    this.#scheduleAck();
    return frame;
  }

  /** @internal */
  protected _pause(): void {}

  /** @internal */
  protected _resume(): void {
    this.#scheduleAck();
  }

  /** @internal */
  protected override _stats(): Partial<ChannelStats> {
    return { messagesQueued: this.inboxLength, bytesQueued: this.inboxBytes, capacityBytes: Math.floor(this.#share() / 2) };
  }

  // --- lifetime -----------------------------------------------------------

  /** Waits (up to LINGER) until the peer has received everything sent, then says goodbye. */
  async #linger(): Promise<void> {
    const deadline = performance.now() + LINGER;
    while (this.#queue.length > 0 && this.#peerGone === undefined && performance.now() < deadline) await this.#nextAck(deadline);
    if (this.#seq === 0) return;
    let delay = 5;
    while (this.#peerGone === undefined && this.#peerRcvEnd !== this.#sndOffset && performance.now() < deadline) {
      this.#control(Kind.Probe, new Uint8Array(0), 0, this.#sndOffset);
      await this.#nextAck(Math.min(deadline, performance.now() + delay));
      delay = Math.min(200, delay * 2);
    }
  }

  /** Resolves on the next ACK or at `until`. */
  #nextAck(until: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, Math.max(0, until - performance.now()));
      this.#ackWaiters.push(done);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
    });
  }

  /** Stops the channel; resolves once the goodbye left (the socket may then close). */
  #finish(err: Error): Promise<void> {
    if (this.#finished) return Promise.resolve();
    this._failReceivers(err);
    const sent = this.#peerGone === undefined
      ? new Promise<void>((resolve) => this.#control(Kind.Close, new Uint8Array(0), 0, 0, () => resolve()))
      : Promise.resolve();
    this.#finished = true;
    this.#failSenders(err);
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    return sent.then(() => this.#releaseOnce());
  }

  /** @internal */
  protected async _close(): Promise<void> {
    this._failReceivers(new ClosedError(`${this.label} is closed`));
    await this.#linger();
    await this.#finish(new ClosedError(`${this.label} is closed`));
  }

  /** @internal */
  protected _destroy(err: Error | undefined): void {
    void this.#finish(err ?? new ClosedError(`${this.label} was destroyed`));
  }
}

// --- the server -------------------------------------------------------------

interface HalfOpen {
  hello: Hello;
  welcome: Hello;
  /** WELCOME as sent, resent on a repeated HELLO. */
  datagram: Buffer;
  timer: NodeJS.Timeout;
}

interface Established {
  channel: UdpChannel<unknown>;
  hello: Hello;
  /** READY as sent, resent on a repeated PROOF. */
  ready: Buffer;
}

/** @internal */
class UdpServer<T> extends SocketServer<T> {
  readonly #socket: DgramSocket;
  readonly #target: Target;
  readonly #key: Buffer | undefined;
  readonly #codec: Codec<T>;
  readonly #maxMessageSize: number;
  readonly #handshakeTimeout: number;
  readonly #capacity: number;
  readonly #halfOpen = new Map<string, HalfOpen>();
  readonly #established = new Map<string, Established>();
  #released: Promise<void> | undefined;

  constructor(socket: DgramSocket, target: Target, key: Buffer | undefined, codec: Codec<T>, maxMessageSize: number, handshakeTimeout: number) {
    const a = socket.address();
    super(UDP_TRAITS, socket, endpoint(a.address, a.port, a.family));
    this.#socket = socket;
    this.#target = { ...target, label: `udp ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` };
    this.#key = key;
    this.#codec = codec;
    this.#maxMessageSize = maxMessageSize;
    this.#handshakeTimeout = handshakeTimeout;
    this.#capacity = socketBuffer(socket);
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    socket.on('error', (err) => this._error(err));
  }

  /** Each connection's share of the socket buffer: half of it, split evenly. */
  #share(): number {
    return Math.max(4096, Math.floor(this.#capacity / 2 / Math.max(1, this.#established.size)));
  }

  #send(b: Buffer, rinfo: RemoteInfo): void {
    if (!this.closed) this.#socket.send(b, rinfo.port, rinfo.address);
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const id = `${rinfo.address}|${rinfo.port}`;
    const kind = kindOf(msg);
    if (kind === Kind.Hello) return this.#onHello(id, msg, rinfo);
    if (kind === Kind.Proof) return this.#onProof(id, msg, rinfo);
    this.#established.get(id)?.channel._datagram(msg);
  }

  #onHello(id: string, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const hello = decodeHello(msg);
    if (hello === undefined) return;
    const known = this.#established.get(id);
    if (known !== undefined && known.hello.nonce.equals(hello.nonce)) return; // a late copy
    const pending = this.#halfOpen.get(id);
    if (pending !== undefined) {
      if (pending.hello.nonce.equals(hello.nonce)) this.#send(pending.datagram, rinfo);
      return;
    }
    if (this.#halfOpen.size >= MAX_HALF_OPEN) return;
    const remote = endpoint(rinfo.address, rinfo.port, rinfo.family);
    const dg = datagram(Kind.Welcome, encodeHello(randomBytes(NONCE_SIZE), this.#key !== undefined, this.#maxMessageSize, this.#share()), false);
    const welcome = decodeHello(dg)!;
    this.#send(dg, rinfo);
    if (hello.auth !== welcome.auth) {
      // The client sees the same mismatch in WELCOME and gives up.
      this._reject(
        new AuthError(hello.auth ? `${this.#target.label}: a client sent an authKey, but this server has none` : `${this.#target.label}: a client without authKey was refused (this server requires one)`),
        remote,
      );
      return;
    }
    const timer = setTimeout(() => {
      if (this.#halfOpen.get(id)?.timer !== timer) return;
      this.#halfOpen.delete(id);
      this._reject(new TimeoutError(`${this.#target.label}: client ${rinfo.address}:${rinfo.port} did not finish the handshake within ${this.#handshakeTimeout} ms`, this.#handshakeTimeout), remote);
    }, this.#handshakeTimeout);
    this.#halfOpen.set(id, { hello, welcome, datagram: dg, timer });
  }

  #onProof(id: string, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    const known = this.#established.get(id);
    const pending = this.#halfOpen.get(id);
    if (pending === undefined) {
      if (known !== undefined) this.#send(known.ready, rinfo);
      return;
    }
    const remote = endpoint(rinfo.address, rinfo.port, rinfo.family);
    const key = this.#key;
    const proof = msg.subarray(HEADER);
    let ready: Buffer;
    if (key !== undefined) {
      if (!sameProof(proof, hmac(key, CLIENT_LABEL, pending.welcome.bytes, pending.hello.bytes))) {
        clearTimeout(pending.timer);
        this.#halfOpen.delete(id);
        this.#send(datagram(Kind.Reject, new Uint8Array(0), false), rinfo);
        this._reject(new AuthError(`${this.#target.label}: client ${rinfo.address}:${rinfo.port} has a wrong authKey`), remote);
        return;
      }
      ready = datagram(Kind.Ready, hmac(key, SERVER_LABEL, pending.hello.bytes, pending.welcome.bytes), false);
    } else {
      if (proof.length !== 0) return;
      ready = datagram(Kind.Ready, new Uint8Array(0), false);
    }
    clearTimeout(pending.timer);
    this.#halfOpen.delete(id);
    // A client that reconnects from the same port replaces its old connection.
    known?.channel.destroy(new ClosedError(`${this.#target.label}: client ${rinfo.address}:${rinfo.port} connected again`));
    const peer = { port: rinfo.port, address: rinfo.address };
    const channel: UdpChannel<T> = new UdpChannel<T>({
      socket: this.#socket,
      peer,
      keys: key === undefined ? undefined : sessionKeys(key, pending.hello, pending.welcome, 'server'),
      peerWindow: pending.hello.window,
      window: pending.welcome.window,
      share: () => this.#share(),
      release: () => {
        if (this.#established.get(id)?.channel === (channel as UdpChannel<unknown>)) this.#established.delete(id);
        this._forget(channel);
      },
      traits: UDP_TRAITS,
      codec: this.#codec,
      maxMessageSize: Math.min(this.#maxMessageSize, pending.hello.maxMessageSize),
      label: `${this.#target.label} (client ${rinfo.address}:${rinfo.port})`,
      canSend: true,
      canReceive: true,
      local: this.address,
      remote,
      authenticated: key !== undefined,
    });
    this.#established.set(id, { channel: channel as UdpChannel<unknown>, hello: pending.hello, ready });
    this.#send(ready, rinfo);
    this._accept(channel);
  }

  protected _stopListening(): void {
    for (const h of this.#halfOpen.values()) clearTimeout(h.timer);
    this.#halfOpen.clear();
  }

  protected _release(): Promise<void> {
    this.#released ??= new Promise<void>((resolve) => {
      for (const e of [...this.#established.values()]) e.channel.destroy();
      this.#socket.close(() => resolve());
    });
    return this.#released;
  }
}

function bindSocket(sock: DgramSocket, port: number, host: string | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port, address: host, exclusive: true }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
}

interface UdpCommon<T> {
  key: Buffer | undefined;
  codec: Codec<T>;
  maxMessageSize: number;
  handshakeTimeout: number;
}

function udpCommon<T>(opts: { authKey?: unknown; codec?: unknown; maxMessageSize?: unknown; handshakeTimeout?: unknown }): UdpCommon<T> {
  const key = resolveAuthKey(opts.authKey, 'options.authKey');
  const limit = key === undefined ? UDP_MAX_PAYLOAD : UDP_MAX_PAYLOAD_AUTH;
  const maxMessageSize =
    opts.maxMessageSize === undefined
      ? limit
      : capMaxMessageSize(validateMaxMessageSize(opts.maxMessageSize), limit, `UDP datagram (${UDP_MAX_DATAGRAM} bytes less the ${key === undefined ? HEADER : HEADER + TAG}-byte header${key === undefined ? '' : ' and tag'})`);
  const codec = resolveCodec<T>(opts.codec, 'structured');
  const handshakeTimeout = validateHandshakeTimeout(opts.handshakeTimeout);
  return { key, codec, maxMessageSize, handshakeTimeout };
}

/** `Socket.listen` for protocol 'udp'. @internal */
export async function listenUdp<T>(target: Target, opts: Partial<ChannelOptions<T>> & { authKey?: unknown; handshakeTimeout?: unknown }): Promise<SocketServer<T>> {
  if (target.kind === 'unix') throw new TypeError('unreachable');
  const c = udpCommon<T>(opts);
  checkListenHost(c.key, target.label, target.host);
  const sock = createSocket({ type: familyOf(target.host), reuseAddr: false });
  try {
    await bindSocket(sock, target.port, target.host);
  } catch (err) {
    sock.close();
    throw systemError(err, 'udp socket', `${target.host}:${target.port}`);
  }
  const a = sock.address();
  if (c.key === undefined && !isLoopback(a.address)) {
    sock.close();
    throw authRequired(target.label, a.address);
  }
  return new UdpServer<T>(sock, target, c.key, c.codec, c.maxMessageSize, c.handshakeTimeout);
}

/** One handshake attempt of a client; resolves with what the channel needs. */
function clientHandshake(sock: DgramSocket, c: UdpCommon<unknown>, window: number, label: string, wait: Wait): Promise<{ welcome: Hello; hello: Hello; early: Buffer[] }> {
  return waitFor(wait, (resolve, reject) => {
    const helloBytes = encodeHello(randomBytes(NONCE_SIZE), c.key !== undefined, c.maxMessageSize, window);
    const hello = decodeHello(datagram(Kind.Hello, helloBytes, false))!;
    let welcome: Hello | undefined;
    let current = datagram(Kind.Hello, helloBytes, false);
    let delay = 100;
    let timer: NodeJS.Timeout | undefined;
    const early: Buffer[] = [];
    const resend = (): void => {
      sock.send(current);
      timer = setTimeout(resend, delay);
      delay = Math.min(1000, delay * 2);
    };
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      sock.off('message', onMessage);
      sock.off('error', onError);
    };
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onError = (err: Error): void => fail(err);
    const onMessage = (msg: Buffer): void => {
      const kind = kindOf(msg);
      if (kind === Kind.Welcome && welcome === undefined) {
        const w = decodeHello(msg);
        if (w === undefined) return fail(new ProtocolError(`${label}: the server sent a malformed WELCOME`));
        if (w.auth !== hello.auth) {
          return fail(new AuthError(hello.auth ? `${label}: the server has no authKey, but this end requires one` : `${label}: the server requires an authKey; pass the shared secret as options.authKey`));
        }
        welcome = w;
        current = datagram(Kind.Proof, c.key === undefined ? new Uint8Array(0) : hmac(c.key, CLIENT_LABEL, w.bytes, hello.bytes), false);
        if (timer !== undefined) clearTimeout(timer);
        delay = 100;
        resend();
      } else if (kind === Kind.Reject && welcome !== undefined) {
        fail(new AuthError(`${label}: the server refused this authKey`));
      } else if (kind === Kind.Ready && welcome !== undefined) {
        const proof = msg.subarray(HEADER);
        if (c.key !== undefined && !sameProof(proof, hmac(c.key, SERVER_LABEL, hello.bytes, welcome.bytes))) {
          return fail(new AuthError(`${label}: the server could not prove that it knows the authKey`));
        }
        cleanup();
        resolve({ welcome, hello, early });
      } else if (welcome !== undefined && kind !== undefined && kind < Kind.Hello && early.length < MAX_EARLY) {
        early.push(msg); // the server may talk before our copy of READY arrives
      }
    };
    sock.on('message', onMessage);
    sock.on('error', onError);
    resend();
    return cleanup;
  });
}

/** `Socket.connect` for protocol 'udp'. @internal */
export async function connectUdp<T>(
  target: Target,
  opts: Partial<ChannelOptions<T>> & { authKey?: unknown; handshakeTimeout?: unknown; retry?: unknown; timeout?: unknown; signal?: unknown },
): Promise<UdpChannel<T>> {
  if (target.kind === 'unix') throw new TypeError('unreachable');
  const c = udpCommon<T>(opts);
  const { retry, signal, wait } = connectPolicy(opts, target.label);
  checkSignal(signal);
  const sock = createSocket({ type: familyOf(target.host) });
  // ICMP errors of late handshake datagrams may arrive between attempts; the
  // attempt in progress (or, later, the channel) has its own listener.
  sock.on('error', () => {});
  const fail = (err: unknown): never => {
    sock.close();
    throw systemError(err, 'udp socket', target.label.slice(4));
  };
  try {
    await bindSocket(sock, 0, isLoopback(target.host) ? target.host : undefined);
    await waitFor<void>(wait, (resolve, reject) => {
      sock.once('error', reject);
      sock.connect(target.port, target.host, () => {
        sock.off('error', reject);
        resolve();
      });
      return () => sock.off('error', reject);
    });
  } catch (err) {
    fail(err);
  }
  const capacity = socketBuffer(sock);
  const window = Math.floor(capacity / 2);
  for (let failures = 0; ; ) {
    try {
      const hs = await clientHandshake(sock, c as UdpCommon<unknown>, window, target.label, innerWait(wait, c.handshakeTimeout, `the handshake with ${target.label}`));
      const a = sock.address();
      const r = sock.remoteAddress();
      const channel: UdpChannel<T> = new UdpChannel<T>({
        socket: sock,
        peer: undefined,
        keys: c.key === undefined ? undefined : sessionKeys(c.key, hs.hello, hs.welcome, 'client'),
        peerWindow: hs.welcome.window,
        window,
        share: () => window,
        release: () => sock.close(),
        traits: UDP_TRAITS,
        codec: c.codec,
        maxMessageSize: Math.min(c.maxMessageSize, hs.welcome.maxMessageSize),
        label: `${target.label} (connection to the server)`,
        canSend: true,
        canReceive: true,
        local: endpoint(a.address, a.port, a.family),
        remote: endpoint(r.address, r.port, r.family),
        authenticated: c.key !== undefined,
      });
      sock.on('message', (msg) => channel._datagram(msg));
      sock.on('error', (err) => channel._socketError(systemError(err, 'udp socket', target.label.slice(4)) as Error));
      for (const m of hs.early) channel._datagram(m);
      return channel;
    } catch (err) {
      failures++;
      if (!retriable(err) || failures >= retry.attempts) return fail(err);
      try {
        await sleep(backoff(retry, failures), wait);
      } catch (e) {
        return fail(e);
      }
    }
  }
}
