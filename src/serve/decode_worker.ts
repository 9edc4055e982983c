// A decode thread: encoded image bytes in, the model's preprocessed float32 [C, H, W] out
// (src/infer/preprocess.ts: sharp decodes, then torchvision's resize, crop and normalise in
// JS), so the HTTP thread never spends CPU on pixels. Errors (a DataError naming why the
// image does not decode, is too large or of a format not enabled) go back as messages.
// For a detector ('image' mode) the decoded uint8 planar RGB [3, H, W] at its own size goes
// back instead (as detect() decodes it; the detector resizes in its own transform).

import { parentPort } from 'node:worker_threads';
import { decodeImage } from '../data/image_folder.js';
import { preprocessImage, type PreprocessOptions } from '../infer/preprocess.js';

interface DecodeRequest { id: number; bytes: Uint8Array; options: PreprocessOptions; mode?: 'preprocess' | 'image' }

const port = parentPort!;
port.on('message', (req: DecodeRequest) => {
  const t0 = performance.now();
  const fail = (e: unknown) => {
    const err = e as Error & { code?: string };
    port.postMessage({ id: req.id, error: { message: err?.message ?? String(e), name: err?.name ?? 'Error', code: err?.code } });
  };
  if (req.mode === 'image') {
    decodeImage(req.bytes, { limitInputPixels: req.options.limitInputPixels, formats: req.options.formats }).then(
      (img) => port.postMessage({ id: req.id, data: img.data, shape: [img.channels, img.height, img.width], ms: performance.now() - t0 }, [img.data.buffer as ArrayBuffer]),
      fail,
    );
    return;
  }
  preprocessImage(req.bytes, req.options).then(
    (img) => port.postMessage({ id: req.id, data: img.data, shape: [img.channels, img.height, img.width], ms: performance.now() - t0 }, [img.data.buffer as ArrayBuffer]),
    fail,
  );
});
