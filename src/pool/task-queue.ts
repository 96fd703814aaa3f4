/**
 * The pool's queue of tasks waiting for a worker: a FIFO that is O(1) at
 * both ends. (`Array.prototype.shift` copies the whole array once it is
 * large, about 16k elements and up: a burst of 50,000 `run()` calls spent
 * most of its time there.)
 * @internal
 */
export class TaskQueue<T> {
  // Items live from #head on; the slots before it are empty.
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Items queued. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** The `i`-th item from the front (0: the next one), or undefined. */
  at(i: number): T | undefined {
    return i < 0 ? undefined : this.#items[this.#head + i];
  }

  /** Adds `item` at the back. */
  push(item: T): void {
    this.#items.push(item);
  }

  /** Takes the front item, or undefined when empty. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head === items.length) return undefined;
    const item = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      // Mostly empty slots: compact (amortized O(1)).
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Puts `item` back at the front. */
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }

  /** Puts `items` back at the front, in their order (any number of them). */
  unshiftAll(items: readonly T[]): void {
    if (items.length <= this.#head) {
      for (let i = items.length - 1; i >= 0; i--) this.#items[--this.#head] = items[i];
    } else {
      this.#items = items.concat(this.#items.slice(this.#head) as T[]);
      this.#head = 0;
    }
  }

  /** Removes `item` wherever it is; false when it is not queued. */
  remove(item: T): boolean {
    const i = this.#items.indexOf(item, this.#head);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    return true;
  }

  /** Empties the queue and returns what it held, front first. */
  takeAll(): T[] {
    const all = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return all;
  }
}
