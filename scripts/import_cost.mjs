// What `import('resnet-ts')` costs: CPU and wall milliseconds of the dynamic import and the
// CommonJS modules it loaded (require.cache), each run in a fresh process; prints the medians.
// Usage: node scripts/import_cost.mjs [entry=dist/index.js] [runs=21]   (README, "Install")

import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

if (process.argv[2] === '--child') {
  const require = createRequire(import.meta.url);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await import(process.argv[3]);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const modules = Object.keys(require.cache);
  const byPackage = {};
  for (const m of modules) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(m)?.[1] ?? '(own)';
    byPackage[pkg] = (byPackage[pkg] ?? 0) + 1;
  }
  console.log(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000, modules: modules.length, byPackage }));
} else {
  const entry = pathToFileURL(resolve(process.argv[2] ?? 'dist/index.js')).href;
  const runs = Number(process.argv[3] ?? 21);
  const rs = Array.from({ length: runs }, () =>
    JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, '--child', entry], { encoding: 'utf8' })));
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  console.log(JSON.stringify({
    entry, runs, cpuMs: +median(rs.map((r) => r.cpu)).toFixed(1), wallMs: +median(rs.map((r) => r.wall)).toFixed(1),
    fastestWallMs: +Math.min(...rs.map((r) => r.wall)).toFixed(1), commonJsModules: rs[0].modules, byPackage: rs[0].byPackage,
  }));
}
