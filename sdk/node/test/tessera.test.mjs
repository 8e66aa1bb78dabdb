// The guard against a real Tessera (`tessera serve` spawned here): an Express app and a Fastify
// app protected by it, with tokens and API keys made through the admin API and /oauth/token,
// bound to a registered resource server (RFC 8707), and revocations read from the server's own
// feed (`GET /v1/revocations`, SSE).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import express from 'express';
import Fastify from 'fastify';

import { createGuard } from '../src/index.js';
import { createHash, randomBytes } from 'node:crypto';

import { Browser } from './browser.mjs';
import { client, startTessera, token } from './tessera.mjs';

const RESOURCE = 'https://contacts.test';
const OTHER = 'https://billing.test';
const SCOPES = ['contacts.readonly'];

let srv, admin, agy, acc, agy2, app, guard, apps;

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

/** A client-credentials token of the installed app, for `resource` (none: for Tessera itself). */
const ccToken = async (resource = RESOURCE, scope = SCOPES.join(' ')) =>
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
  await admin.post('/v1/resource-servers', { identifier: RESOURCE, scopes: ['contacts.readonly', 'contacts.write'], name: 'Contacts' });
  await admin.post('/v1/resource-servers', { identifier: OTHER, scopes: ['contacts.readonly'], name: 'Billing' });
  app = await admin.post(`/v1/agencies/${agy}/apps`, {
    name: 'Partner',
    redirect_uris: ['http://127.0.0.1:9/cb'],
    scopes: ['contacts.readonly', 'contacts.write'],
    confidential: true,
    kind: 'private',
  });
  apps = (await admin.post(`/v1/agencies/${agy}/accounts/${acc}/installations`, { app: app.client_id, scopes: ['contacts.readonly', 'contacts.write'] })).id;
  guard = createGuard({ issuer: srv.issuer, audience: RESOURCE, credential: srv.admin, onError: () => {} });
  await guard.start();
});

after(async () => {
  guard?.close();
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
    // And this service refuses a token minted for the other one.
    const e = await guard.authenticate(`Bearer ${await ccToken(OTHER)}`).catch((e) => e);
    assert.equal(e.status, 401);
    // A token without `resource` is for Tessera itself.
    const e2 = await guard.authenticate(`Bearer ${await ccToken(null)}`).catch((e) => e);
    assert.equal(e2.status, 401);
    // Another issuer (the same server under another name).
    const iss = createGuard({ issuer: srv.issuer.replace('127.0.0.1', 'localhost'), audience: RESOURCE, credential: srv.admin, revocations: { mode: 'off' } });
    await iss.start();
    const e3 = await iss.authenticate(`Bearer ${t}`).catch((e) => e);
    assert.equal(e3.status, 401);
    assert.match(e3.detail, /another issuer/);
    // Expired: the same token an hour later (past its 15 minutes and the leeway).
    const late = createGuard({ issuer: srv.issuer, audience: RESOURCE, credential: srv.admin, revocations: { mode: 'off' }, now: () => Date.now() + 3_600_000 });
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

  test('a revoked token is refused within 1 s (SSE, and long-poll)', async () => {
    const t = await ccToken();
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    const poller = createGuard({ issuer: srv.issuer, audience: RESOURCE, credential: srv.admin, revocations: { mode: 'poll' }, onError: () => {} });
    await poller.start();
    assert.equal((await poller.authenticate(`Bearer ${t}`)).subject, app.client_id);
    const r = await fetch(`${srv.issuer}/oauth/revoke`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: t }).toString(),
    });
    assert.equal(r.status, 200);
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# revoked token refused after ${ms.toFixed(0)} ms`);
    const ms2 = await within(1000, async () => (await poller.authenticate(`Bearer ${t}`).catch((e) => e)).status === 401);
    console.log(`# ... and by a long-polling guard after ${(ms + ms2).toFixed(0)} ms`);
    poller.close();
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
      await token(srv.issuer, app2.client_id, app2.client_secret, { grant_type: 'client_credentials', scope: SCOPES.join(' '), resource: RESOURCE })
    ).access_token;
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    await admin.del(`/v1/agencies/${agy}/accounts/${acc}/installations/${ins}`);
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
      await token(srv.issuer, app3.client_id, app3.client_secret, { grant_type: 'client_credentials', scope: SCOPES.join(' '), resource: RESOURCE })
    ).access_token;
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    await admin.del(`/v1/agencies/${agy}/apps/${app3.client_id}`);
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# token of a deleted app refused after ${ms.toFixed(0)} ms`);
  });

  test('least privilege: a guard whose credential is an agency key with only `revocations.readonly`', async () => {
    const key = await admin.post(`/v1/agencies/${agy}/api-keys`, { name: 'the guard', scopes: ['revocations.readonly'] });
    const g = createGuard({ issuer: srv.issuer, audience: RESOURCE, credential: key.secret, onError: () => {} });
    await g.start();
    try {
      const t = await ccToken();
      const p = await g.authenticate(`Bearer ${t}`);
      assert.equal(p.tenant.agency, agy);
      await fetch(`${srv.issuer}/oauth/revoke`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token: t }).toString(),
      });
      await within(1000, async () => (await g.authenticate(`Bearer ${t}`).catch((e) => e)).status === 401);
      // Its introspection sees its own agency's keys only.
      const mine = await admin.post(`/v1/agencies/${agy}/api-keys`, { name: 'mine', scopes: SCOPES });
      assert.equal((await g.authenticate(`Bearer ${mine.secret}`)).subject, mine.id);
      const theirs = await admin.post(`/v1/agencies/${agy2}/api-keys`, { name: 'theirs', scopes: SCOPES });
      assert.equal((await g.authenticate(`Bearer ${theirs.secret}`).catch((e) => e)).status, 401);
    } finally {
      g.close();
    }
  });

  test('a revoked API key stops', async () => {
    const key = await admin.post(`/v1/agencies/${agy}/api-keys`, { name: 'revoked', scopes: SCOPES });
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, key.secret)).status, 200);
    await admin.del(`/v1/agencies/${agy}/api-keys/${key.id}`);
    const ms = await within(1000, async () => (await get(url, key.secret)).status === 401);
    console.log(`# revoked API key refused after ${ms.toFixed(0)} ms`);
  });
});

describe('a user token (authorization code + PKCE, resource=)', () => {
  let s, user, t;
  before(async () => {
    s = await expressApp(guard);
    const email = `ann-${randomBytes(4).toString('hex')}@guard.test`;
    const password = `pw-${randomBytes(12).toString('hex')}`;
    user = await admin.post(`/v1/agencies/${agy}/users`, { email, name: 'Ann', password });
    await admin.post(`/v1/agencies/${agy}/bindings`, { principal: user.id, role: 'account_admin', account: acc });
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL(`${srv.issuer}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: app.client_id,
      redirect_uri: 'http://127.0.0.1:9/cb',
      scope: 'contacts.readonly',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: RESOURCE,
    }))
      url.searchParams.set(k, v);
    const location = new URL(await new Browser({ email, password, redirectUri: 'http://127.0.0.1:9/cb' }).authorize(url));
    const code = location.searchParams.get('code');
    assert.ok(code, `no code in ${location}`);
    t = (
      await token(srv.issuer, app.client_id, app.client_secret, {
        grant_type: 'authorization_code',
        code,
        redirect_uri: 'http://127.0.0.1:9/cb',
        code_verifier: verifier,
        resource: RESOURCE,
      })
    ).access_token;
  });
  after(() => s.close());

  test('passes with the user as subject, its grant, and ABAC through /v1/check', async () => {
    const p = await guard.authenticate(`Bearer ${t}`);
    assert.equal(p.subject, user.id);
    assert.ok(p.grant, 'a user token carries its grant (sid)');
    assert.equal(p.claims.aud, RESOURCE);
    const r = await get(`${s.url}/agencies/${agy}/contacts/ct_1`, t);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).subject, user.id);
  });

  test('a disabled user is refused within 1 s', async () => {
    const url = `${s.url}/agencies/${agy}/contacts`;
    assert.equal((await get(url, t)).status, 200);
    const r = await fetch(`${srv.issuer}/v1/agencies/${agy}/users/${user.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${srv.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'disabled' }),
    });
    assert.equal(r.status, 200, await r.text());
    const ms = await within(1000, async () => (await get(url, t)).status === 401);
    console.log(`# token of a disabled user refused after ${ms.toFixed(0)} ms`);
  });
});
