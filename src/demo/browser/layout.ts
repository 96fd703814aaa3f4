/**
 * Turns a page of the demo's HTML subset into pixels: <title>, <body
 * bgcolor>, <h1>, <p>, <marquee color> (moves with the frame number),
 * <embed type="application/x-clock" width height> (an area the GPU process
 * fills with the plugin's frame) and <file src> (text a privileged process
 * read for the renderer).
 */
import { drawText, fillRect, parseColor, textWidth, wrap, type Frame } from './raster.js';

export interface Page {
  url: string;
  html: string;
  /** Text of <file> elements, read by the browser process. */
  files?: Record<string, string>;
}

export interface Layout {
  title: string;
  /** Where a plugin goes, if the page embeds one. */
  embed: { x: number; y: number; w: number; h: number } | null;
  /** The <file src> paths the page references. */
  files: string[];
}

const attr = (tag: string, name: string): string | undefined =>
  new RegExp(`${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag)?.[1];
const text = (s: string): string => s.replace(/<[^>]*>/g, '').replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();

/** Lists what a page needs before it can be drawn. */
export function scan(html: string): Layout {
  const title = text(/<title>([\s\S]*?)<\/title>/i.exec(html)?.[1] ?? '');
  const files = [...html.matchAll(/<file\b[^>]*>/gi)].map((m) => attr(m[0], 'src') ?? '').filter(Boolean);
  return { title, embed: null, files };
}

/** Draws `page` into `frame` as frame number `n`; returns its layout. */
export function draw(page: Page, frame: Frame, n: number): Layout {
  const { html } = page;
  const layout = scan(html);
  const W = frame.width;
  fillRect(frame, 0, 0, W, frame.height, parseColor(attr(/<body\b[^>]*>/i.exec(html)?.[0] ?? '', 'bgcolor'), 0xffffff));
  fillRect(frame, 0, 0, W, 14, 0x073642);
  drawText(frame, 4, 2, layout.title.slice(0, Math.floor((W - 8) / 8)), 0xfdf6e3);
  let y = 20;
  const columns = Math.floor((W - 8) / 8);
  const body = /<body\b[^>]*>([\s\S]*)<\/body>/i.exec(html)?.[1] ?? html;
  for (const m of body.matchAll(/<(h1|p|marquee|embed|file)\b([^>]*)>(?:([\s\S]*?)<\/\1>)?/gi)) {
    const tag = m[1]!.toLowerCase();
    const open = `<${tag}${m[2] ?? ''}>`;
    if (tag === 'h1') {
      for (const line of wrap(text(m[3] ?? ''), Math.floor((W - 8) / 12))) {
        drawText(frame, 4, y, line, 0x002b36, 3);
        y += 18;
      }
      y += 4;
    } else if (tag === 'p') {
      for (const line of wrap(text(m[3] ?? ''), columns)) {
        drawText(frame, 4, y, line, 0x333333, 2);
        y += 12;
      }
      y += 6;
    } else if (tag === 'marquee') {
      const t = text(m[3] ?? '');
      const span = W + textWidth(t, 2);
      const x = W - ((n * 6) % span);
      fillRect(frame, 0, y - 2, W, 14, 0xffffff);
      drawText(frame, x, y, t, parseColor(attr(open, 'color'), 0xcb4b16), 2);
      y += 18;
    } else if (tag === 'embed') {
      const w = Number(attr(open, 'width') ?? 64);
      const h = Number(attr(open, 'height') ?? 64);
      layout.embed = { x: Math.floor((W - w) / 2), y, w, h };
      fillRect(frame, layout.embed.x - 1, y - 1, w + 2, h + 2, 0x586e75);
      y += h + 6;
    } else if (tag === 'file') {
      const src = attr(open, 'src') ?? '';
      const content = page.files?.[src];
      const lines = content === undefined ? [`CANNOT READ ${src}`] : content.split('\n').flatMap((l) => wrap(l, columns));
      for (const line of lines) {
        drawText(frame, 4, y, line, content === undefined ? 0xdc322f : 0x333333, 2);
        y += 12;
      }
    }
  }
  return layout;
}

/** The page shown in place of a tab whose renderer died. */
export function drawCrashPage(frame: Frame, reason: string): void {
  fillRect(frame, 0, 0, frame.width, frame.height, 0x3c4043);
  drawText(frame, 16, 30, 'AW, SNAP!', 0xffffff, 4);
  drawText(frame, 16, 70, 'THE RENDERER OF THIS TAB', 0xe8eaed, 2);
  drawText(frame, 16, 84, `CRASHED (${reason})`.slice(0, 36), 0xe8eaed, 2);
  drawText(frame, 16, 110, 'RESTARTING...', 0xfbbc04, 2);
}
