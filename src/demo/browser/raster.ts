/**
 * Pixels for the browser demo: a 3x5 bitmap font and a few drawing calls on
 * an RGBA frame. Renderers draw pages with these; the GPU process copies them.
 */

// Each glyph: five rows of three bits, top row first (bit 2 = left column).
const GLYPHS: Record<string, number[]> = {
  A: [2, 5, 7, 5, 5], B: [6, 5, 6, 5, 6], C: [3, 4, 4, 4, 3], D: [6, 5, 5, 5, 6], E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4], G: [3, 4, 5, 5, 3], H: [5, 5, 7, 5, 5], I: [7, 2, 2, 2, 7], J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5], L: [4, 4, 4, 4, 7], M: [5, 7, 7, 5, 5], N: [6, 5, 5, 5, 5], O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4], Q: [2, 5, 5, 6, 3], R: [6, 5, 6, 5, 5], S: [3, 4, 2, 1, 6], T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7], V: [5, 5, 5, 5, 2], W: [5, 5, 7, 7, 5], X: [5, 5, 2, 5, 5], Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7], '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [6, 1, 2, 4, 7], '3': [6, 1, 2, 1, 6],
  '4': [5, 5, 7, 1, 1], '5': [7, 4, 6, 1, 6], '6': [3, 4, 7, 5, 7], '7': [7, 1, 2, 2, 2], '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 6], ' ': [0, 0, 0, 0, 0], '.': [0, 0, 0, 0, 2], '!': [2, 2, 2, 0, 2], '-': [0, 0, 7, 0, 0],
  ':': [0, 2, 0, 2, 0], ',': [0, 0, 0, 2, 4], '?': [6, 1, 2, 0, 2], "'": [2, 2, 0, 0, 0], '/': [1, 1, 2, 4, 4],
  '#': [5, 7, 5, 7, 5], '(': [1, 2, 2, 2, 1], ')': [4, 2, 2, 2, 4], '+': [0, 2, 7, 2, 0], '=': [0, 7, 0, 7, 0],
};

/** An RGBA frame: `width * height * 4` bytes, row by row. */
export interface Frame {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
}

/** Parses `#rgb` or `#rrggbb`; anything else is `fallback`. */
export function parseColor(text: string | undefined, fallback: number): number {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(text?.trim() ?? '');
  if (!m) return fallback;
  const h = m[1]!;
  if (h.length === 3) return parseInt(h.split('').map((c) => c + c).join(''), 16);
  return parseInt(h, 16);
}

/** Fills a rectangle (clipped to the frame) with a 0xRRGGBB colour. */
export function fillRect(f: Frame, x: number, y: number, w: number, h: number, rgb: number): void {
  const x0 = Math.max(0, Math.floor(x));
  const y0 = Math.max(0, Math.floor(y));
  const x1 = Math.min(f.width, Math.floor(x + w));
  const y1 = Math.min(f.height, Math.floor(y + h));
  const r = (rgb >> 16) & 255;
  const g = (rgb >> 8) & 255;
  const b = rgb & 255;
  for (let yy = y0; yy < y1; yy++) {
    let i = (yy * f.width + x0) * 4;
    for (let xx = x0; xx < x1; xx++, i += 4) {
      f.pixels[i] = r;
      f.pixels[i + 1] = g;
      f.pixels[i + 2] = b;
      f.pixels[i + 3] = 255;
    }
  }
}

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale: number): number {
  return text.length * 4 * scale;
}

/** Draws upper-cased `text` with its top-left corner at (x, y). */
export function drawText(f: Frame, x: number, y: number, text: string, rgb: number, scale = 2): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const rows = GLYPHS[ch] ?? GLYPHS['?']!;
    for (let row = 0; row < 5; row++) {
      for (let col = 0; col < 3; col++) {
        if (rows[row]! & (4 >> col)) fillRect(f, cx + col * scale, y + row * scale, scale, scale, rgb);
      }
    }
    cx += 4 * scale;
  }
}

/** Splits `text` into lines of at most `columns` characters, at spaces where possible. */
export function wrap(text: string, columns: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    for (let w = word; w.length > 0; ) {
      const room = line ? columns - line.length - 1 : columns;
      if (w.length <= room) {
        line = line ? `${line} ${w}` : w;
        w = '';
      } else if (line) {
        lines.push(line);
        line = '';
      } else {
        lines.push(w.slice(0, columns));
        w = w.slice(columns);
      }
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** Copies a `w` x `h` block from `src` at (sx, sy) to `dst` at (dx, dy), clipped. */
export function blit(src: Frame, sx: number, sy: number, dst: Frame, dx: number, dy: number, w: number, h: number): void {
  for (let row = 0; row < h; row++) {
    const syy = sy + row;
    const dyy = dy + row;
    if (syy < 0 || syy >= src.height || dyy < 0 || dyy >= dst.height) continue;
    const x0 = Math.max(0, -dx, -sx);
    const x1 = Math.min(w, src.width - sx, dst.width - dx);
    if (x1 <= x0) continue;
    const s = (syy * src.width + sx + x0) * 4;
    dst.pixels.set(src.pixels.subarray(s, s + (x1 - x0) * 4), (dyy * dst.width + dx + x0) * 4);
  }
}
