// Backend selection. `native` (oneDNN) is the default; `RESNET_BACKEND=reference|native`
// chooses. If the native addon cannot load and nobody asked for a backend explicitly, the
// reference backend is used and one line on stderr (once per process) says so, why, and what
// to install for the fast one. backendChoice() keeps the why for `resnet info`.

import type { Backend } from './backend.js';
import { ReferenceBackend } from './reference/index.js';
import { NativeBackend, nativeLoadFailure } from './native.js';
import { InvalidArgumentError, NativeLoadError } from '../errors.js';
import { onOutermostScope } from '../tensor/scope.js';

/** @example const name: BackendName = nativeAvailable() ? 'native' : 'reference'; */
export type BackendName = 'reference' | 'native';
/** @example for (const name of BACKEND_NAMES) console.log(name);  // native, reference */
export const BACKEND_NAMES: readonly BackendName[] = ['native', 'reference'];

const instances = new Map<BackendName, Backend>();
let selected: Backend | null = null;
let selectedWhy = '';
let warned = false;

/** The backend getBackend() runs on and why: 'default', 'RESNET_BACKEND=reference',
 *  'setBackend()', or why the native addon did not load. */
export interface BackendChoice { name: BackendName; reason: string }

/** Which backend new tensors use, and why (selects it if nothing has yet). */
export function backendChoice(): BackendChoice {
  const b = getBackend();
  return { name: b.name as BackendName, reason: selectedWhy };
}

/** The backend instance of that name (created once). Throws NativeLoadError if the addon
 *  cannot be loaded.
 * @example
 * const ref = backendByName('reference');
 * const y = relu(tensor([-1, 1], [2], { backend: ref }));
 */
export function backendByName(name: BackendName): Backend {
  let b = instances.get(name);
  if (!b) {
    if (name === 'reference') b = new ReferenceBackend();
    else if (name === 'native') b = deferExternalMemoryInTidy(new NativeBackend());  // once: instances are cached
    else throw new InvalidArgumentError(`backend: unknown backend '${String(name)}'; valid: ${BACKEND_NAMES.join(', ')}`);
    instances.set(name, b);
  }
  return b;
}

/**
 * Makes `backend`'s addon hold back what it tells V8 about native memory while the
 * outermost tidy() runs (native/buffers.cc, accountAlloc): otherwise the hundreds of MB a
 * step allocates and frees start V8 mark-compacts every step. In the thread the addon
 * serves (the first to load it: the main thread, or `resnet serve`'s engine worker, where
 * missing this cost a mark-compact per batch); the addon refuses any other, and there the
 * hook is not set. Returns `backend`.
 */
function deferExternalMemoryInTidy(backend: NativeBackend): NativeBackend {
  const { addon } = backend;
  try {
    addon.deferExternalMemory(false);
  } catch {
    return backend; // not the addon's thread
  }
  onOutermostScope({ open: () => addon.deferExternalMemory(true), close: () => addon.deferExternalMemory(false) });
  return backend;
}

/**
 * Whether the native backend can be loaded here (never throws).
 * @example if (!nativeAvailable()) console.warn('oneDNN addon not loaded: running on the TypeScript reference backend');
 */
export function nativeAvailable(): boolean {
  try { backendByName('native'); return true; } catch { return false; }
}

/**
 * The backend new tensors use unless told otherwise.
 * @example console.log(getBackend().name, getBackend().info().isa);
 */
export function getBackend(): Backend {
  if (selected) return selected;
  const env = process.env.RESNET_BACKEND;
  if (env !== undefined && env !== '') {
    if (env !== 'reference' && env !== 'native') {
      throw new InvalidArgumentError(`RESNET_BACKEND: unknown backend '${env}'; valid: ${BACKEND_NAMES.join(', ')}`);
    }
    selected = backendByName(env);
    selectedWhy = `RESNET_BACKEND=${env}`;
    return selected;
  }
  try {
    selected = backendByName('native');
    selectedWhy = 'default';
  } catch (e) {
    if (!(e instanceof NativeLoadError)) throw e;
    if (!warned) {
      warned = true;
      process.stderr.write(`resnet-ts: running on the TypeScript reference backend (much slower): ${e.message}\n`);
    }
    selected = backendByName('reference');
    selectedWhy = nativeLoadFailure() ?? e.message;
  }
  return selected;
}

/**
 * Makes `name` the default backend for new tensors.
 * @example setBackend('reference');  // what new tensors and models use from now on
 */
export function setBackend(name: BackendName): Backend {
  selected = backendByName(name);
  selectedWhy = 'setBackend()';
  return selected;
}

export type { Backend } from './backend.js';
