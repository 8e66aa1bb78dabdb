// The Express middleware and the Fastify plugin against the fake issuer: answers on the wire,
// `principal` on the request, deny by default at registration.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import express from 'express';
import Fastify from 'fastify';

import { createGuard } from '../src/index.js';
import { fakeIssuer } from './fake.mjs';

let f, g;
before(async () => {
  f = await fakeIssuer();
  g = createGuard({ issuer: f.issuer, audience: 'https://contacts.test', credential: 'tsk_guard', onError: () => {} });
});
after(async () => {
  g.close();
  await f.close();
});

const listen = (app) =>
  new Promise((ok) => {
    const s = app.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${s.address().port}`, close: () => s.close() }));
  });

async function expectations(base, token) {
  const auth = { authorization: `Bearer ${token}` };
  let r = await fetch(`${base}/agencies/agy_1/contacts`, { headers: auth });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { subject: 'usr_1', agency: 'agy_1', scopes: ['contacts.readonly'] });
  r = await fetch(`${base}/agencies/agy_2/contacts`, { headers: auth });
  assert.equal(r.status, 404);
  assert.equal((await r.json()).code, 'not_found');
  r = await fetch(`${base}/agencies/agy_1/contacts`, { method: 'POST', headers: auth });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('content-type'), 'application/problem+json');
  assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope", scope="contacts.write"/);
  r = await fetch(`${base}/agencies/agy_1/contacts`);
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="https://contacts.test"');
  r = await fetch(`${base}/agencies/agy_1/contacts`, { headers: { authorization: `Bearer ${token}x` } });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
  r = await fetch(`${base}/health`);
  assert.equal(r.status, 200);
}

const contacts = (p) => ({ subject: p.subject, agency: p.tenant.agency, scopes: p.scopes });
const tenant = (req) => ({ agency: req.params.agy });

test('express: routes(app) with declarations', async () => {
  const app = express();
  const r = g.routes(app);
  r.get('/agencies/:agy/contacts', { permission: 'contacts.read', tenant }, (req, res) => res.json(contacts(req.principal)));
  r.post('/agencies/:agy/contacts', { permission: 'contacts.write', tenant }, (req, res) => res.status(201).end());
  r.get('/health', { public: true }, (req, res) => res.send('ok'));
  await g.start();
  const s = await listen(app);
  try {
    await expectations(s.url, await f.sign());
  } finally {
    s.close();
  }
});

test('express: the middleware alone', async () => {
  const app = express();
  app.get('/agencies/:agy/contacts', g.express({ permission: 'contacts.read', tenant }), (req, res) => res.json(contacts(req.principal)));
  app.post('/agencies/:agy/contacts', g.express({ permission: 'contacts.write', tenant }), (req, res) => res.status(201).end());
  app.get('/health', (req, res) => res.send('ok'));
  const s = await listen(app);
  try {
    await expectations(s.url, await f.sign());
  } finally {
    s.close();
  }
});

test('fastify: the plugin, with config.tessera on every route', async () => {
  const app = Fastify();
  await app.register(g.fastify);
  app.get('/agencies/:agy/contacts', { config: { tessera: { permission: 'contacts.read', tenant } } }, async (req) => contacts(req.principal));
  app.post('/agencies/:agy/contacts', { config: { tessera: { permission: 'contacts.write', tenant } } }, async (req, reply) => reply.code(201).send());
  app.get('/health', { config: { tessera: { public: true } } }, async () => 'ok');
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await expectations(`http://127.0.0.1:${app.server.address().port}`, await f.sign());
    const h = await fetch(`http://127.0.0.1:${app.server.address().port}/agencies/agy_1/contacts`, { method: 'HEAD' });
    assert.equal(h.status, 401, 'the automatic HEAD route is guarded too');
  } finally {
    await app.close();
  }
});

test('fastify: a route without a declaration stops the server from starting', async () => {
  const app = Fastify();
  await app.register(g.fastify);
  await assert.rejects(
    (async () => {
      app.get('/open', async () => 'oops');
      await app.ready();
    })(),
    /declares its permission/,
  );
  // Also inside a child plugin.
  const app2 = Fastify();
  await app2.register(g.fastify);
  app2.register(async (child) => {
    child.get('/open', async () => 'oops');
  });
  await assert.rejects(app2.ready(), /declares its permission/);
});
