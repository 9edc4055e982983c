// One test body, run on every backend (tfjs's describeWithFlags idea). The native backend
// must load here: a machine set up by scripts/setup.sh has it, so a load failure fails.

import { describe } from 'node:test';
import { backendByName, type Backend, type BackendName } from '../../src/backend/index.js';

export const ALL_BACKENDS: readonly BackendName[] = ['reference', 'native'];

export function describeEachBackend(title: string, body: (backend: Backend, name: BackendName) => void): void {
  for (const name of ALL_BACKENDS) {
    describe(`${title} [${name}]`, () => {
      body(backendByName(name), name);
    });
  }
}
