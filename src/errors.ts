// One error hierarchy with stable codes. A message names the op or file, the argument,
// what was expected and what came, e.g.
//   conv2d: input 'x' must be 4-D [N, C, H, W], got [3, 224, 224]

/** @example try { createModel('resnet7'); } catch (e) { if (e instanceof ResnetError) console.log(e.code, e.message); } */
export class ResnetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A tensor has the wrong rank or sizes for an op.
 * @example try { conv2d(tensor([1, 2], [2]), x); } catch (e) { if (e instanceof ShapeError) console.log(e.message); }
 */
export class ShapeError extends ResnetError {
  constructor(message: string) { super('ERR_SHAPE', message); }
}

/**
 * A tensor has the wrong dtype for an op.
 * @example try { relu(tensor([1], [1], { dtype: 'int32' })); } catch (e) { if (e instanceof DTypeError) console.log(e.code); }
 */
export class DTypeError extends ResnetError {
  constructor(message: string) { super('ERR_DTYPE', message); }
}

/**
 * An option or argument is out of its valid range or of the wrong kind.
 * @example try { createModel('resnet7'); } catch (e) { if (e instanceof InvalidArgumentError) console.log(e.message); }  // lists the archs
 */
export class InvalidArgumentError extends ResnetError {
  constructor(message: string) { super('ERR_INVALID_ARGUMENT', message); }
}

/**
 * A tensor was used after dispose(), or another lifetime rule was broken.
 * @example
 * const t = tensor([1], [1]);
 * t.dispose();
 * try { t.toArray(); } catch (e) { if (e instanceof DisposedError) console.log(e.message); }
 */
export class DisposedError extends ResnetError {
  constructor(message: string) { super('ERR_DISPOSED', message); }
}

/**
 * The native addon could not be built or loaded.
 * @example try { backendByName('native'); } catch (e) { if (e instanceof NativeLoadError) console.log(e.message); }  // says what to install
 */
export class NativeLoadError extends ResnetError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_NATIVE_LOAD', message, options); }
}

/**
 * oneDNN or the addon reported a failure (never a crash: every status becomes this).
 * @example try { relu(x); } catch (e) { if (e instanceof NativeError) console.log(e.message); }  // a oneDNN status, named
 */
export class NativeError extends ResnetError {
  constructor(message: string) { super('ERR_NATIVE', message); }
}

/**
 * A checkpoint or weights file is unreadable, corrupt or does not fit the model.
 * @example try { loadWeights('missing.pth'); } catch (e) { if (e instanceof CheckpointError) console.log(e.message); }
 */
export class CheckpointError extends ResnetError {
  constructor(message: string) { super('ERR_CHECKPOINT', message); }
}

/**
 * A dataset file is missing, corrupt or does not hold what its format promises; an image does not decode.
 * @example try { await loadFashionMnist({ dir: '/nowhere' }); } catch (e) { if (e instanceof DataError) console.log(e.message); }
 */
export class DataError extends ResnetError {
  constructor(message: string, options?: { cause?: unknown }) { super('ERR_DATA', message, options); }
}

/** An output path cannot be written: its directory is missing, not a directory or not
 *  writable, the path is not a regular file (directory, device, FIFO, socket, dangling
 *  symlink), or the write failed (ENOSPC ...). The message is `[WHAT: ]cannot write PATH:
 *  CAUSE`; `errno` is the system's code where there is one (ENOENT, ENOTDIR, EACCES ...).
 *  @example try { saveWeights('out/w.safetensors', model.stateDict()); } catch (e) { if (e instanceof OutputError) console.error(e.message); } */
export class OutputError extends ResnetError {
  readonly path: string;
  readonly reason: string;
  readonly errno: string | undefined;
  constructor(what: string, path: string, cause: string, errno?: string) {
    super('ERR_OUTPUT', `${what ? `${what}: ` : ''}cannot write ${path}: ${cause}`);
    this.path = path;
    this.reason = cause;
    this.errno = errno;
  }
}

/** Errno codes in words, for messages. */
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'does not exist', ENOTDIR: 'is not a directory', EACCES: 'permission denied', EPERM: 'operation not permitted',
  EROFS: 'read-only file system', ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded', EIO: 'I/O error',
  ELOOP: 'too many levels of symbolic links', ENAMETOOLONG: 'name too long', EISDIR: 'is a directory', EEXIST: 'already exists',
  EXDEV: 'on another file system', EMFILE: 'too many open files', EFBIG: 'file too large',
};

/** `ENOSPC (no space left on device)`, or the message of an error without an errno code (first line).
 *  @example try { loadWeights('w.safetensors'); } catch (e) { console.error(`w.safetensors: ${errnoWords(e)}`); } */
export function errnoWords(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && code.startsWith('E')) return ERRNO_WORDS[code] ? `${code} (${ERRNO_WORDS[code]})` : code;
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
