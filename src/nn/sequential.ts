// Sequential: children named "0", "1", ... applied in order (torch.nn.Sequential), so a
// torchvision `layer1.0.conv1.weight` or `downsample.1.running_mean` key comes out as is.

import type { Shape } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, ShapeTrace } from './module.js';

/**
 * @example const downsample = new Sequential<Module>(new Conv2d(64, 128, 1, { stride: 2, bias: false }), new BatchNorm2d(128));
 */
export class Sequential<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(...modules: M[]) {
    super();
    for (const m of modules) this.append(m);
  }

  append(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new InvalidArgumentError(`Sequential.at: index ${i} out of range [0, ${this.items.length})`);
    return m;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  override forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.items) h = m.forward(h);
    return h;
  }

  override traceShape(shape: Shape, trace: ShapeTrace = new ShapeTrace()): number[] {
    let s = [...shape];
    for (const m of this.items) s = m.traceShape(s, trace);
    return s;
  }
}
