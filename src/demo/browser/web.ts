/**
 * "The web" of the browser demo: a small HTTP server on loopback with a few
 * pages in the tiny HTML subset the demo's renderers understand.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The pages, by path. */
export const pages: Record<string, string> = {
  '/news': `<html><head><title>Daily Multiproc</title></head><body bgcolor="#fdf6e3">
<h1>Processes, not threads</h1>
<p>A fault in one process never takes down the others. Each tab of this browser runs in its own renderer process.</p>
<marquee color="#cb4b16">Breaking: renderer crashes no longer take down the browser</marquee>
<p>Crash a tab with the button. The other tabs keep drawing, and the supervisor restarts the renderer.</p>
</body></html>`,
  '/clock': `<html><head><title>Plugin page</title></head><body bgcolor="#eee8d5">
<h1>A plugin at work</h1>
<p>The clock below is drawn by the plugin process. The GPU process composes it into this page.</p>
<embed type="application/x-clock" width="64" height="64">
</body></html>`,
  '/ipc': `<html><head><title>IPC mechanisms</title></head><body bgcolor="#e8f0fe">
<h1>How the processes talk</h1>
<p>Browser to renderer: RPC over a socket pair. Renderer to GPU: frames in shared memory, under a robust mutex.</p>
<marquee color="#268bd2">Zero copy: pixels never pass through a pipe</marquee>
</body></html>`,
  '/secret': `<html><head><title>Local file</title></head><body bgcolor="#f5f5f5">
<h1>A local file</h1>
<file src="bookmarks.txt">
</body></html>`,
};

/** Starts the server; resolves with its base URL (`http://127.0.0.1:<port>`). */
export async function startWeb(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const page = pages[new URL(req.url ?? '/', 'http://x').pathname];
    if (page === undefined) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html><head><title>Not found</title></head><body><h1>404 not found</h1></body></html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server };
}
