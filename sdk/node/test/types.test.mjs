// The hand-written TypeScript types (src/index.d.ts) compile against a typical use
// (test/types/usage.ts), under `--strict`, resolved through package.json's "exports".

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

test('src/index.d.ts type-checks a typical use', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'test/types/tsconfig.json'], { cwd: new URL('..', import.meta.url), stdio: 'inherit' });
});
