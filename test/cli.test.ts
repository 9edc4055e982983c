// The `resnet` command line, run as a user would (the compiled bin).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

test('resnet info --json reports the real backend, oneDNN version, threads and ISA', () => {
  const out = execFileSync(process.execPath, [BIN, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, RESNET_NUM_THREADS: '' } });
  const info = JSON.parse(out) as Record<string, unknown>;
  assert.equal(info.version, pkg.version);
  assert.equal(info.backend, 'native');
  assert.match(String(info.onednn), /^2\.\d+\.\d+$/);
  assert.ok(Number.isInteger(info.threads) && (info.threads as number) >= 1);
  assert.match(String(info.isa), /^(avx512|avx2|avx|sse41)/, `isa ${String(info.isa)}`);
});

test('RESNET_NUM_THREADS and RESNET_BACKEND are honoured; a bad RESNET_BACKEND lists the valid ones', () => {
  const one = JSON.parse(execFileSync(process.execPath, [BIN, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, RESNET_NUM_THREADS: '1' } }));
  assert.equal(one.threads, 1);
  const ref = JSON.parse(execFileSync(process.execPath, [BIN, 'info', '--json'], { encoding: 'utf8', env: { ...process.env, RESNET_BACKEND: 'reference' } }));
  assert.equal(ref.backend, 'reference');
  assert.equal(ref.onednn, null);
  assert.throws(() => execFileSync(process.execPath, [BIN, 'info'], { encoding: 'utf8', stdio: 'pipe', env: { ...process.env, RESNET_BACKEND: 'cuda' } }),
    (e: { stderr?: string }) => /unknown backend 'cuda'; valid: native, reference/.test(String(e.stderr)));
});

test('resnet info prints a readable table', () => {
  const out = execFileSync(process.execPath, [BIN, 'info'], { encoding: 'utf8' });
  assert.match(out, /^resnet-ts\s+\d+\.\d+\.\d+$/m);
  assert.match(out, /^backend\s+native$/m);
});

test('resnet bench --json: the documented fields, for inference and a training step', () => {
  for (const mode of ['infer', 'train']) {
    const out = execFileSync(process.execPath, [BIN, 'bench', '--arch', 'resnet20', '--batch', '4', '--mode', mode, '--input', '16x16', '--in-channels', '1', '--runs', '3', '--warmup', '1', '--json'], { encoding: 'utf8' });
    const r = JSON.parse(out) as Record<string, unknown>;
    assert.equal(r.arch, 'resnet20');
    assert.equal(r.batch, 4);
    assert.equal(r.mode, mode);
    assert.equal(r.backend, 'native');
    assert.ok(typeof r.ms_per_batch === 'number' && r.ms_per_batch > 0);
    assert.ok(Math.abs((r.images_per_sec as number) - 4000 / (r.ms_per_batch as number)) < 1e-6);
    assert.equal((r.runs_ms as number[]).length, 3);
  }
});

test('resnet bench: bad mode, arch and batch are one-line errors listing what is valid', () => {
  const fail = (args: string[], re: RegExp) => assert.throws(() => execFileSync(process.execPath, [BIN, 'bench', ...args], { encoding: 'utf8', stdio: 'pipe' }),
    (e: { stderr?: string; status?: number }) => e.status === 1 && re.test(String(e.stderr)) && !/\n\s+at /.test(String(e.stderr)));
  fail(['--arch', 'resnet20', '--mode', 'serve'], /--mode must be one of infer, train, got 'serve'/);
  fail(['--arch', 'resnet21'], /unknown arch 'resnet21'.*valid: resnet18/);
  fail(['--arch', 'resnet20', '--batch', '0'], /--batch must be an integer >= 1, got '0'/);
});

test('--precision: resnet info names what auto gives; bf16 runs where oneDNN has AVX-512 and is a one-line error where it has not', () => {
  const info = JSON.parse(execFileSync(process.execPath, [BIN, 'info', '--json'], { encoding: 'utf8' })) as Record<string, string>;
  assert.ok(['fp32', 'bf16'].includes(info.precision), `precision ${info.precision}`);
  assert.equal(info.precision, info.isa === 'avx512_core_amx' ? 'bf16' : 'fp32', `auto on ${info.isa}`);
  const args = ['bench', '--arch', 'resnet20', '--batch', '2', '--mode', 'train', '--input', '16x16', '--in-channels', '1', '--runs', '1', '--warmup', '0', '--json'];
  // oneDNN's dispatcher capped at AVX2 is the AVX2-only machine (AMD Zen 3): no bf16 at all
  const avx2 = { ...process.env, ONEDNN_MAX_CPU_ISA: 'AVX2' };
  assert.throws(() => execFileSync(process.execPath, [BIN, ...args, '--precision', 'bf16'], { encoding: 'utf8', stdio: 'pipe', env: avx2 }),
    (e: { stderr?: string; status?: number }) => e.status === 1 && /^resnet: precision bf16: this CPU's oneDNN ISA is avx2 \(no AVX-512\).*use --precision fp32/.test(String(e.stderr)) &&
      String(e.stderr).trim().split('\n').length === 1);
  const auto = JSON.parse(execFileSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: avx2 })) as Record<string, unknown>;
  assert.equal(auto.precision, 'fp32');
  assert.throws(() => execFileSync(process.execPath, [BIN, ...args, '--precision', 'fp16'], { encoding: 'utf8', stdio: 'pipe' }),
    (e: { stderr?: string; status?: number }) => e.status === 1 && /unknown precision 'fp16'; valid: auto, fp32, bf16/.test(String(e.stderr)));
  if (info.isa.startsWith('avx512')) {
    const r = JSON.parse(execFileSync(process.execPath, [BIN, ...args, '--precision', 'bf16'], { encoding: 'utf8' })) as Record<string, unknown>;
    assert.equal(r.precision, 'bf16');
  }
});
