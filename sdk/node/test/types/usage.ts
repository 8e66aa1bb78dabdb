// Compiled by test/types.test.mjs (`tsc --noEmit --strict`): the hand-written types describe
// the package as a TypeScript service would use it.
import { createGuard, GuardError, type Principal, type RouteDeclaration } from '@tessera/guard';

const guard = createGuard({
  issuer: 'https://id.example.com',
  audience: 'https://contacts.example.com',
  credential: 'tsk_x',
  revocations: { mode: 'poll', staleAfterSeconds: 30 },
  apiKeys: { positiveSeconds: 5 },
});

interface Req {
  params: { agy: string; id: string };
}
const read: RouteDeclaration<Req> = {
  permission: 'contacts.read',
  tenant: (req) => ({ agency: req.params.agy }),
  resource: (req) => ({ type: 'contact', id: req.params.id }),
};
const open: RouteDeclaration = { public: true };
// @ts-expect-error a route is public or declares a permission, not both
const both: RouteDeclaration = { public: true, permission: 'contacts.read' };
void both;

guard.routes({}).get('/agencies/:agy/contacts/:id', read, () => {}).get('/healthz', open, () => {});

export async function who(header: string): Promise<string> {
  await guard.start();
  try {
    const p: Principal = await guard.authenticate(header);
    await guard.authorize(p, read, { params: { agy: p.tenant.agency, id: 'ct_1' } });
    return `${p.subject} ${p.tenant.account ?? ''} ${p.actors.join(',')} ${p.scopes.join(' ')}`;
  } catch (e) {
    if (e instanceof GuardError) return `${e.status} ${e.code}`;
    throw e;
  } finally {
    guard.close();
  }
}
