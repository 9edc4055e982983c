// Starts a worker thread from a module beside this one: the compiled .js, or, run from the
// .ts sources under tsx (tests), a tiny bootstrap that registers tsx's hooks first (Node 20
// does not carry them into workers), as src/data/loader.ts does for its data workers.

import { Worker } from 'node:worker_threads';

/** A worker running `./NAME.js` (or `./NAME.ts` under tsx) of this folder. */
export function spawnWorker(name: string, workerData: unknown): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, import.meta.url), { workerData });
  const target = new URL(`./${name}.ts`, import.meta.url).href;
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    return new Worker(new URL(target), { workerData });
  }
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
