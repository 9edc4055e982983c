// The package as a user installs it: scripts/build_native.mjs (the `install` script) fails the
// install loudly when the addon cannot be built, or, with RESNET_ALLOW_REFERENCE=1, installs
// and says at every start that it runs on the reference backend; the addon's own code needs
// no more than the x86-64 baseline; `import 'resnet-ts'` leaves the heavy dependencies
// unloaded; `npm pack` ships what the install needs. The failing builds run in a temporary
// copy of the package, never in this checkout's build/.
// Run: node --import tsx --test test/install.test.ts

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = new URL('..', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;

/** The environment of an `npm install` run by a user who set nothing of ours. */
function installEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_lifecycle_event: 'install' };
  for (const k of ['CXX', 'RESNET_BACKEND', 'RESNET_ALLOW_REFERENCE', 'RESNET_SKIP_NATIVE_BUILD']) delete env[k];
  return { ...env, ...extra };
}

describe('install: the native build', () => {
  let dir = '';
  const run = (args: string[], env: NodeJS.ProcessEnv) => spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8', env });
  const build = (extra: Record<string, string>) => run(['scripts/build_native.mjs'], installEnv(extra));

  before(() => {
    // The files the install needs (package.json's `files`) plus src/ to start the library
    // from, with this checkout's node_modules.
    dir = mkdtempSync(join(tmpdir(), 'resnet-install-'));
    for (const p of ['package.json', 'binding.gyp', 'native', 'src']) cpSync(join(ROOT, p), join(dir, p), { recursive: true });
    mkdirSync(join(dir, 'scripts'));
    cpSync(join(ROOT, 'scripts', 'build_native.mjs'), join(dir, 'scripts', 'build_native.mjs'));
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const failsLoudly = (r: ReturnType<typeof run>, reason: RegExp) => {
    assert.equal(r.status, 1, `exit status ${r.status}; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one message, got:\n${r.stderr}`);
    assert.match(lines[0], /^resnet-ts: the native addon could not be built: /);
    assert.match(lines[0], reason);
    assert.match(lines[0], /apt-get install g\+\+ make libdnnl-dev/);
    assert.match(lines[0], /set RESNET_ALLOW_REFERENCE=1/);
    assert.ok(!existsSync(join(dir, 'build', 'Release', 'resnet_native.node')));
    assert.ok(!existsSync(join(dir, 'build', 'native_status.json')));
  };

  it('without a C++ compiler ($CXX missing, or no g++ on PATH) the install fails with what to apt-get install', () => {
    failsLoudly(build({ CXX: '/nonexistent/g++' }), /the C\+\+ compiler '\/nonexistent\/g\+\+' \(from \$CXX\) was not found/);
    failsLoudly(build({ PATH: mkdtempSync(join(tmpdir(), 'resnet-empty-path-')) }), /the C\+\+ compiler 'g\+\+' was not found/);
  });

  it('a compile that fails inside make fails the install and names the build log', () => {
    const r = build({ CXX: 'false' });
    const log = join(dir, 'build', 'native_build.log');
    failsLoudly(r, new RegExp(`node-gyp exited with status \\d+.*Build log: ${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.`));
    assert.match(readFileSync(log, 'utf8'), /make/);
  });

  it('RESNET_ALLOW_REFERENCE=1 installs, and every start then says once that it runs on the reference backend and why', () => {
    const r = build({ CXX: '/nonexistent/g++', RESNET_ALLOW_REFERENCE: '1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /native addon not built \(the C\+\+ compiler .* was not found\); RESNET_ALLOW_REFERENCE is set/);
    const why = /native addon not built: the C\+\+ compiler '\/nonexistent\/g\+\+' \(from \$CXX\) was not found; RESNET_ALLOW_REFERENCE=1/;

    // the library: one line on stderr however many tensors, and the work is done
    const script = "const m = await import('./src/index.ts'); const a = m.tensor([1, 2, 3], [3]); const b = m.tensor([4, 5, 6], [3]);" +
      " console.log(Array.from(m.add(a, b).toArray()).join(','));";
    const env = installEnv({});
    delete env.npm_lifecycle_event;
    const lib = run(['--import', 'tsx', '--input-type=module', '-e', script], env);
    assert.equal(lib.status, 0, lib.stderr);
    assert.equal(lib.stdout.trim(), '5,7,9');
    const lines = lib.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${lib.stderr}`);
    assert.match(lines[0], /^resnet-ts: running on the TypeScript reference backend \(much slower\): /);
    assert.match(lines[0], why);
    assert.match(lines[0], /npm rebuild resnet-ts/);

    // resnet info, JSON and table
    const info = run(['--import', 'tsx', 'src/cli/main.ts', 'info', '--json'], env);
    assert.equal(info.status, 0, info.stderr);
    const j = JSON.parse(info.stdout) as { backend: string; backendReason: string; kernels: string | null };
    assert.equal(j.backend, 'reference');
    assert.match(j.backendReason, why);
    assert.equal(j.kernels, null);
    const table = run(['--import', 'tsx', 'src/cli/main.ts', 'info'], env);
    assert.match(table.stdout, /^backend\s+reference \(native addon not built: the C\+\+ compiler .*; RESNET_ALLOW_REFERENCE=1\)$/m);

    // chosen explicitly, the reference backend is silent
    const chosen = run(['--import', 'tsx', 'src/cli/main.ts', 'info', '--json'], { ...env, RESNET_BACKEND: 'reference' });
    assert.equal(chosen.status, 0, chosen.stderr);
    assert.equal(chosen.stderr, '');
    assert.equal((JSON.parse(chosen.stdout) as { backendReason: string }).backendReason, 'RESNET_BACKEND=reference');
  });
});

describe('install: the package', () => {
  it('the built addon has no AVX instruction outside the kernels dispatched at run time', (t) => {
    const addon = join(ROOT, 'build', 'Release', 'resnet_native.node');
    if (spawnSync('objdump', ['--version']).status !== 0) return t.skip('objdump is not installed');
    if (!existsSync(addon)) return t.skip('the addon is not built');
    const asm = execFileSync('objdump', ['-d', '-C', '--no-show-raw-insn', addon], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
    // VEX/EVEX-encoded instructions (v-prefixed mnemonics) or ymm/zmm/mask registers, by function
    const vex = new Map<string, number>();
    let fn = '';
    for (const line of asm.split('\n')) {
      const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (head) { fn = head[1]; continue; }
      const ins = /^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$/.exec(line);
      if (ins && (ins[1].startsWith('v') || /%[yz]mm|%k[0-7]\b/.test(ins[2]))) vex.set(fn, (vex.get(fn) ?? 0) + 1);
    }
    const outside = [...vex.keys()].filter((f) => !/\b(avx2|avx512)::/.test(f));
    assert.deepEqual(outside, [], `AVX instructions outside rn::(anon)::avx2/avx512:\n${outside.join('\n')}`);
    assert.ok([...vex.keys()].some((f) => f.includes('avx2::')), 'no AVX2 kernels found');
    assert.ok([...vex.keys()].some((f) => f.includes('avx512::')), 'no AVX-512 kernels found');
  });

  it('the addon runs on an x86-64 without AVX and one without AVX-512 (qemu), each on its kernel set, with the batch-norm and SGD results of this CPU', (t) => {
    const addon = join(ROOT, 'build', 'Release', 'resnet_native.node');
    if (spawnSync('qemu-x86_64', ['-version']).status !== 0) return t.skip('qemu-user (qemu-x86_64) is not installed');
    if (!existsSync(addon)) return t.skip('the addon is not built');
    // Training batch norm (+ReLU), forward and backward, on a planar input and on a conv's
    // blocked output, and two SGD steps, through the addon alone.
    const script = `process.env.OMP_WAIT_POLICY = 'PASSIVE';
      const a = require(${JSON.stringify(addon)});
      const N = 3, C = 19, H = 7, W = 5, K = 24;
      const f = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * s) * 2);
      const out = { kernels: a.kernelIsa(), isa: a.info().isa };
      const x = a.fromArray(f(N * C * H * W, 0.37), [N, C, H, W]);
      const w = a.fromArray(f(K * C * 9, 0.11), [K, C, 3, 3]);
      const h = a.conv2d(x, w, null, { N, C, H, W, K, R: 3, S: 3, OH: H, OW: W, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 });
      for (const [name, t, ch, shape] of [['planar', x, C, [N, C, H, W]], ['conv', h, K, [N, K, H, W]]]) {
        const g = a.fromArray(f(ch, 0.7).map((v) => 1 + 0.2 * v), [ch]);
        const b = a.fromArray(f(ch, 0.3).map((v) => 0.1 * v), [ch]);
        const r = a.batchNormTrain(t, g, b, 1e-5, true);
        const dy = a.fromArray(f(shape.reduce((p, q) => p * q), 0.53), shape);
        const d = a.batchNormBackward(dy, t, g, r.mean, r.variance, r.saved, 1e-5, true);
        out[name] = [r.y, r.mean, r.variance, d.dx, d.dgamma, d.dbeta].map((s) => Array.from(a.read(s)));
      }
      const p = a.fromArray(f(40000, 0.19), [40000]), buf = a.fromArray(f(40000, 0.23), [40000]);
      for (const initBuffer of [true, false]) {
        a.sgdUpdate(p, a.fromArray(f(40000, 0.29), [40000]), buf, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: true, initBuffer });
      }
      out.sgd = [Array.from(a.read(p)), Array.from(a.read(buf))];
      console.log(JSON.stringify(out));`;
    const runOn = (cpu: string | null) => {
      const args = ['-e', script];
      const opts = { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20 } as const;
      const r = cpu ? spawnSync('qemu-x86_64', ['-cpu', cpu, process.execPath, ...args], opts) : spawnSync(process.execPath, args, opts);
      assert.equal(r.status, 0, `on ${cpu ?? 'this CPU'}: status ${r.status} signal ${r.signal}\n${r.stderr}`);
      return JSON.parse(r.stdout) as { kernels: string; isa: string; planar: number[][]; conv: number[][]; sgd: number[][] };
    };
    const here = runOn(null);
    for (const [cpu, kernels, isa] of [['Nehalem', 'baseline', 'sse41'], ['Haswell', 'avx2', 'avx2']] as const) {
      const there = runOn(cpu);
      assert.equal(there.kernels, kernels, cpu);
      assert.equal(there.isa, isa, cpu);
      for (const layout of ['planar', 'conv', 'sgd'] as const) {
        here[layout].forEach((want, k) => {
          const scale = Math.max(...want.map(Math.abs));
          const err = Math.max(...want.map((v, i) => Math.abs(there[layout][k][i] - v)));
          assert.ok(err <= 1e-5 * scale, `${cpu} ${layout} output ${k}: max error ${err} (scale ${scale})`);
        });
      }
    }
  });

  it("import 'resnet-ts' loads neither sharp, resvg nor protobufjs; they load on first use", () => {
    const script = "import { createRequire } from 'node:module'; const req = createRequire(import.meta.url);" +
      " const heavy = () => ['sharp', '@resvg/resvg-js', 'protobufjs'].filter((n) => Object.keys(req.cache).some((k) => k.includes(`/node_modules/${n}/`)));" +
      " await import('./src/index.ts'); const atImport = heavy();" +
      " const { svgToPng } = await import('./src/plot/png.ts'); svgToPng('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>');" +
      " const { onnxType } = await import('./src/io/onnx_proto.ts'); onnxType('ModelProto');" +
      ' console.log(JSON.stringify({ atImport, afterUse: heavy() }));';
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { atImport: [], afterUse: ['@resvg/resvg-js', 'protobufjs'] });
  });

  it('npm pack ships what the install needs, LICENSE, the README images and no source maps; prepack builds dist', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
    for (const f of ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'scripts/build_native.mjs', 'native/addon.cc', 'native/batch_norm_kernels.inc']) {
      assert.ok(files.has(f), `${f} is not in the package`);
    }
    if (existsSync(join(ROOT, 'dist', 'index.js'))) {
      assert.ok(files.has('dist/index.js') && files.has('dist/index.d.ts') && files.has('dist/cli/main.js'));
    }
    assert.deepEqual([...files].filter((f) => f.endsWith('.map') || f.startsWith('src/') || f.startsWith('test/')), []);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const [, src] of readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)) {
      if (!/^https?:/.test(src)) assert.ok(files.has(src), `README image ${src} is not in the package`);
    }
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 the resnet-ts authors\n/);
    const scripts = PKG.scripts as Record<string, string>;
    assert.match(scripts.prepack, /tsc -p tsconfig\.json --sourceMap false/);
    assert.equal(scripts.install, 'node scripts/build_native.mjs');
    for (const k of ['repository', 'homepage', 'bugs', 'keywords', 'license']) assert.ok(PKG[k], `package.json has no ${k}`);
  });
});
