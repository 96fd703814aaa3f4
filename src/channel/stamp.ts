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
