// How the CLI ends on an error. Expected errors (ResnetError, and system errors such as
// ENOSPC that name their file) print `resnet: MESSAGE` and exit 1. Anything else is a bug:
// `resnet: internal error: MESSAGE (please report; RESNET_DEBUG=1 shows the stack)`, exit 2,
// the stack only with RESNET_DEBUG=1. A closed stdout (EPIPE: `resnet list | head -1`) ends
// the process quietly with status 0, as the reader asked for no more.

import { ResnetError } from '../errors.js';

const DEBUG = () => process.env.RESNET_DEBUG === '1';

function isEpipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'EPIPE';
}

/** A Node system error (it has an errno code and a syscall): the environment, not a bug. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.trim() || '(no message)';
}

/** Prints the error as the file comment says and exits (1 expected, 2 internal, 0 EPIPE). */
export function failAndExit(e: unknown): never {
  if (isEpipe(e)) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  const write = (s: string) => { try { process.stderr.write(s); } catch { /* stderr closed too */ } };
  if (e instanceof ResnetError || isSystemError(e)) {
    write(`resnet: ${firstLine(e.message)}\n`);
    if (DEBUG() && e.stack) write(`${e.stack}\n`);
    process.exit(1);
  }
  const msg = e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
  write(`resnet: internal error: ${firstLine(msg)} (please report; RESNET_DEBUG=1 shows the stack)\n`);
  if (DEBUG()) write(`${e instanceof Error && e.stack ? e.stack : String(e)}\n`);
  process.exit(2);
}

/** Routes uncaught exceptions, unhandled rejections and stdout/stderr EPIPE to failAndExit. */
export function installLastResort(): void {
  process.on('uncaughtException', (e) => failAndExit(e));
  process.on('unhandledRejection', (e) => failAndExit(e));
  process.stdout.on('error', (e) => failAndExit(e));
  process.stderr.on('error', (e) => { if (isEpipe(e)) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0); });
}
