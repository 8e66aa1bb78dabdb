// The Node guard's verification rate beside bare jose `jwtVerify` of the same token (issue 11,
// deliverable 7; target ≥ 0.9×). Starts a Tessera (TESSERA_BIN or the workspace's debug build),
// gets a client-credentials token, and measures in alternating rounds, one after the other on
// this process's single thread:
//   jose      jwtVerify(token, createRemoteJWKSet(jwks), {issuer, audience, typ, algorithms})
//   guard     guard.verifyJwt(token) with the verified-token cache off: the same signature
//             check plus the tenant claim and the revocation-feed lookups (the feed state holds
//             1,000 revoked entries of each kind)
//   guard+    the same through authenticate(header) + authorize(route): bearer parsing and the
//             scope → permission check of a declared route (cache off)
//   cached    guard.verifyJwt(token) with the verified-token cache on (the default)
// Env: ROUNDS (default 15), SECONDS per contestant per round (default 0.3); the medians are printed.

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { createGuard } from '../src/index.js';
import { client, startTessera, token } from '../test/tessera.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 15);
const SECONDS = Number(process.env.SECONDS ?? 0.3);
const RESOURCE = 'https://contacts.bench';

const srv = await startTessera();
try {
  const admin = client(srv.issuer, srv.admin);
  const agy = (await admin.post('/v1/agencies', { name: 'Bench' })).id;
  const acc = (await admin.post(`/v1/agencies/${agy}/accounts`, { name: 'Bench account' })).id;
  const probe = await fetch(`${srv.issuer}/v1/resource-servers`, { headers: { authorization: `Bearer ${srv.admin}` } });
  const aud = probe.status !== 404 && probe.status !== 405;
  if (aud) await admin.post('/v1/resource-servers', { identifier: RESOURCE, scopes: ['contacts.readonly'], name: 'Bench' });
  const app = await admin.post(`/v1/agencies/${agy}/apps`, {
    name: 'Bench',
    redirect_uris: ['http://127.0.0.1:9/cb'],
    scopes: ['contacts.readonly'],
    confidential: true,
  });
  await admin.post(`/v1/agencies/${agy}/accounts/${acc}/installations`, { app: app.client_id, scopes: ['contacts.readonly'] });
  const t = (
    await token(srv.issuer, app.client_id, app.client_secret, { grant_type: 'client_credentials', scope: 'contacts.readonly', ...(aud ? { resource: RESOURCE } : {}) })
  ).access_token;
  const audience = aud ? RESOURCE : srv.issuer;
  const alg = JSON.parse(Buffer.from(t.split('.')[0], 'base64url')).alg;

  const make = (verifiedCache) => createGuard({ issuer: srv.issuer, audience, credential: srv.admin, revocations: { mode: 'off' }, verifiedCache });
  const uncached = make(false);
  const cached = make(undefined);
  for (const g of [uncached, cached]) {
    await g.start();
    // A feed state as a real one would be: revocations exist, none of them this token's.
    g.feed = { ready: true, close() {}, state: new (await import('../src/revocations.js')).RevocationState() };
    for (let i = 0; i < 1000; i++)
      for (const kind of ['token', 'token_family', 'installation', 'agency', 'account', 'user', 'app'])
        g.feed.state.apply({ kind, id: `${kind}_${i}`, state: kind === 'user' ? 'disabled' : kind === 'app' ? 'deleted' : kind === 'agency' || kind === 'account' ? 'suspended' : 'revoked', expires_at: 4e9 });
  }
  const jwks = createRemoteJWKSet(new URL(`${srv.issuer}/.well-known/jwks.json`));
  const joseOpts = { issuer: srv.issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA', 'ES256', 'RS256'] };
  const header = `Bearer ${t}`;
  const route = { permission: 'contacts.read' };

  const contestants = {
    jose: () => jwtVerify(t, jwks, joseOpts),
    guard: () => uncached.verifyJwt(t),
    'guard+': async () => uncached.authorize(await uncached.authenticate(header), route, {}),
    cached: () => cached.verifyJwt(t),
  };
  for (const f of Object.values(contestants)) for (let i = 0; i < 2000; i++) await f(); // warm-up

  // Each round interleaves the contestants in blocks of 50 verifications (rotating which goes
  // first), so that every one of them sees the same machine: the ratio is what counts here.
  const names = Object.keys(contestants);
  const rates = Object.fromEntries(names.map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const spent = Object.fromEntries(names.map((k) => [k, 0]));
    const done = Object.fromEntries(names.map((k) => [k, 0]));
    const end = performance.now() + SECONDS * 1000 * names.length;
    for (let b = 0; performance.now() < end; b++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(b + j) % names.length];
        const f = contestants[name];
        const t0 = performance.now();
        for (let i = 0; i < 50; i++) await f();
        spent[name] += performance.now() - t0;
        done[name] += 50;
      }
    }
    for (const k of names) rates[k].push(done[k] / (spent[k] / 1000));
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const m = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
  console.log(`Node ${process.version}, ${alg} token, ${ROUNDS} rounds × ${SECONDS} s, medians (verifications/s, one thread):`);
  console.log('| contestant | verifications/s | µs each | × jose |');
  console.log('|---|---|---|---|');
  for (const [k, v] of Object.entries(m)) console.log(`| ${k} | ${Math.round(v)} | ${(1e6 / v).toFixed(1)} | ${(v / m.jose).toFixed(2)} |`);
  // The ratio within each round (the two ran back to back) cancels most of the machine's drift.
  const perRound = (k) => median(rates[k].map((v, i) => v / rates.jose[i]));
  console.log(`ratio guard/jose (uncached), median of the per-round ratios: ${perRound('guard').toFixed(2)} (target >= 0.9); guard+: ${perRound('guard+').toFixed(2)}; cached: ${perRound('cached').toFixed(1)}`);
  for (const g of [uncached, cached]) g.close();
} finally {
  await srv.stop();
}
