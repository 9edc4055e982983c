// Deterministic memory scopes (the tfjs `tidy` idea). Every tensor made inside `tidy(fn)`
// that fn neither returns nor `keep`s is disposed when fn ends; returned tensors move to the
// enclosing scope. Tensors made outside any scope live until disposed (a
// FinalizationRegistry in tensor.ts frees their memory if they are collected first).
// Invariant: a tracked tensor belongs to exactly one scope, recorded on the tensor.

export interface Scoped {
  /** The scope that will dispose this object, or null if none does. */
  scope: Scope | null;
  dispose(): void;
}

export class Scope {
  readonly tracked = new Set<Scoped>();
  constructor(readonly parent: Scope | null) {}

  adopt(t: Scoped): void {
    if (t.scope === this) return;
    t.scope?.tracked.delete(t);
    t.scope = this;
    this.tracked.add(t);
  }

  release(t: Scoped): void {
    if (t.scope !== this) return;
    this.tracked.delete(t);
    t.scope = null;
  }
}

let current: Scope | null = null;

/** Told when the outermost `tidy` opens and when it has closed (after its disposals). */
export interface OutermostScopeListener {
  open(): void;
  close(): void;
}
const listeners: OutermostScopeListener[] = [];

/**
 * Registers `l` for the rest of the process. The native backend uses it to keep V8 from
 * counting a step's transient memory (native/buffers.cc, deferExternalMemory): nothing a
 * tidy makes can be garbage-collected before the tidy ends, its scope holds it.
 */
export function onOutermostScope(l: OutermostScopeListener): void {
  listeners.push(l);
}

/** The innermost open scope, or null outside every `tidy`. */
export function currentScope(): Scope | null {
  return current;
}

/**
 * Removes `t` from automatic disposal: it lives until its `dispose()` is called.
 * @example const w = tidy(() => keep(randn([3, 3], new Rng(0))));  // survives the scope
 */
export function keep<T extends Scoped>(t: T): T {
  t.scope?.release(t);
  return t;
}

/**
 * Runs `fn`, then disposes every tensor it created that is not part of its result
 * (a tensor, or tensors inside arrays / plain objects) and was not `keep`-ed.
 *
 * @example
 * const loss = tidy(() => crossEntropy(model.forward(x), y)); // intermediates freed
 */
export function tidy<T>(fn: () => T): T {
  const outermost = current === null;
  if (outermost) for (const l of listeners) l.open();
  try {
    return runScope(fn);
  } finally {
    if (outermost) for (const l of listeners) l.close();
  }
}

function runScope<T>(fn: () => T): T {
  const scope = new Scope(current);
  current = scope;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    current = scope.parent;
    disposeAll(scope);
    throw e;
  }
  current = scope.parent;
  const survivors = new Set<Scoped>();
  collect(result, survivors, 0);
  for (const t of survivors) {
    if (t.scope === scope) {
      if (scope.parent) scope.parent.adopt(t);
      else scope.release(t);
    }
  }
  disposeAll(scope);
  if (result instanceof Promise) {
    throw new TypeError('tidy: fn must be synchronous (it returned a Promise); wrap only the synchronous part');
  }
  return result;
}

function disposeAll(scope: Scope): void {
  for (const t of [...scope.tracked]) {
    scope.tracked.delete(t);
    t.scope = null;
    t.dispose();
  }
}

function isScoped(v: unknown): v is Scoped {
  return typeof v === 'object' && v !== null && 'scope' in v && typeof (v as Scoped).dispose === 'function';
}

function collect(v: unknown, out: Set<Scoped>, depth: number): void {
  if (depth > 8 || v === null || typeof v !== 'object') return;
  if (isScoped(v)) { out.add(v); return; }
  if (Array.isArray(v)) { for (const x of v) collect(x, out, depth + 1); return; }
  if (v instanceof Map) { for (const x of v.values()) collect(x, out, depth + 1); return; }
  if (Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, out, depth + 1);
  }
}
