// Test fixture: a real Tessera (`tessera serve` on a free port, temp data dir), and the admin
// API calls the tests need. TESSERA_BIN names the binary (default: the workspace's
// target/debug/tessera, or $CARGO_TARGET_DIR/debug/tessera).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');

export function binary() {
  const candidates = [
    process.env.TESSERA_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug/tessera'),
    join(root, 'target/debug/tessera'),
  ].filter(Boolean);
  const bin = candidates.find((c) => existsSync(c));
  if (!bin) throw new Error(`no tessera binary (tried ${candidates.join(', ')}); build it or set TESSERA_BIN`);
  return bin;
}

export const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

/** Starts a Tessera; returns {issuer, admin, stop, log}. */
export async function startTessera(extraArgs = []) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-guard-'));
  const issuer = `http://127.0.0.1:${port}`;
  const proc = spawn(
    binary(),
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--issuer', issuer, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  let exited = false;
  proc.on('exit', () => (exited = true));
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`tessera exited before it was ready:\n${log}`);
    try {
      const r = await fetch(`${issuer}/readyz`);
      if (r.ok) break;
    } catch {}
    if (i > 300) throw new Error(`tessera did not become ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = readFileSync(join(dir, 'bootstrap-admin.key'), 'utf8').trim();
  const stop = async () => {
    if (!exited) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { issuer, admin, stop, log: () => log };
}

/** A small admin client. */
export function client(issuer, credential) {
  const call = async (method, path, body, expect) => {
    const r = await fetch(issuer + path, {
      method,
      headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (expect !== undefined ? r.status !== expect : !r.ok)
      throw new Error(`${method} ${path} → ${r.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    post: (p, b, e) => call('POST', p, b, e),
    get: (p, e) => call('GET', p, undefined, e),
    del: (p, e) => call('DELETE', p, undefined, e),
  };
}

/** POST /oauth/token with client Basic auth; returns the JSON answer (throws on an error). */
export async function token(issuer, clientId, secret, params) {
  const r = await fetch(`${issuer}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(params).toString(),
  });
  const body = await r.json();
  if (!r.ok) throw new Error(`/oauth/token → ${r.status}: ${JSON.stringify(body)}`);
  return body;
}
