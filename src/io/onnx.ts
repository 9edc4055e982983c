// ONNX export of a ResNet (every arch of the registry): IR version 8, opset 17, input
// "input" [batch, C, H, W] float32 NCHW with a dynamic batch (dim_param "batch"), output
// "logits" [batch, classes]. The graph is the model's eval-mode forward, walked through its
// public structure: Conv, BatchNormalization (running statistics, as eval()), Relu, Add,
// MaxPool, GlobalAveragePool, Flatten, Gemm, and option A shortcuts as Slice (steps = the
// stride) then Pad (zero channels), exact. Weights are initializers named by their
// state-dict keys (raw_data, little-endian float32). Encoded with protobufjs (onnx_proto.ts).
// Not here: the lesion (dropped blocks), training-mode BN, ONNX import.

import { endianness } from 'node:os';
import { CheckpointError, InvalidArgumentError, ShapeError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import type { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, type Block } from '../models/blocks.js';
import type { ResNet } from '../models/resnet.js';
import { ShortcutA } from '../models/shortcut.js';
import type { Tensor } from '../tensor/tensor.js';
import { VERSION } from '../version.js';
import { AttributeType, DataType, onnxType } from './onnx_proto.js';

/** @example ONNX_IR_VERSION  // 8 */
export const ONNX_IR_VERSION = 8;
/** @example ONNX_OPSETS.includes(17)  // true */
export const ONNX_OPSETS: readonly number[] = [17];

/** @example const bytes = exportOnnx(model, { inputShape: [1, 28, 28], graphName: 'fashion' } satisfies ExportOnnxOptions); */
export interface ExportOnnxOptions {
  /** The input's [C, H, W]; the batch stays dynamic ("batch"). */
  inputShape: readonly [number, number, number];
  /** ONNX operator set (only 17). */
  opset?: 17;
  /** The graph's name (default: the model's arch name). */
  graphName?: string;
}

type Attr = { name: string; type: number; i?: number; f?: number; s?: Uint8Array; ints?: (number | bigint)[] };
type NodeObj = { input: string[]; output: string[]; name: string; op_type: string; attribute: Attr[] };
type TensorObj = { name: string; dims: number[]; data_type: number; raw_data: Uint8Array };

const LITTLE_ENDIAN = endianness() === 'LE';
const INT64_MAX = 9223372036854775807n;

const ints = (name: string, v: number[]): Attr => ({ name, type: AttributeType.INTS, ints: v });
const int = (name: string, v: number): Attr => ({ name, type: AttributeType.INT, i: v });
const float = (name: string, v: number): Attr => ({ name, type: AttributeType.FLOAT, f: v });
const str = (name: string, v: string): Attr => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(v) });

function floatBytes(a: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); // toArray() gave us a copy
  const out = new Uint8Array(a.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i], true);
  return out;
}

function int64Bytes(v: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(v.length * 8);
  const dv = new DataView(out.buffer);
  v.forEach((x, i) => dv.setBigInt64(i * 8, x, true));
  return out;
}

/** Collects nodes and initializers; every value name is unique. */
class GraphBuilder {
  readonly nodes: NodeObj[] = [];
  readonly initializers: TensorObj[] = [];
  private readonly names = new Set<string>(['input']);

  private claim(name: string): string {
    if (this.names.has(name)) throw new InvalidArgumentError(`exportOnnx: the value name '${name}' is produced twice (two modules share a path?)`);
    this.names.add(name);
    return name;
  }

  /** A float32 initializer from a tensor (read back as plain row-major NCHW). */
  weight(name: string, t: Tensor): string {
    const data = t.toArray();
    if (!(data instanceof Float32Array)) throw new InvalidArgumentError(`exportOnnx: '${name}' is ${t.dtype}, expected float32`);
    this.initializers.push({ name: this.claim(name), dims: [...t.shape], data_type: DataType.FLOAT, raw_data: floatBytes(data) });
    return name;
  }

  int64(name: string, v: readonly bigint[]): string {
    this.initializers.push({ name: this.claim(name), dims: [v.length], data_type: DataType.INT64, raw_data: int64Bytes(v) });
    return name;
  }

  /** Adds a node named `name` whose single output is also `name` (or `output`). */
  node(op: string, name: string, inputs: string[], attribute: Attr[] = [], output = name): string {
    this.nodes.push({ input: inputs, output: [this.claim(output)], name, op_type: op, attribute });
    return output;
  }
}

/** Lowers the model's modules to ONNX nodes; `path` gives each module's state-dict path. */
class Lowering {
  constructor(readonly g: GraphBuilder, private readonly paths: Map<Module, string>) {}

  path(m: Module): string {
    const p = this.paths.get(m);
    if (p === undefined) throw new InvalidArgumentError(`exportOnnx: a ${m.constructor.name} is not a registered submodule of the model`);
    return p;
  }

  conv(m: Conv2d, x: string): string {
    const p = this.path(m);
    const inputs = [x, this.g.weight(`${p}.weight`, m.weight)];
    if (m.bias) inputs.push(this.g.weight(`${p}.bias`, m.bias));
    const [ph, pw] = m.padding;
    return this.g.node('Conv', p, inputs, [
      ints('kernel_shape', [...m.kernelSize]), ints('strides', [...m.stride]), ints('pads', [ph, pw, ph, pw]),
      ints('dilations', [...m.dilation]), int('group', m.groups),
    ]);
  }

  bn(m: BatchNorm2d, x: string, relu = false): string {
    const p = this.path(m);
    const y = this.g.node('BatchNormalization', p, [
      x, this.g.weight(`${p}.weight`, m.weight), this.g.weight(`${p}.bias`, m.bias),
      this.g.weight(`${p}.running_mean`, m.runningMean), this.g.weight(`${p}.running_var`, m.runningVar),
    ], [float('epsilon', m.eps), float('momentum', 1 - m.momentum)]);
    return relu ? this.relu(y, `${p}.relu`) : y;
  }

  relu(x: string, name: string): string {
    return this.g.node('Relu', name, [x]);
  }

  /** Option A: x[:, :, ::s, ::s] (Slice with steps) then zero channels before and after (Pad). */
  shortcutA(m: ShortcutA, x: string): string {
    const p = this.path(m);
    let h = x;
    if (m.stride !== 1) {
      const s = BigInt(m.stride);
      h = this.g.node('Slice', `${p}.subsample`, [h, this.g.int64(`${p}.starts`, [0n, 0n]), this.g.int64(`${p}.ends`, [INT64_MAX, INT64_MAX]),
        this.g.int64(`${p}.axes`, [2n, 3n]), this.g.int64(`${p}.steps`, [s, s])]);
    }
    const before = BigInt(m.before);
    const after = BigInt(m.outChannels - m.inChannels - m.before);
    if (before !== 0n || after !== 0n) {
      h = this.g.node('Pad', `${p}.pad`, [h, this.g.int64(`${p}.pads`, [0n, before, 0n, 0n, 0n, after, 0n, 0n])], [str('mode', 'constant')]);
    }
    return h === x ? this.g.node('Identity', p, [x]) : h;
  }

  /** A shortcut module: option A, or a projection (Sequential of Conv2d [+ BatchNorm2d]). */
  shortcut(m: Module, x: string): string {
    if (m instanceof ShortcutA) return this.shortcutA(m, x);
    if (m instanceof Sequential) {
      let h = x;
      for (const c of m) {
        if (c instanceof Conv2d) h = this.conv(c, h);
        else if (c instanceof BatchNorm2d) h = this.bn(c, h);
        else throw new InvalidArgumentError(`exportOnnx: no ONNX lowering for ${c.constructor.name} in the shortcut ${this.path(m)}; supported: Conv2d, BatchNorm2d`);
      }
      return h;
    }
    throw new InvalidArgumentError(`exportOnnx: no ONNX lowering for the shortcut ${this.path(m)} (${m.constructor.name}); supported: ShortcutA, Sequential(Conv2d[, BatchNorm2d])`);
  }

  /** relu(F(x) + shortcut(x)) or, for pre-activation units, F(pre) + shortcut(pre or x). */
  block(name: string, b: Block, x: string): string {
    const sc = b.shortcutModule;
    if (b instanceof BasicBlock || b instanceof Bottleneck) {
      let h = this.bn(b.bn1, this.conv(b.conv1, x), true);
      if (b instanceof Bottleneck) {
        h = this.bn(b.bn2, this.conv(b.conv2, h), true);
        h = this.bn(b.bn3, this.conv(b.conv3, h), b.plain);
      } else {
        h = this.bn(b.bn2, this.conv(b.conv2, h), b.plain);
      }
      if (b.plain) return h;
      const sum = this.g.node('Add', `${name}.add`, [h, sc ? this.shortcut(sc, x) : x]);
      return this.relu(sum, `${name}.relu`);
    }
    if (b instanceof PreActBasicBlock || b instanceof PreActBottleneck) {
      const pre = this.bn(b.bn1, x, true);
      let h = this.conv(b.conv1, pre);
      h = this.conv(b.conv2, this.bn(b.bn2, h, true));
      if (b instanceof PreActBottleneck) h = this.conv(b.conv3, this.bn(b.bn3, h, true));
      if (b.plain) return h;
      return this.g.node('Add', `${name}.add`, [h, sc ? this.shortcut(sc, pre) : x]);
    }
    throw new InvalidArgumentError(`exportOnnx: no ONNX lowering for block ${name} (${b.constructor.name}); supported: BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck and their plain twins`);
  }
}

function checkShape(model: ResNet, shape: unknown): [number, number, number] {
  const ok = Array.isArray(shape) && shape.length === 3 && shape.every((d) => Number.isInteger(d) && d >= 1);
  if (!ok) throw new InvalidArgumentError(`exportOnnx: 'inputShape' must be [C, H, W] (3 integers >= 1), got ${JSON.stringify(shape)}`);
  const [C, H, W] = shape as [number, number, number];
  if (C !== model.inChannels) throw new ShapeError(`exportOnnx: inputShape [${C}, ${H}, ${W}] has ${C} channel(s), ${model.name} takes ${model.inChannels}`);
  model.traceStages([1, C, H, W]); // throws a ShapeError naming the layer when the input is too small
  return [C, H, W];
}

/**
 * The model's eval-mode forward as an ONNX model (IR 8, opset 17, dynamic batch), encoded.
 * BatchNorm uses the running statistics whatever the model's mode.
 * @example
 * const bytes = exportOnnx(resnet18(), { inputShape: [3, 224, 224] });
 * const session = await ort.InferenceSession.create(bytes); // input "input", output "logits"
 */
export function exportOnnx(model: ResNet, options: ExportOnnxOptions): Uint8Array {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError("exportOnnx: options must be an object with 'inputShape' [C, H, W]");
  const opset = options.opset ?? 17;
  if (!ONNX_OPSETS.includes(opset)) throw new InvalidArgumentError(`exportOnnx: opset ${String(opset)} is not supported; valid: ${ONNX_OPSETS.join(', ')}`);
  const [C, H, W] = checkShape(model, options.inputShape);
  const g = new GraphBuilder();
  const L = new Lowering(g, new Map(model.namedModules().map(([n, m]) => [m, n])));

  let h = L.conv(model.conv1, 'input');
  if (model.bn1) h = L.bn(model.bn1, h, true);
  if (model.maxpool) {
    const o = model.maxpool.options;
    const pair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);
    const [kh, kw] = pair(o.kernelSize);
    const [sh, sw] = pair(o.stride ?? o.kernelSize);
    const [ph, pw] = pair(o.padding ?? 0);
    h = g.node('MaxPool', L.path(model.maxpool), [h], [ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('pads', [ph, pw, ph, pw])]);
  }
  for (const b of model.blocks()) h = L.block(b.name, b.block, h);
  if (model.bn) h = L.bn(model.bn, h, true);
  h = g.node('GlobalAveragePool', L.path(model.avgpool), [h]);
  h = g.node('Flatten', 'flatten', [h], [int('axis', 1)]);
  const hp = L.path(model.head);
  const gemmIn = [h, g.weight(`${hp}.weight`, model.head.weight)];
  if (model.head.bias) gemmIn.push(g.weight(`${hp}.bias`, model.head.bias));
  g.node('Gemm', hp, gemmIn, [float('alpha', 1), float('beta', 1), int('transB', 1)], 'logits');

  const dims = (d: (number | string)[]) => ({ dim: d.map((v) => (typeof v === 'string' ? { dim_param: v } : { dim_value: v })) });
  const value = (name: string, shape: (number | string)[]) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: dims(shape) } } });
  const M = onnxType('ModelProto');
  const msg = M.fromObject({
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: opset }],
    producer_name: 'resnet-ts',
    producer_version: VERSION,
    doc_string: `${model.name} (eval mode) exported by resnet-ts ${VERSION}`,
    graph: {
      name: options.graphName ?? model.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [value('input', ['batch', C, H, W])],
      output: [value('logits', ['batch', model.numClasses])],
    },
    metadata_props: [{ key: 'arch', value: model.name }, { key: 'input_shape', value: `[batch, ${C}, ${H}, ${W}]` }],
  });
  return M.encode(msg).finish();
}

/** An ONNX model decoded as a plain object (int64 values as numbers, bytes as Uint8Array),
 *  for inspection and tests. Any decoding failure is a CheckpointError naming `file`.
 * @example const onnx = decodeOnnx(exportOnnx(model, { inputShape: [3, 32, 32] }));  // a plain object: ir_version, graph, ...
 */
export function decodeOnnx(bytes: Uint8Array, file = '<buffer>'): Record<string, unknown> {
  const M = onnxType('ModelProto');
  try {
    return M.toObject(M.decode(bytes), { longs: Number, defaults: false, arrays: true }) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${file}: not a valid ONNX model (${(e as Error).message})`);
  }
}
