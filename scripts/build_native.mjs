// Builds the oneDNN addon (build/Release/resnet_native.node) with npm's bundled node-gyp.
// At install time (`npm install` / `npm ci`) a failed build is not a failed install: it prints
// one message saying what to install, and the library falls back to the TypeScript reference
// backend. With --strict (`npm run build:native`) a failure prints the compiler output and
// exits 1. The full log of the last build is kept in build/native_build.log.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const INSTALL = 'apt-get install g++ make libdnnl-dev';

function unavailable(reason, log) {
  if (log) {
    mkdirSync(join(root, 'build'), { recursive: true });
    writeFileSync(join(root, 'build', 'native_build.log'), log);
  }
  if (strict) {
    if (log) process.stderr.write(log);
    console.error(`resnet-ts: native addon build failed: ${reason}\n` +
      `  Install the toolchain and oneDNN (${INSTALL}), then run \`npm run build:native\` again.`);
    process.exit(1);
  }
  console.warn(`resnet-ts: native backend unavailable (${reason}); using the slower TypeScript reference backend. ` +
    `To enable it: ${INSTALL}, then \`npm run build:native\`.` +
    (log ? ' Build log: build/native_build.log' : ''));
  process.exit(0);
}

if (process.env.RESNET_SKIP_NATIVE_BUILD) {
  console.warn('resnet-ts: RESNET_SKIP_NATIVE_BUILD is set; not building the native backend.');
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  unavailable(`the oneDNN addon is built for linux-x64 only, this is ${process.platform}-${process.arch}`);
}
if (!existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) {
  unavailable('oneDNN headers (/usr/include/oneapi/dnnl/dnnl.hpp) are missing');
}
if (!existsSync('/usr/include/node/node_api.h')) {
  unavailable('Node.js headers (/usr/include/node/node_api.h) are missing; install nodejs headers (apt-get install libnode-dev)');
}

const gyp = process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)
  ? process.env.npm_config_node_gyp
  : '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js';
if (!existsSync(gyp)) unavailable(`node-gyp was not found at ${gyp}`);

const started = Date.now();
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--nodedir=/usr', '--jobs=max'], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
  env: { ...process.env, npm_config_nodedir: '/usr' },
});
const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
if (r.error) unavailable(`node-gyp could not run (${r.error.message})`, log);
if (r.status !== 0) {
  const missing = /dnnl\.hpp: No such file|cannot find -ldnnl/.test(log) ? 'oneDNN (libdnnl-dev) is missing'
    : /g\+\+: (not found|command not found)|not found: make|make: not found/.test(log) ? 'g++ or make is missing'
      : `node-gyp exited with status ${r.status}`;
  unavailable(missing, log);
}
mkdirSync(join(root, 'build'), { recursive: true });
writeFileSync(join(root, 'build', 'native_build.log'), log);
console.log(`resnet-ts: native backend built (build/Release/resnet_native.node, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
