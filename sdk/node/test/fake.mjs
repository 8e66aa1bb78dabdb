// A fake issuer for the guard's own mechanics (no Tessera needed): JWKS, catalog, a revocation
// feed (JSON, long-poll and SSE, with 410 past a cursor floor) and API-key introspection.

import { createServer } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

export async function fakeIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
  const f = {
    items: [], // feed items, cursor = index + 1 as a string
    floor: 0, // cursors below this answer 410
    sse: new Set(),
    waiters: new Set(), // long-polls waiting for an item
    keys: new Map(), // API key secret → introspection answer
    introspections: 0,
    jwksFetches: 0,
    feedDown: false,
    requests: [],
  };
  const catalog = {
    permissions: [{ name: 'contacts.read' }, { name: 'contacts.write' }],
    scopes: [
      { name: 'contacts.readonly', permissions: ['contacts.read'] },
      { name: 'contacts.write', permissions: ['contacts.read', 'contacts.write'] },
    ],
  };
  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    f.requests.push(`${req.method} ${url.pathname}`);
    if (url.pathname === '/.well-known/jwks.json') {
      f.jwksFetches++;
      return send(res, 200, { keys: [jwk] }, { 'cache-control': 'public, max-age=300' });
    }
    if (url.pathname === '/v1/catalog') return send(res, 200, catalog);
    if (url.pathname === '/oauth/introspect') {
      let body = '';
      for await (const c of req) body += c;
      f.introspections++;
      const secret = new URLSearchParams(body).get('token');
      return send(res, 200, f.keys.get(secret) ?? { active: false });
    }
    if (url.pathname === '/v1/revocations') {
      if (f.feedDown) return send(res, 503, { code: 'unavailable' });
      const since = url.searchParams.get('since') ?? req.headers['last-event-id'];
      const from = since === undefined || since === null ? f.floor : Number(since);
      if (from < f.floor) return send(res, 410, { code: 'cursor_expired', status: 410 });
      const list = () => f.items.slice(from).map((it, i) => ({ ...it, cursor: String(from + i + 1) }));
      if ((req.headers.accept ?? '').includes('text/event-stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        res.write(': hello\n\n');
        for (const it of list()) res.write(`id: ${it.cursor}\nevent: revocation\ndata: ${JSON.stringify(it)}\n\n`);
        f.sse.add(res);
        req.on('close', () => f.sse.delete(res));
        return;
      }
      const wait = Number(url.searchParams.get('wait') ?? 0);
      const answer = () => {
        if (from < f.floor) return send(res, 410, { code: 'cursor_expired', status: 410 });
        const items = list();
        send(res, 200, { items, next: String(from + items.length), retention_seconds: 960 });
      };
      if (wait > 0 && list().length === 0) {
        const t = setTimeout(() => (f.waiters.delete(w), answer()), wait * 1000);
        const w = () => (clearTimeout(t), answer());
        f.waiters.add(w);
        req.on('close', () => (clearTimeout(t), f.waiters.delete(w)));
        return;
      }
      return answer();
    }
    send(res, 404, { code: 'not_found' });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  f.issuer = `http://127.0.0.1:${server.address().port}`;
  /** Appends a feed item and pushes it to SSE followers. */
  f.push = (item) => {
    f.items.push(item);
    const cursor = String(f.items.length);
    const ws = [...f.waiters];
    f.waiters.clear();
    for (const w of ws) w();
    for (const res of f.sse) res.write(`id: ${cursor}\nevent: revocation\ndata: ${JSON.stringify({ ...item, cursor })}\n\n`);
  };
  /** Drops SSE connections (the guard must reconnect). */
  f.dropStreams = () => {
    for (const res of f.sse) res.destroy();
    f.sse.clear();
  };
  f.sign = (claims = {}, header = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      sub: 'usr_1',
      client_id: 'app_1',
      scope: 'contacts.readonly',
      tenant: { agency: 'agy_1', account: 'acc_1' },
      jti: `jti_${Math.random().toString(36).slice(2)}`,
      iat: now,
      exp: now + 600,
      iss: f.issuer,
      aud: 'https://contacts.test',
      ...claims,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k1', ...header })
      .sign(privateKey);
  };
  f.close = () =>
    new Promise((r) => {
      f.dropStreams();
      server.closeAllConnections?.();
      server.close(r);
    });
  return f;
}
