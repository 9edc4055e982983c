// An error with the HTTP status it is answered with. The server turns any thrown error into
// `{"error": message}`: an HttpError with its status, any other ResnetError (a bad image, a
// bad argument) as 400, anything else as 500. Messages are one line and say what was valid.

import { ResnetError } from '../errors.js';

/**
 * A request the server refuses, with its status (400, 401, 404, 413, 503 ...).
 * @example throw new HttpError(404, "unknown model 'resnet7'; loaded: resnet18");
 */
export class HttpError extends ResnetError {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super('ERR_HTTP', message);
  }
}

/** The status of any error thrown while answering a request. */
export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  const s = (e as { statusCode?: unknown })?.statusCode;
  if (typeof s === 'number' && s >= 400 && s < 600) return s;
  if (e instanceof ResnetError) return 400;
  return 500;
}
