/**
 * Serving the studio page (dist/studio/, built by `npm run build`) over HTTP from Node: static
 * files only, GET and HEAD, nothing outside the folder. Served cross-origin isolated
 * (`Cross-Origin-Opener-Policy: same-origin`, `Cross-Origin-Embedder-Policy: require-corp`), so
 * the wasm backend may use worker threads.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LowrankError } from '../core/errors.js';

/** The built page: dist/studio/ beside dist/src/ (this module is dist/src/studio/serve.js). */
export const STUDIO_DIR = fileURLToPath(new URL('../../studio/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

export interface StudioOptions {
  /** Default 8080; 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1 (this machine only). */
  readonly host?: string;
  /** Send the cross-origin isolation headers (default true); without them the wasm backend runs on one thread. */
  readonly isolated?: boolean;
  /** The folder served. Default {@link STUDIO_DIR}. */
  readonly dir?: string;
}

export interface StudioServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts serving; E_NOT_FOUND when the page is not built, E_IO when the port cannot be had. */
export async function serveStudio(opts: StudioOptions = {}): Promise<StudioServer> {
  const root = opts.dir ?? STUDIO_DIR;
  const ok = await stat(join(root, 'index.html')).then((s) => s.isFile(), () => false);
  if (!ok) throw new LowrankError('E_NOT_FOUND', 'the studio page is not built (run npm run build)', { file: root });
  const real = await realpath(root);
  const base = real.endsWith(sep) ? real : real + sep;
  // Scripts only from the page's origin, none inline: a report or a file name that slipped through
  // escaping still cannot run. 'unsafe-eval': vega compiles its chart expressions with Function
  // (and wasm modules are compiled from bytes).
  const headers: Record<string, string> = {
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "script-src 'self' 'unsafe-eval'; object-src 'none'; base-uri 'none'",
  };
  if (opts.isolated !== false) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
  }
  const respond = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      res.writeHead(400, headers).end();
      return;
    }
    const file = join(base, normalize(path.endsWith('/') ? `${path}index.html` : path));
    // Inside the folder, symbolic links resolved.
    const inside = file.startsWith(base) && !path.includes('\0') ? await realpath(file).then((r) => (r.startsWith(base) ? r : undefined), () => undefined) : undefined;
    const size = inside === undefined ? undefined : await stat(inside).then((st) => (st.isFile() ? st.size : undefined), () => undefined);
    if (inside === undefined || size === undefined) {
      res.writeHead(404, headers).end();
      return;
    }
    const type = { 'Content-Type': TYPES[extname(inside)] ?? 'application/octet-stream', 'Content-Length': size };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, ...type }).end();
      return;
    }
    const body = await readFile(inside).catch(() => undefined);
    if (body === undefined || body.length !== size) {
      res.writeHead(404, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, ...type }).end(body);
  };
  const server = createServer((req, res) => void respond(req, res));
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new LowrankError('E_IO', e.code === 'EADDRINUSE' ? `port ${port} is in use (pass --port with another, or 0 for any free one)` : `cannot listen on ${host}:${port}: ${e.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  // Past listening, a failing connection is the client's business; the server goes on.
  server.on('error', (e) => process.stderr.write(`lowrank studio: ${e.message}\n`));
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
