/**
 * Layout of a ring segment. Everything is 32-bit words, addressed as
 * Int32Array indexes; fields that different parties write sit on their own
 * 64-byte cache lines so that a sender and a receiver do not fight over one.
 *
 *    byte 0     header: magic, version, mode, geometry, flags, state
 *    byte 64    sender line: tail, totals, last sender pid
 *    byte 128   receiver line: head, totals, last receiver pid
 *    byte 192   "not empty": receivers-waiting flag, epoch (futex word)
 *    byte 256   "not full": senders-waiting flag, epoch (futex word)
 *    byte 512   sender entries, then receiver entries (64 bytes each)
 *    ...        MPMC only: one sequence word per slot
 *    page       data: `capacity` bytes
 *
 * A record in the data area is a 16-byte header and the payload:
 *
 *    0  u32  payload length
 *    4  i32  type (>= 1), or PAD (0) or ABANDONED (-1)
 *    8  i32  priority (ABANDONED: the pid of the writer that died)
 *   12  u32  span: bytes the record occupies (SPSC) or slots (MPMC)
 *
 * @internal
 */

export const MAGIC = 0x4d50524e; // 'MPRN'
export const VERSION = 2;

export const enum Mode {
  Spsc = 1,
  Mpmc = 2,
}

// Header words.
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_MODE = 2;
export const H_CAPACITY = 3;
export const H_SLOT = 4;
export const H_SLOTS = 5;
export const H_MAX_MESSAGE = 6;
export const H_READY = 7;
/** Sticky flags: PRIORITY_USED. */
export const H_FLAGS = 8;
/** Bit 0: every sender closed (SENDERS_CLOSED); bits 1..31: sender registration generation. */
export const H_STATE = 9;
export const H_SENDERS = 10;
export const H_RECEIVERS = 11;
export const H_SEQ = 12;
export const H_DATA = 13;
/** Source of registration tokens. */
export const H_TOKENS = 14;
export const H_CREATOR = 15;

// Sender line.
export const P_TAIL = 16;
export const P_SENT = 17;
export const P_SENT_BYTES = 18;
export const P_LAST_PID = 19;
/** SPSC: messages lost to senders that died while writing them (reported by receivers). */
export const P_LOST = 20;

// Receiver line.
export const C_HEAD = 32;
export const C_RECEIVED = 33;
export const C_RECEIVED_BYTES = 34;
export const C_LAST_PID = 35;

// Wait words.
/** Bits: WAIT_FUTEX (a receiver sleeps on R_EPOCH), WAIT_BELL (a receiver entry has its doorbell armed). */
export const R_WAITING = 48;
export const R_EPOCH = 49;
export const W_WAITING = 64;
export const W_EPOCH = 65;

export const ENTRIES_BYTE = 512;
export const ENTRY_BYTES = 64;
// Entry words.
/** 0: free; < 0: being set up or cleaned by thread -token; > 0: registration token. */
export const E_TOKEN = 0;
export const E_PID = 1;
export const E_TID = 2;
/** SPSC sender: 1 while a message is being written. */
export const E_STATE = 3;
/** MPMC: the position this party is claiming (announced before the claim). */
export const E_POS = 4;
/** MPMC sender: slots of the claim. */
export const E_SPAN = 5;
/** Receiver: doorbell id + 1 (0: none; BELL_UNREACHABLE: senders cannot reach it), the token to ring it with, and 1 while armed. */
export const E_BELL = 6;
export const E_BELL_TOKEN = 7;
export const E_ARMED = 8;

export const BELL_UNREACHABLE = -1;
export const WAIT_FUTEX = 1;
export const WAIT_BELL = 2;

export const FLAG_PRIORITY_USED = 1;
export const STATE_CLOSED = 1;

export const RECORD_HEADER = 16;
export const PAD = 0;
export const ABANDONED = -1;

/** Largest number of senders / receivers of an MPMC ring (the sequence word has 6 bits for an entry). */
export const MAX_PARTIES = 64;
/** MPMC slot positions are 24 bits wide in the sequence word; keep differences far below 2^23. */
export const MAX_SLOTS = 1 << 22;
export const MAX_CAPACITY = 1 << 30;
export const MIN_CAPACITY = 4096;

export interface Geometry {
  mode: Mode;
  capacity: number;
  slotSize: number;
  slots: number;
  senders: number;
  receivers: number;
  seqByte: number;
  dataByte: number;
  size: number;
}

const PAGE = 4096;

/** Where everything goes for the given parameters. @internal */
export function geometry(mode: Mode, capacity: number, slotSize: number, senders: number, receivers: number): Geometry {
  const slots = mode === Mode.Mpmc ? capacity / slotSize : 0;
  const seqByte = ENTRIES_BYTE + (senders + receivers) * ENTRY_BYTES;
  const dataByte = Math.ceil((seqByte + slots * 4) / PAGE) * PAGE;
  return { mode, capacity, slotSize, slots, senders, receivers, seqByte, dataByte, size: dataByte + capacity };
}

/** Int32 index of entry `j` of the sender (or receiver) table. @internal */
export function entryIndex(g: Pick<Geometry, 'senders'>, receiver: boolean, j: number): number {
  return (ENTRIES_BYTE + ((receiver ? g.senders : 0) + j) * ENTRY_BYTES) >> 2;
}
