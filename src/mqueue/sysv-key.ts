/**
 * Queue name -> System V key. Kept apart from the backend (no addon import)
 * so that tools and tests can compute keys cheaply.
 *
 * @internal
 */

/**
 * The System V key of a queue name: FNV-1a (32 bits) of its UTF-8 bytes,
 * without the leading '/', as a signed 32-bit integer; never 0 (IPC_PRIVATE).
 * @internal
 */
export function sysvKey(name: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name.startsWith('/') ? name.slice(1) : name, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  h |= 0;
  return h === 0 ? 1 : h;
}
