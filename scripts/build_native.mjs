// Builds the oneDNN addon (build/Release/resnet_native.node) with npm's bundled node-gyp; the
// package's `install` script, and `npm run build:native`. A failed build fails: it exits 1 with
// one message naming what is missing, what to apt-get install and the log
// (build/native_build.log). Only with RESNET_ALLOW_REFERENCE=1 does a failed build still
// install: it then records why in build/native_status.json, and every process that uses the
// library says on stderr that it runs on the (much slower) TypeScript reference backend, and
// why (src/backend/native.ts). RESNET_SKIP_NATIVE_BUILD=1 skips the build (the same fallback).
// --strict (`npm run build:native`) never falls back and prints the compiler's last lines.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const logPath = join(buildDir, 'native_build.log');
const statusPath = join(buildDir, 'native_status.json');
const addonPath = join(buildDir, 'Release', 'resnet_native.node');
const APT = 'sudo apt-get install g++ make libdnnl-dev';
const ALLOW = 'RESNET_ALLOW_REFERENCE';
// `npm run build:native` (--strict): a developer asked for the addon; no fallback, and the
// compiler's last lines on stderr.
const strict = process.argv.includes('--strict');
const allowReference = !strict && /^(1|true|yes)$/i.test(process.env[ALLOW] ?? '');

function writeStatus(status) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(statusPath, `${JSON.stringify(status)}\n`);
}

/** Ends the script for a build that cannot or did not succeed. */
function unavailable(reason, log) {
  if (log !== undefined) {
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(logPath, log);
  }
  const logNote = log !== undefined ? ` Build log: ${logPath}.` : '';
  if (allowReference) {
    writeStatus({ built: false, reason, optIn: `${ALLOW}=1`, log: log !== undefined ? logPath : null });
    console.warn(`resnet-ts: native addon not built (${reason}); ${ALLOW} is set, so the install goes on and ` +
      'resnet-ts will run on the TypeScript reference backend (about 160x slower) and say so at every start. ' +
      `To build it later: ${APT}, then \`npm rebuild resnet-ts\`.${logNote}`);
    process.exit(0);
  }
  rmSync(statusPath, { force: true });
  if (strict && log) process.stderr.write(`${log.trimEnd().split('\n').slice(-40).join('\n')}\n`);
  console.error(`resnet-ts: the native addon could not be built: ${reason}. ` +
    `Install the prerequisites (Debian/Ubuntu: ${APT}, and Node.js headers: libnode-dev where the nodejs ` +
    `package lacks include/node) and install again.${logNote} To install anyway and run on the ~160x slower TypeScript reference backend, ` +
    `set ${ALLOW}=1.`);
  process.exit(1);
}

/** The first of `names` (a path, or a command looked up on PATH) that is an executable file. */
function findExecutable(name) {
  const dirs = isAbsolute(name) || name.includes('/') ? [''] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of dirs) {
    const p = d ? join(d, name) : name;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

if (process.env.RESNET_SKIP_NATIVE_BUILD) {
  console.warn('resnet-ts: RESNET_SKIP_NATIVE_BUILD is set; not building the native backend.');
  if (!existsSync(addonPath)) writeStatus({ built: false, reason: 'the build was skipped', optIn: 'RESNET_SKIP_NATIVE_BUILD=1', log: null });
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  unavailable(`the oneDNN addon is built for linux-x64 only, this is ${process.platform}-${process.arch}`);
}
// The compiler and make first: their absence otherwise shows only deep in the log.
const cxx = (process.env.CXX ?? '').trim().split(/\s+/)[0] || 'g++';
if (!findExecutable(cxx)) {
  unavailable(`the C++ compiler '${cxx}'${process.env.CXX ? ' (from $CXX)' : ''} was not found`);
}
if (!findExecutable('make')) unavailable("'make' was not found");
if (!existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) {
  unavailable('oneDNN headers (/usr/include/oneapi/dnnl/dnnl.hpp, from libdnnl-dev) are missing');
}
// Node's headers: npm_config_nodedir if set, else the prefix of the running node (/usr for
// Debian's nodejs, ~/.nvm/... for nvm), else /usr. Never downloaded: an install may be offline.
const nodedirs = [process.env.npm_config_nodedir, join(dirname(process.execPath), '..'), '/usr'].filter(Boolean);
const nodedir = nodedirs.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!nodedir) {
  unavailable(`Node.js headers (include/node/node_api.h) were not found under ${nodedirs.join(', ')}; ` +
    'install them (Debian/Ubuntu: libnode-dev) or set npm_config_nodedir');
}

const gyps = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
].filter(Boolean);
const gyp = gyps.find((p) => existsSync(p));
if (!gyp) unavailable(`node-gyp (npm's) was not found at ${gyps.join(', ')}`);

const started = Date.now();
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'], {
  cwd: root,
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
  env: { ...process.env, npm_config_nodedir: nodedir },
});
const log = `${r.stdout ?? ''}${r.stderr ?? ''}`;
if (r.error) unavailable(`node-gyp could not run (${r.error.message})`, log);
if (r.status !== 0 || !existsSync(addonPath)) {
  const missing = /dnnl\.hpp: No such file|cannot find -ldnnl/.test(log) ? 'oneDNN (libdnnl-dev) is missing'
    : /g\+\+: (not found|command not found)|not found: make|make: not found|No such file or directory.*g\+\+|g\+\+.*No such file or directory/.test(log) ? 'g++ or make is missing'
      : `node-gyp exited with status ${r.status}; the compiler's messages are in the log`;
  unavailable(missing, log);
}
writeFileSync(logPath, log);
writeStatus({ built: true });
console.log(`resnet-ts: native backend built (build/Release/resnet_native.node, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
