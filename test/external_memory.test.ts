// What V8 is told about native memory (native/buffers.cc, accountAlloc): inside the
// outermost tidy() nothing is reported (a step's transients used to start V8 mark-compacts
// every step), and when it ends V8 learns the net change, so tensors that survive it (and
// leaks) still count and are collected.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backendByName, keep, tidy, zeros } from '../src/index.js';
import type { NativeBackend } from '../src/backend/native.js';
import { onOutermostScope } from '../src/tensor/scope.js';

test('outermost-scope listeners: once per outermost tidy, closed after a throw too', () => {
  const calls: string[] = [];
  onOutermostScope({ open: () => calls.push('open'), close: () => calls.push('close') });
  tidy(() => tidy(() => tidy(() => 1)));
  assert.throws(() => tidy(() => tidy(() => { throw new Error('boom'); })), /boom/);
  assert.deepEqual(calls, ['open', 'close', 'open', 'close']);
});

test('native: transients inside tidy are not reported to V8; what survives it is', () => {
  const backend = backendByName('native') as NativeBackend;
  // (V8's own statistics do not show AdjustExternalMemory in Node 20; the addon's figure does.)
  const external = () => (backend.addon.poolStats() as { reportedBytes?: number }).reportedBytes ?? NaN;
  const mb = 1 << 20;
  const before = external();
  let inside = 0;
  const kept = tidy(() => {
    for (let i = 0; i < 4; i++) zeros([16, mb / 4], { backend }); // 4 x 16 MiB, freed at the end
    inside = external();
    return zeros([4, mb / 4], { backend }); // 4 MiB, survives
  });
  assert.equal(inside, before, 'inside tidy: nothing reported');
  const after = external();
  assert.equal(after - before, 4 * mb, 'after tidy: the survivor counts');
  kept.dispose();
  assert.equal(external(), before, 'freed outside tidy: reported at once');
  const leaked = tidy(() => keep(zeros([4, mb / 4], { backend })));
  assert.equal(external() - before, 4 * mb, 'a keep()-ed tensor counts once the tidy ends');
  leaked.dispose();
});
