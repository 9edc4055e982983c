// resnet-ts as a dependency, the way a user gets it (issue 19): build, `npm pack`, install
// the tarball into a fresh project from the npm cache where it can (--prefer-offline), compile
// every TypeScript example of the README's first screen and "Use it from your code" section
// with `tsc --strict` (module nodenext) against the installed package's own types, run them
// in order, then check what they made: a run trained by the exported Trainer on arrays,
// weights saved and reloaded, predictions, an ONNX file, features of a grey 28x28 checkpoint.
// NOTE: the install runs no scripts here (--ignore-scripts; the npm on this machine skips
// unapproved install scripts anyway): building the addon with node-gyp takes minutes on the
// CI's two cores, and the install script's behaviour is tested elsewhere. This worktree's
// build/Release/resnet_native.node is copied into the installed package instead, so the
// examples run on the native backend as an installed package does (on the reference backend
// where the worktree has no addon). The package's own .d.ts files are type-checked too
// (skipLibCheck false).

import assert from 'node:assert/strict';
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-consumer-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The README's first-screen program (the ts block before the section) and every ts block of "## Use it from your code". */
export function readmeExamples(readme: string): string[] {
  const start = readme.indexOf('\n## Use it from your code');
  assert.ok(start > 0, 'README has a "## Use it from your code" section');
  const end = readme.indexOf('\n## ', start + 1);
  const blocks = (text: string) => [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  const before = blocks(readme.slice(0, start));
  assert.ok(before.length >= 1, 'the first screen holds a TypeScript program');
  return [before[before.length - 1], ...blocks(readme.slice(start, end < 0 ? undefined : end))];
}

function run(cmd: string, args: string[], options: ExecFileSyncOptions = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options }) as string;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

// The test's own checks, as a user would write them against the package.
const CHECK = `
import { readFileSync, statSync } from 'node:fs';
import { decodeOnnx, extractFeatures, getBackend, loadModel, loadWeights } from 'resnet-ts';

const grey = await loadModel({ weights: 'runs/arrays/best.safetensors' });
const rows = await extractFeatures(grey, ['digit.png']);
const row = rows[0];
const weights = loadWeights('resnet20.safetensors');
const onnx = decodeOnnx(readFileSync('resnet20.onnx')) as { graph: { node: unknown[] } };
console.log(JSON.stringify({
  backend: getBackend().name,
  channels: grey.channels, crop: grey.crop, mean: grey.mean.length, labels: grey.labels,
  features: 'data' in row ? row.shape : row.error,
  saved: weights.info,
  pth: statSync('arrays.pth').size,
  onnxNodes: onnx.graph.node.length,
}));
`;

test('the packed package installs, its README examples compile strictly and run', { timeout: 300_000 }, async () => {
  run('npm', ['run', 'build'], { cwd: ROOT });
  run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT });
  const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack made a tarball');

  const app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const env = { ...process.env, npm_config_update_notifier: 'false' };
  // --prefer-offline, not --offline: `npm ci` caches the tarballs and the abbreviated
  // packuments, but installing a tarball into a fresh project asks for the dependencies' full
  // packuments, which on a fresh machine only the registry has (it failed with ENOTCACHED on
  // @fastify/multipart there, and passed wherever an earlier `npm install` had cached them).
  run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(tmp, tgz)], { cwd: app, env });
  const pkg = join(app, 'node_modules/resnet-ts');
  assert.ok(existsSync(join(pkg, 'dist/index.d.ts')), 'the package ships its types');
  const addon = join(ROOT, 'build/Release/resnet_native.node');
  if (existsSync(addon)) {
    mkdirSync(join(pkg, 'build/Release'), { recursive: true });
    copyFileSync(addon, join(pkg, 'build/Release/resnet_native.node'));
  }

  const examples = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  assert.ok(examples.length >= 6, `README examples: ${examples.length}`);
  const names = examples.map((_, i) => `example${i}.ts`);
  examples.forEach((code, i) => writeFileSync(join(app, names[i]), code));
  writeFileSync(join(app, 'check.ts'), CHECK);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', outDir: 'out', noEmitOnError: true,
      types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')], skipLibCheck: false,
    },
    files: [...names, 'check.ts'],
  }));
  run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app });

  await sharp(Buffer.alloc(40 * 40, 200), { raw: { width: 40, height: 40, channels: 1 } }).png().toFile(join(app, 'digit.png'));
  const outputs = names.map((n) => run(process.execPath, [join('out', n.replace(/\.ts$/, '.js'))], { cwd: app, env }));

  // The first screen: trained, loaded from the run directory, predicted.
  assert.match(outputs[0], /file: 'digit\.png'/);
  assert.ok(statSync(join(app, 'runs/quick/best.safetensors')).size > 0);
  // Create, save with metadata, load without an arch, predict, softmax/argmax.
  assert.match(outputs[1], /^digit\.png class \d+ 0\.\d{3}, class \d+/m);
  assert.match(outputs[1], /\[ 2, 10 \] Int32Array\(2\)/);
  // The Trainer on arrays: two epochs reported through onProgress, then evaluated again.
  assert.match(outputs[2], /epoch 1: test top-1 [\d.]+%\nepoch 2: test top-1 [\d.]+%/);
  assert.match(outputs[2], /evaluated again: [\d.]+%/);
  // The last blocks: weights, features, ONNX.
  assert.match(outputs[3], /^resnet20 \[ 'dark', 'bright' \] \[ 28, 28 \]/m);
  assert.match(outputs[4], /digit\.png \[ 64 \] 64/);
  assert.ok(statSync(join(app, 'resnet20.onnx')).size > 100_000);

  const check = JSON.parse(run(process.execPath, ['out/check.js'], { cwd: app, env })) as Record<string, unknown>;
  assert.equal(check.backend, existsSync(addon) ? 'native' : 'reference');
  assert.equal(check.channels, 1);
  assert.deepEqual(check.crop, [28, 28]);
  assert.equal(check.mean, 1);
  assert.deepEqual(check.labels, ['dark', 'bright']);
  assert.deepEqual(check.features, [64]);
  assert.deepEqual(check.saved, { arch: 'resnet20', numClasses: 10, inChannels: 1, inputSize: [28, 28], mean: [0.286], std: [0.353] });
  assert.ok((check.pth as number) > 100_000);
  assert.ok((check.onnxNodes as number) > 20);
});
