// The guard against a real Tessera (`tessera serve` spawned here): an Express app and a Fastify
// app protected by it, with tokens and API keys made through the admin API and /oauth/token.
//
// Resource servers (RFC 8707) and the revocation feed come from other parts of issue 11: when
// the server has them (`POST /v1/resource-servers`, `GET /v1/revocations`), they are used;
// otherwise tokens carry the issuer as `aud` and revocations are served by a fake feed
// (test/fake.mjs) to which the test pushes what the server would. The test prints which.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import express from 'express';
import Fastify from 'fastify';

import { createGuard } from '../src/index.js';
import { fakeIssuer } from './fake.mjs';
import { client, startTessera, token } from './tessera.mjs';

const RESOURCE = 'https://contacts.test';
const OTHER = 'https://billing.test';
const SCOPES = ['contacts.readonly'];

let srv, admin, agy, acc, agy2, app, aud, feed, fake, guard, apps;

const tenant = (req) => ({ agency: req.params.agy });
const show = (p) => ({ subject: p.subject, agency: p.tenant.agency, account: p.tenant.account ?? null, scopes: p.scopes, installation: p.installation ?? null, act: p.act ?? null });

function expressApp(g) {
  const a = express();
  const r = g.routes(a);
  r.get('/agencies/:agy/contacts', { permission: 'contacts.read', tenant }, (req, res) => res.json(show(req.principal)));
  r.post('/agencies/:agy/contacts', { permission: 'contacts.write', tenant }, (req, res) => res.status(201).json({}));
  r.get('/agencies/:agy/contacts/:id', { permission: 'contacts.read', tenant, resource: (req) => ({ type: 'contact', id: req.params.id }) }, (req, res) =>
    res.json(show(req.principal)),
  );
  r.get('/health', { public: true }, (req, res) => res.send('ok'));
  return new Promise((ok) => {
    const s = a.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${s.address().port}`, close: () => s.close() }));
  });
}

async function fastifyApp(g) {
  const a = Fastify();
  await a.register(g.fastify);
  a.get('/agencies/:agy/contacts', { config: { tessera: { permission: 'contacts.read', tenant } } }, async (req) => show(req.principal));
  a.post('/agencies/:agy/contacts', { config: { tessera: { permission: 'contacts.write', tenant } } }, async (req, reply) => reply.code(201).send({}));
  a.get('/agencies/:agy/contacts/:id', { config: { tessera: { permission: 'contacts.read', tenant, resource: (req) => ({ type: 'contact', id: req.params.id }) } } }, async (req) =>
    show(req.principal),
  );
  a.get('/health', { config: { tessera: { public: true } } }, async () => 'ok');
  await a.listen({ port: 0, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${a.server.address().port}`, close: () => a.close() };
}

const get = (url, tok, method = 'GET') => fetch(url, { method, headers: tok ? { authorization: `Bearer ${tok}` } : {} });

/** A client-credentials token of the installed app, for `resource` (when the server has them). */
const ccToken = async (resource = aud ? RESOURCE : undefined, scope = SCOPES.join(' ')) =>
  (await token(srv.issuer, app.client_id, app.client_secret, { grant_type: 'client_credentials', scope, ...(resource ? { resource } : {}) })).access_token;

/** Waits until `cond()` holds; returns the milliseconds it took. */
async function within(ms, cond) {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now() - t0;
}

before(async () => {
  srv = await startTessera();
  admin = client(srv.issuer, srv.admin);
  agy = (await admin.post('/v1/agencies', { name: 'Guarded' })).id;
  agy2 = (await admin.post('/v1/agencies', { name: 'Other' })).id;
  acc = (await admin.post(`/v1/agencies/${agy}/accounts`, { name: 'Account' })).id;
  // Resource servers (issue 11 part A), if this server has them.
  const probe = await fetch(`${srv.issuer}/v1/resource-servers`, { headers: { authorization: `Bearer ${srv.admin}` } });
  aud = probe.status !== 404 && probe.status !== 405;
  if (aud) {
    await admin.post('/v1/resource-servers', { identifier: RESOURCE, scopes: ['contacts.readonly', 'contacts.write'], name: 'Contacts' });
    await admin.post('/v1/resource-servers', { identifier: OTHER, scopes: ['contacts.readonly'], name: 'Billing' });
  }
  app = await admin.post(`/v1/agencies/${agy}/apps`, {
    name: 'Partner',
    redirect_uris: ['http://127.0.0.1:9/cb'],
    scopes: ['contacts.readonly', 'contacts.write'],
    confidential: true,
    kind: 'private',
  });
  apps = (await admin.post(`/v1/agencies/${agy}/accounts/${acc}/installations`, { app: app.client_id, scopes: ['contacts.readonly', 'contacts.write'] })).id;
  // The revocation feed (issue 11 part B), if this server has it.
  const f = await fetch(`${srv.issuer}/v1/revocations`, { headers: { authorization: `Bearer ${srv.admin}` } });
  feed = f.status === 200;
  if (!feed) fake = await fakeIssuer();
  console.log(`# resource servers: ${aud ? 'real' : 'absent (aud = issuer)'}; revocation feed: ${feed ? 'real' : 'fake'}`);
  guard = createGuard({
    issuer: srv.issuer,
    audience: aud ? RESOURCE : srv.issuer,
    credential: srv.admin,
    revocations: feed ? {} : { url: `${fake.issuer}/v1/revocations` },
    onError: () => {},
  });
  await guard.start();
});

after(async () => {
  guard?.close();
  await fake?.close();
  await srv?.stop();
});

for (const [name, make] of [
  ['express', expressApp],
  ['fastify', fastifyApp],
]) {
  describe(name, () => {
    let s;
    before(async () => (s = await make(guard)));
    after(() => s.close());

    test('a valid token passes and the handler gets the principal', async () => {
      const r = await get(`${s.url}/agencies/${agy}/contacts`, await ccToken());
      assert.equal(r.status, 200);
      const p = await r.json();
      assert.equal(p.subject, app.client_id);
      assert.equal(p.agency, agy);
      assert.equal(p.account, acc);
      assert.deepEqual(p.scopes, SCOPES);
      assert.equal(p.installation, apps);
    });

    test('missing scope: 403 problem+json with insufficient_scope', async () => {
      const r = await get(`${s.url}/agencies/${agy}/contacts`, await ccToken(), 'POST');
      assert.equal(r.status, 403);
      assert.match(r.headers.get('content-type'), /^application\/problem\+json/);
      assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope", scope="contacts.write"/);
      const body = await r.json();
      assert.equal(body.code, 'forbidden');
      assert.equal(body.status, 403);
    });

    test('another tenant: 404', async () => {
      const r = await get(`${s.url}/agencies/${agy2}/contacts`, await ccToken());
      assert.equal(r.status, 404);
    });

    test('no credential, a tampered token: 401 with WWW-Authenticate', async () => {
      let r = await get(`${s.url}/agencies/${agy}/contacts`);
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate'), /^Bearer realm="/);
      const t = await ccToken();
      const [h, p, sig] = t.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url'));
      claims.scope = 'contacts.readonly contacts.write';
      for (const bad of [`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`, `${h}.${p}.${sig.slice(2)}`]) {
        r = await get(`${s.url}/agencies/${agy}/contacts`, bad);
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate'), /error="invalid_token", error_description="[^"]+"/);
      }
      assert.equal((await get(`${s.url}/health`)).status, 200);
    });

    test('an API key works (introspected); ABAC through /v1/check', async () => {
      const key = await admin.post(`/v1/agencies/${agy}/api-keys`, { name: `k-${name}`, scopes: SCOPES });
      let r = await get(`${s.url}/agencies/${agy}/contacts`, key.secret);
      assert.equal(r.status, 200);
      assert.equal((await r.json()).subject, key.id);
      r = await get(`${s.url}/agencies/${agy}/contacts/ct_1`, key.secret);
      assert.equal(r.status, 200);
      r = await get(`${s.url}/agencies/${agy}/contacts`, key.secret, 'POST');
      assert.equal(r.status, 403);
      r = await get(`${s.url}/agencies/${agy}/contacts`, 'tsk_' + 'x'.repeat(40));
      assert.equal(r.status, 401);
    });
  });
}

describe('JWT claims', () => {
  test('wrong aud, wrong iss, expired: 401', async () => {
    const t = await ccToken();
    // Another audience: a guard for another service refuses it.
    const other = createGuard({ issuer: srv.issuer, audience: OTHER, credential: srv.admin, revocations: { mode: 'off' } });
    await other.start();
    const e1 = await other.authenticate(`Bearer ${t}`).catch((e) => e);
    assert.equal(e1.status, 401);
    assert.match(e1.detail, /not for this service/);
    if (aud) {
      // And this service refuses a token minted for the other one.
      const e = await guard.authenticate(`Bearer ${await ccToken(OTHER)}`).catch((e) => e);
      assert.equal(e.status, 401);
      // A token without `resource` is for Tessera itself.
      const e2 = await guard.authenticate(`Bearer ${await ccToken(null)}`).catch((e) => e);
      assert.equal(e2.status, 401);
    }
    // Another issuer (the same server under another name).
    const iss = createGuard({ issuer: srv.issuer.replace('127.0.0.1', 'localhost'), audience: aud ? RESOURCE : srv.issuer, credential: srv.admin, revocations: { mode: 'off' } });
    await iss.start();
    const e3 = await iss.authenticate(`Bearer ${t}`).catch((e) => e);
    assert.equal(e3.status, 401);
    assert.match(e3.detail, /another issuer/);
    // Expired: the same token an hour later (past its 15 minutes and the leeway).
    const late = createGuard({ issuer: srv.issuer, audience: aud ? RESOURCE : srv.issuer, credential: srv.admin, revocations: { mode: 'off' }, now: () => Date.now() + 3_600_000 });
    await late.start();
    const e4 = await late.authenticate(`Bearer ${t}`).catch((e) => e);
    assert.equal(e4.status, 401);
    assert.match(e4.detail, /expired/);
    for (const g of [other, iss, late]) g.close();
  });
});

describe('revocation', () => {
  let s;
  before(async () => (s = await expressApp(guard)));
  after(() => s.close());

  test('a revoked token is refused within 1 s', async () => {
    const t = await ccToken();
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    const r = await fetch(`${srv.issuer}/oauth/revoke`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: t }).toString(),
    });
    assert.equal(r.status, 200);
    if (!feed) {
      const jti = JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).jti;
      fake.push({ kind: 'token', id: jti, agency: agy, state: 'revoked', at: Math.floor(Date.now() / 1000), expires_at: Math.floor(Date.now() / 1000) + 960 });
    }
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# revoked token refused after ${ms.toFixed(0)} ms`);
    // Tessera agrees.
    const i = await fetch(`${srv.issuer}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.admin}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t }).toString(),
    });
    assert.equal((await i.json()).active, false);
  });

  test('a revoked installation stops its tokens', async () => {
    const app2 = await admin.post(`/v1/agencies/${agy}/apps`, {
      name: 'Second',
      redirect_uris: ['http://127.0.0.1:9/cb'],
      scopes: SCOPES,
      confidential: true,
      kind: 'private',
    });
    const ins = (await admin.post(`/v1/agencies/${agy}/accounts/${acc}/installations`, { app: app2.client_id, scopes: SCOPES })).id;
    const t = (
      await token(srv.issuer, app2.client_id, app2.client_secret, { grant_type: 'client_credentials', scope: SCOPES.join(' '), ...(aud ? { resource: RESOURCE } : {}) })
    ).access_token;
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    await admin.del(`/v1/agencies/${agy}/accounts/${acc}/installations/${ins}`);
    if (!feed) fake.push({ kind: 'installation', id: ins, agency: agy, state: 'revoked', at: Math.floor(Date.now() / 1000), expires_at: Math.floor(Date.now() / 1000) + 960 });
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# token of a revoked installation refused after ${ms.toFixed(0)} ms`);
  });

  test('a deleted app stops its tokens', async () => {
    const app3 = await admin.post(`/v1/agencies/${agy}/apps`, {
      name: 'Third',
      redirect_uris: ['http://127.0.0.1:9/cb'],
      scopes: SCOPES,
      confidential: true,
      kind: 'private',
    });
    await admin.post(`/v1/agencies/${agy}/accounts/${acc}/installations`, { app: app3.client_id, scopes: SCOPES });
    const t = (
      await token(srv.issuer, app3.client_id, app3.client_secret, { grant_type: 'client_credentials', scope: SCOPES.join(' '), ...(aud ? { resource: RESOURCE } : {}) })
    ).access_token;
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    await admin.del(`/v1/agencies/${agy}/apps/${app3.client_id}`);
    if (!feed) fake.push({ kind: 'app', id: app3.client_id, agency: agy, state: 'deleted', at: Math.floor(Date.now() / 1000), expires_at: Math.floor(Date.now() / 1000) + 960 });
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# token of a deleted app refused after ${ms.toFixed(0)} ms`);
  });

  test('a revoked API key stops', async () => {
    const key = await admin.post(`/v1/agencies/${agy}/api-keys`, { name: 'revoked', scopes: SCOPES });
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, key.secret)).status, 200);
    await admin.del(`/v1/agencies/${agy}/api-keys/${key.id}`);
    if (!feed) fake.push({ kind: 'api_key', id: key.id, agency: agy, state: 'revoked', at: Math.floor(Date.now() / 1000), expires_at: Math.floor(Date.now() / 1000) + 960 });
    const ms = await within(1000, async () => (await get(url, key.secret)).status === 401);
    console.log(`# revoked API key refused after ${ms.toFixed(0)} ms`);
  });
});
