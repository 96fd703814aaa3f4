/**
 * Wall-clock stamps for the stats' last send and receive times, without a
 * clock read per message (Date.now() costs about 100 ns on some virtual
 * machines, as much as a small message's whole send). The clock is read at
 * most once per event-loop turn and again every 1024 stamps, so a stamp lags
 * by at most one turn's work or 1023 messages of one synchronous loop.
 *
 * @internal
 */
let now = 0;
let fresh = false;
let count = 0;

function expire(): void {
  fresh = false;
}

/** The time in ms, as Date.now(), read at most once per event-loop turn and every 1024 calls. @internal */
export function stampNow(): number {
  if (!fresh || (++count & 1023) === 0) {
    now = Date.now();
    if (!fresh) {
      fresh = true;
      setImmediate(expire).unref();
    }
  }
  return now;
}

/**
 * The first value to store in number fields that will hold stamps, fractions
 * or totals beyond small integers: V8 then keeps them as doubles from the
 * start. A field that starts as a small integer and later gets a double
 * changes representation: every object of that shape gets a new hidden
 * class, and the code optimized for the old one is thrown away. With ShmRing
 * that happened when one end of a duplex stamped its first send after a long
 * run of receives: the next burst ran unoptimized while its hot functions
 * compiled again. Store the real initial value right after. @internal
 */
export const DOUBLE_FIELD = 0.5;
