// A data worker thread: receives the shared dataset and transforms once (workerData), then
// batch requests; answers each with its batch, transferring x and y (no copies back).
// Errors go back as messages (the loader turns them into DataError); it never prints.

import { parentPort, workerData } from 'node:worker_threads';
import { serveRequest, type BatchReply, type BatchRequest, type WorkerInit } from '../pipeline.js';

const init = workerData as WorkerInit;

parentPort!.on('message', (req: BatchRequest) => {
  let reply: BatchReply;
  try {
    const batch = serveRequest(init, req);
    reply = { id: req.id, batch };
    parentPort!.postMessage(reply, [batch.x.buffer as ArrayBuffer, batch.y.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as Error & { code?: string };
    reply = { id: req.id, error: { message: err?.message ?? String(e), code: err?.code, name: err?.name } };
    parentPort!.postMessage(reply);
  }
});
