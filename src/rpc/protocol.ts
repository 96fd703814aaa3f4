/**
 * The RPC wire protocol. Messages are small arrays, so that every object
 * codec (structured, json, msgpack) carries them; arguments, results and
 * error properties are passed to the codec as they are.
 *
 * Two channel message types keep the directions apart, so that both ends of
 * one two-way channel may expose and connect at the same time:
 *
 *   request type (caller -> exposer)
 *     [CALL, id, method, args]          call `method(...args)`
 *     [CANCEL, id, reason]              the caller gave up (reason: 'abort' | 'timeout' | 'closed')
 *   response type (exposer -> caller)
 *     [RESULT, id]                      the method returned undefined
 *     [RESULT, id, value]               the method returned `value`
 *     [ERROR, id, error]                the method threw; `error` as in remote-error.ts
 *
 * Ids are positive integers chosen by the caller, unique per channel end and
 * message types. All messages have priority 0: a cancel must never overtake
 * the call it cancels.
 *
 * @internal
 */
import type { Channel, Receiver, Sender } from '../channel/channel.js';
import { ClosedError, ProtocolError, typeError, validateInteger } from '../errors.js';

/** @internal */
export const CALL = 1;
/** @internal */
export const CANCEL = 2;
/** @internal */
export const RESULT = 3;
/** @internal */
export const ERROR = 4;

/** @internal */
export type CancelReason = 'abort' | 'timeout' | 'closed';

/**
 * The channel message types RPC uses unless told otherwise: near the top of
 * the type range, so that a receive of the application's own types (and the
 * System V "lowest type up to N" selector) never takes an RPC message.
 */
export const defaultMessageTypes: Readonly<MessageTypes> = Object.freeze({ request: 0x7fff_ff00, response: 0x7fff_ff01 });

/** The channel message types of requests and responses; both sides must use the same pair. */
export interface MessageTypes {
  /** Type of calls and cancels (caller to exposer). */
  request: number;
  /** Type of results and errors (exposer to caller). */
  response: number;
}

/**
 * What RPC runs over: a two-way {@link Channel}, or two one-way channels (a
 * `sender` towards the other process and a `receiver` from it).
 */
export type RpcChannel = Channel<any> | { sender: Sender<any>; receiver: Receiver<any> };

/** A channel split into its two directions. @internal */
export interface Ends {
  sender: Sender<any>;
  receiver: Receiver<any>;
}

function isSender(x: unknown): x is Sender<any> {
  return x !== null && typeof x === 'object' && typeof (x as Sender<any>).send === 'function' && typeof (x as Sender<any>).trySend === 'function';
}

function isReceiver(x: unknown): x is Receiver<any> {
  return x !== null && typeof x === 'object' && typeof (x as Receiver<any>).receive === 'function';
}

/** Checks the `channel` argument and splits it. @internal */
export function channelEnds(channel: unknown): Ends {
  if (isSender(channel) && isReceiver(channel)) return { sender: channel, receiver: channel };
  if (channel !== null && typeof channel === 'object') {
    const { sender, receiver } = channel as { sender?: unknown; receiver?: unknown };
    if (isSender(sender) && isReceiver(receiver)) return { sender, receiver };
  }
  throw typeError('ERR_INVALID_ARG_TYPE', 'The "channel" argument must be a two-way Channel or an object { sender, receiver } of two one-way channels');
}

/** Closes the channel (both ends when they differ). @internal */
export async function closeEnds(ends: Ends): Promise<void> {
  if ((ends.sender as unknown) === ends.receiver) return ends.sender.close();
  await Promise.all([ends.sender.close(), ends.receiver.close()]);
}

/** Destroys the channel (both ends when they differ). @internal */
export function destroyEnds(ends: Ends, err?: Error): void {
  ends.sender.destroy(err);
  if ((ends.sender as unknown) !== ends.receiver) ends.receiver.destroy(err);
}

/** Checks `options.messageTypes`. @internal */
export function validateMessageTypes(value: unknown): MessageTypes {
  if (value === undefined) return defaultMessageTypes;
  if (value === null || typeof value !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "options.messageTypes" argument must be an object { request, response }');
  }
  const { request, response } = value as Partial<MessageTypes>;
  validateInteger(request, 'options.messageTypes.request', 1, 2 ** 31 - 1);
  validateInteger(response, 'options.messageTypes.response', 1, 2 ** 31 - 1);
  if (request === response) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'The option "messageTypes" must use two different types for requests and responses');
  }
  return { request: request!, response: response! };
}

/** True for a message id: a positive safe integer. @internal */
export function isId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
}

/**
 * Whether a failed receive ends an RPC receive loop. A message the codec
 * could not decode is skipped; closing, a broken connection, a system error,
 * the same error twice or a long run of failures ends the loop.
 */
function endsReceiving(err: unknown, receiver: Receiver<any>, previous: unknown, failures: number): boolean {
  return (
    err instanceof ClosedError ||
    err instanceof ProtocolError ||
    receiver.closed ||
    err === previous ||
    failures > 100 ||
    (err instanceof Error && 'syscall' in err)
  );
}

/**
 * The receive loop of an RPC end: hands every message of `type` to
 * `onMessage` until `signal` aborts (it then returns quietly) or the channel
 * ends (see endsReceiving: `onEnd` gets the error). A message the codec could
 * not decode is skipped.
 * @internal
 */
export async function receiveLoop(receiver: Receiver<any>, type: number, signal: AbortSignal, onMessage: (message: unknown) => void, onEnd: (err: unknown) => void): Promise<void> {
  const options = { type, signal };
  let previous: unknown;
  let failures = 0;
  for (;;) {
    let message: unknown;
    try {
      message = await receiver.receive(options);
    } catch (err) {
      if (signal.aborted) return;
      if (endsReceiving(err, receiver, previous, ++failures)) {
        onEnd(err);
        return;
      }
      previous = err;
      continue;
    }
    previous = undefined;
    failures = 0;
    onMessage(message);
  }
}
