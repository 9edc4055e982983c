// `resnet serve --helper-priority idle`: the server's helper threads (V8's garbage collector
// and compiler threads, image decoding, libuv's pool) get Linux's SCHED_IDLE, so they run
// only on cores the engine's compute threads leave (OpenMP threads waiting at a barrier, the
// gaps between batches). The HTTP thread and the compute threads (each engine thread and its
// OpenMP team) keep their priority. Where the engine takes every core, a helper that
// preempts one compute thread stalls the whole team (oneDNN splits each primitive statically
// and every thread waits for the slowest): resnet18 at concurrency 32 on 2 cores served
// 0.81-0.84 of `resnet bench` with it against 0.76-0.80 without. The catch: decoding then
// gets only what the engine leaves (JPEG requests were served slower: 62 against 81 img/s),
// and SCHED_IDLE threads also yield to every other process, so it is for servers fed
// preprocessed tensors on cores of their own (README, Serve). Threads the lowered ones start
// later inherit the policy.

import { readdirSync, readlinkSync } from 'node:fs';
import { platform } from 'node:os';
import { loadNativeAddon } from '../backend/native.js';
import { InvalidArgumentError } from '../errors.js';

export const HELPER_PRIORITIES = ['normal', 'idle'] as const;
export type HelperPriority = (typeof HELPER_PRIORITIES)[number];

/**
 * Gives every thread of this process SCHED_IDLE except the calling thread (the server's
 * HTTP thread) and `compute` (Linux thread ids of the threads that run the kernels); returns
 * how many were lowered.
 * @example idleHelperThreads(engine.computeThreadIds);
 */
export function idleHelperThreads(compute: readonly number[]): number {
  if (platform() !== 'linux') throw new InvalidArgumentError(`--helper-priority idle needs Linux (SCHED_IDLE); this is ${platform()}: use --helper-priority normal`);
  if (compute.length === 0) {  // the engine reports its threads on the native backend only
    throw new InvalidArgumentError('--helper-priority idle needs the native backend (its compute threads are the ones it keeps at normal priority); use --helper-priority normal');
  }
  // Loaded before the threads are listed: loading it on this thread starts this thread's
  // OpenMP team, whose (idle) thread is a helper too.
  const addon = loadNativeAddon();
  const self = Number(readlinkSync('/proc/thread-self').split('/').pop());
  const kept = new Set([...compute, self]);
  const helpers = readdirSync('/proc/self/task').map(Number).filter((tid) => Number.isInteger(tid) && !kept.has(tid));
  return addon.idleThreads(helpers);
}
