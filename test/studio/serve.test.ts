/**
 * The studio's server: the page and its files with the cross-origin isolation and script-policy
 * headers; nothing outside its folder (dot-dot paths, encoded or not, a NUL, a symbolic link out);
 * GET and HEAD only; a port in use is a typed error that says what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { serveStudio } from '../../src/studio/serve.js';
import { isLowrankError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** One raw request (the path sent as written, which fetch would normalize). */
function get(url: string, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serveStudio: serves its folder with the isolation headers, and nothing outside it', async (t) => {
  const root = await tempDir(t);
  const site = join(root, 'site');
  await mkdir(join(site, 'kernels'), { recursive: true });
  await writeFile(join(site, 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(join(site, 'kernels', 'k.wasm'), new Uint8Array([0, 97, 115, 109]));
  await writeFile(join(root, 'secret.txt'), 'secret');
  await symlink(join(root, 'secret.txt'), join(site, 'link.txt'));
  const server = await serveStudio({ port: 0, dir: site });
  t.after(() => server.close());

  const page = await get(server.url, '/');
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>page<\/title>/);
  assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal((await get(server.url, '/kernels/k.wasm')).headers['content-type'], 'application/wasm');
  const head = await get(server.url, '/index.html', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], String('<!doctype html><title>page</title>'.length));
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/kernels/%2e%2e/%2e%2e/secret.txt', '/index.html%00', '/link.txt', '/missing.js', '/kernels']) {
    const r = await get(server.url, path);
    assert.equal(r.status, 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body, /secret/);
  }
  assert.equal((await get(server.url, '/index.html', 'POST')).status, 405);
  assert.equal((await get(server.url, '/%E0%A4%A')).status, 400);
});

test('serveStudio: without isolation no isolation headers; a port in use and an unbuilt page are typed errors', async (t) => {
  const site = await tempDir(t);
  await writeFile(join(site, 'index.html'), '<!doctype html>');
  const open = await serveStudio({ port: 0, dir: site, isolated: false });
  t.after(() => open.close());
  assert.equal((await get(open.url, '/')).headers['cross-origin-opener-policy'], undefined);
  const port = Number(new URL(open.url).port);
  await assert.rejects(serveStudio({ port, dir: site }), (e) => isLowrankError(e) && e.code === 'E_IO' && e.message.includes(`port ${port} is in use`));
  await assert.rejects(serveStudio({ port: 0, dir: join(site, 'nowhere') }), (e) => isLowrankError(e) && e.code === 'E_NOT_FOUND' && /not built/.test(e.message));
});
