// The Open Inference Protocol (KServe v2, as Triton speaks it) without HTTP: infer requests
// read from JSON or from the binary tensor extension (a JSON header of
// `Inference-Header-Content-Length` bytes, then each binary input's bytes in input order,
// BYTES elements as a 4-byte little-endian length and the bytes), responses written the same
// two ways, and the classification extension (`"classification": k` on an output gives
// "value:index:label" strings). Sources: kserve docs/predict-api/v2/required_api.md, Triton
// docs/protocol/extension_binary_data.md and extension_classification.md. Every refusal is
// an HttpError 400 naming the input and what was expected.

import { HttpError } from './http_error.js';

/** Datatypes of the protocol (tensor data types table); this server reads FP32 and BYTES. */
export const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16'] as const;

/** A tensor of an infer request: FP32 data as a Float32Array, BYTES as one buffer per element. */
export interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  data: Float32Array | Uint8Array[];
  /** FP32 sent in the binary extension: its little-endian bytes as they came (a view into
   *  the body, not copied; `data` copies them into an aligned array when first read). */
  bytes?: Uint8Array;
}

/** An output the request asks for, with its parameters (binary_data, classification). */
export interface RequestedOutput {
  name: string;
  binary: boolean;
  classification: number;
}

export interface InferRequest {
  id?: string;
  inputs: InferInput[];
  /** Absent: all outputs (as JSON unless binary_data_output). */
  outputs: RequestedOutput[] | null;
  /** The request's binary_data_output parameter: the default for every output. */
  binaryOutput: boolean;
}

/** An output tensor of a response. */
export interface OutputTensor {
  name: string;
  datatype: 'FP32' | 'BYTES';
  shape: number[];
  data: Float32Array | string[];
  binary: boolean;
}

const bad = (m: string) => new HttpError(400, m);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shapeOf(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => Number.isInteger(d) && d >= 0)) {
    throw bad(`${where}: 'shape' must be an array of non-negative integers, got ${JSON.stringify(v)?.slice(0, 80)}`);
  }
  return v as number[];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Numbers of a flat or nested JSON array, row-major, checked against `count`. */
function flatNumbers(data: unknown, count: number, where: string, jsonBytes: number): Float32Array {
  // Each JSON number takes at least two bytes with its comma: a shape beyond that cannot be
  // filled, and is refused before its array is allocated.
  if (count > jsonBytes / 2 + 1) throw bad(`${where}: shape needs ${count} elements, more than the ${jsonBytes}-byte JSON can hold`);
  const out = new Float32Array(count);
  let n = 0;
  // Iterative, depth-first and in order: a deeply nested array cannot overflow the stack.
  const walk: { arr: unknown[]; i: number }[] = [];
  if (!Array.isArray(data)) throw bad(`${where}: 'data' must be an array (flat or nested, row-major)`);
  walk.push({ arr: data, i: 0 });
  while (walk.length) {
    const top = walk[walk.length - 1];
    if (top.i >= top.arr.length) { walk.pop(); continue; }
    const v = top.arr[top.i++];
    if (Array.isArray(v)) { walk.push({ arr: v, i: 0 }); continue; }
    if (typeof v !== 'number') throw bad(`${where}: FP32 'data' must hold numbers, found ${v === null ? 'null' : typeof v}`);
    if (n >= count) throw bad(`${where}: 'data' has more than the ${count} elements of its shape`);
    out[n++] = v;
  }
  if (n !== count) throw bad(`${where}: 'data' has ${n} elements, its shape needs ${count}`);
  return out;
}

function flatStrings(data: unknown, count: number, where: string): Uint8Array[] {
  if (!Array.isArray(data)) throw bad(`${where}: 'data' must be an array of base64 strings`);
  const flat = (data as unknown[]).flat(8);
  if (flat.length !== count) throw bad(`${where}: 'data' has ${flat.length} elements, its shape needs ${count}`);
  return flat.map((s, i) => {
    if (typeof s !== 'string') throw bad(`${where}: BYTES element ${i} must be a base64 string, got ${typeof s}`);
    if (!/^[A-Za-z0-9+/=\r\n_-]*$/.test(s)) throw bad(`${where}: BYTES element ${i} is not base64 (send images base64-encoded in JSON, or raw with the binary extension)`);
    return new Uint8Array(Buffer.from(s, 'base64'));
  });
}

/** BYTES elements of a binary input: each a uint32 little-endian length, then its bytes. */
function readBytesElements(buf: Buffer, count: number, where: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > buf.length) throw bad(`${where}: binary BYTES data ends inside element ${i}'s length (${buf.length} bytes for ${count} elements)`);
    const len = buf.readUInt32LE(at);
    at += 4;
    if (at + len > buf.length) throw bad(`${where}: binary BYTES element ${i} says ${len} bytes, only ${buf.length - at} remain`);
    out.push(new Uint8Array(buf.buffer, buf.byteOffset + at, len));
    at += len;
  }
  if (at !== buf.length) throw bad(`${where}: binary BYTES data has ${buf.length - at} bytes after its ${count} elements`);
  return out;
}

function paramBool(p: unknown, key: string, where: string): boolean | undefined {
  if (!isRecord(p) || p[key] === undefined) return undefined;
  if (typeof p[key] !== 'boolean') throw bad(`${where}: parameter '${key}' must be true or false`);
  return p[key] as boolean;
}

/**
 * Reads an infer request: JSON (headerLength undefined) or the binary extension (the first
 * `headerLength` bytes are JSON, the rest binary inputs).
 * @example const req = parseInferRequest(Buffer.from('{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}'));
 */
export function parseInferRequest(body: Buffer, headerLength?: number): InferRequest {
  let jsonPart = body;
  let binary: Buffer | null = null;
  if (headerLength !== undefined) {
    if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length) {
      throw bad(`Inference-Header-Content-Length ${headerLength} must be an integer between 0 and the body's ${body.length} bytes`);
    }
    jsonPart = body.subarray(0, headerLength);
    binary = body.subarray(headerLength);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(jsonPart.toString('utf8'));
  } catch (e) {
    throw bad(`malformed JSON in the infer request: ${(e as Error).message}`);
  }
  if (!isRecord(doc)) throw bad('the infer request must be a JSON object {"inputs": [...]}');
  if (doc.id !== undefined && typeof doc.id !== 'string') throw bad("'id' must be a string");
  if (!Array.isArray(doc.inputs) || doc.inputs.length === 0) throw bad("the infer request needs 'inputs': a non-empty array of {name, shape, datatype, data}");
  let offset = 0;
  const inputs: InferInput[] = doc.inputs.map((t: unknown, i: number) => {
    if (!isRecord(t) || typeof t.name !== 'string') throw bad(`inputs[${i}] must be an object with a string 'name'`);
    const where = `input '${t.name}'`;
    if (typeof t.datatype !== 'string' || !(V2_DATATYPES as readonly string[]).includes(t.datatype)) {
      throw bad(`${where}: 'datatype' must be one of ${V2_DATATYPES.join(', ')}, got ${JSON.stringify(t.datatype)}`);
    }
    const shape = shapeOf(t.shape, where);
    const count = numel(shape);
    const size = isRecord(t.parameters) ? t.parameters.binary_data_size : undefined;
    if (t.datatype !== 'FP32' && t.datatype !== 'BYTES') throw bad(`${where}: datatype ${t.datatype} is not served; this server reads FP32 tensors and BYTES (encoded images)`);
    if (size !== undefined) {
      if (binary === null) throw bad(`${where}: 'binary_data_size' needs the binary extension (the Inference-Header-Content-Length header)`);
      if (!Number.isInteger(size) || (size as number) < 0 || offset + (size as number) > binary.length) {
        throw bad(`${where}: binary_data_size ${String(size)} runs past the ${binary.length - offset} binary bytes left`);
      }
      const chunk = binary.subarray(offset, offset + (size as number));
      offset += size as number;
      if (t.data !== undefined) throw bad(`${where}: give either 'data' or binary_data_size, not both`);
      if (t.datatype === 'BYTES') return { name: t.name, shape, datatype: t.datatype, data: readBytesElements(chunk, count, where) };
      if (chunk.length !== count * 4) throw bad(`${where}: FP32 shape [${shape.join(', ')}] needs ${count * 4} bytes, binary_data_size is ${chunk.length}`);
      // Copied into an aligned array when read; the extension's floats are little-endian, as
      // this CPU's. The server hands `bytes` to the engine instead: no 0.6 MB copy a request.
      let data: Float32Array | null = null;
      return {
        name: t.name, shape, datatype: t.datatype, bytes: chunk,
        get data(): Float32Array {
          if (!data) { data = new Float32Array(count); new Uint8Array(data.buffer).set(chunk); }
          return data;
        },
      };
    }
    if (t.data === undefined) throw bad(`${where}: no 'data' (and no binary_data_size)`);
    const data = t.datatype === 'FP32' ? flatNumbers(t.data, count, where, jsonPart.length) : flatStrings(t.data, count, where);
    return { name: t.name, shape, datatype: t.datatype, data };
  });
  if (binary !== null && offset !== binary.length) throw bad(`the binary part has ${binary.length - offset} bytes that no input's binary_data_size claims`);
  const binaryOutput = paramBool(doc.parameters, 'binary_data_output', 'request') ?? false;
  let outputs: RequestedOutput[] | null = null;
  if (doc.outputs !== undefined) {
    if (!Array.isArray(doc.outputs)) throw bad("'outputs' must be an array of {name, parameters?}");
    outputs = doc.outputs.map((o: unknown, i: number) => {
      if (!isRecord(o) || typeof o.name !== 'string') throw bad(`outputs[${i}] must be an object with a string 'name'`);
      const where = `output '${o.name}'`;
      const c = isRecord(o.parameters) ? o.parameters.classification : undefined;
      if (c !== undefined && (!Number.isInteger(c) || (c as number) < 1)) throw bad(`${where}: 'classification' must be an integer >= 1`);
      return { name: o.name, binary: paramBool(o.parameters, 'binary_data', where) ?? binaryOutput, classification: (c as number | undefined) ?? 0 };
    });
  }
  return { id: doc.id as string | undefined, inputs, outputs, binaryOutput };
}

/** Bytes of a BYTES tensor in the binary extension's layout. */
function bytesElements(strings: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of strings) {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

/**
 * Writes an infer response: JSON when no output is binary, else the binary extension (JSON
 * header, then each binary output's bytes; `headerLength` goes in Inference-Header-Content-Length).
 * @example const { body, contentType } = encodeInferResponse({ model_name: 'r18', outputs: [] });
 */
export function encodeInferResponse(r: { model_name: string; model_version?: string; id?: string; outputs: OutputTensor[] }): { body: Buffer; contentType: string; headerLength?: number } {
  const blobs: Buffer[] = [];
  const outputs = r.outputs.map((o) => {
    if (!o.binary) return { name: o.name, datatype: o.datatype, shape: o.shape, data: Array.from(o.data as ArrayLike<number | string>) };
    const blob = o.datatype === 'BYTES' ? bytesElements(o.data as string[]) : Buffer.from((o.data as Float32Array).buffer, (o.data as Float32Array).byteOffset, (o.data as Float32Array).byteLength);
    blobs.push(blob);
    return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: blob.length } };
  });
  const head: Record<string, unknown> = { model_name: r.model_name };
  if (r.model_version !== undefined) head.model_version = r.model_version;
  if (r.id !== undefined) head.id = r.id;
  head.outputs = outputs;
  const json = Buffer.from(JSON.stringify(head), 'utf8');
  if (blobs.length === 0) return { body: json, contentType: 'application/json; charset=utf-8' };
  return { body: Buffer.concat([json, ...blobs]), contentType: 'application/octet-stream', headerLength: json.length };
}
