// Feature Pyramid Network (Lin et al. 2017), as torchvision.ops.FeaturePyramidNetwork with
// LastLevelMaxPool (v0.14): a 1x1 lateral conv per input level (inner_blocks.i.0), a
// top-down path adding the coarser level upsampled by nearest-neighbour interpolation to
// its size, a 3x3 output conv per level (layer_blocks.i.0), and one extra level 'pool':
// max_pool2d(kernel 1, stride 2) of the coarsest output. Keys as torchvision's since 0.13
// (weights.ts maps the older `inner_blocks.i.weight`). With `norm` (the v2 detector), each
// conv has no bias and a BatchNorm2d follows it (`inner_blocks.i.1.*`), in eval mode.
// In training mode the pyramid is built in the graph; otherwise without one.

import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import { BatchNorm2d } from '../nn/batch_norm.js';
import { Conv2d } from '../nn/conv.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { constant } from '../nn/init.js';
import { noGrad } from '../tensor/autograd.js';
import { add } from '../tensor/ops/elementwise.js';
import { maxPool2d } from '../tensor/ops/pool.js';
import type { Tensor } from '../tensor/tensor.js';
import { interpolate } from './ops/interpolate.js';

/** @example const o: FpnOptions = { inChannelsList: [256, 512, 1024, 2048], outChannels: 256 }; */
export interface FpnOptions {
  inChannelsList: readonly number[];
  outChannels: number;
  /** Add the 'pool' level (LastLevelMaxPool; default true). */
  lastLevelMaxPool?: boolean;
  /** BatchNorm after each conv (torchvision's norm_layer=nn.BatchNorm2d; default false). */
  norm?: boolean;
  backend?: Backend;
}

/** One level of the pyramid.
 * @example
 * const fpn = new FeaturePyramidNetwork({ inChannelsList: [64, 128], outChannels: 32 });
 * const levels: NamedMap[] = fpn.levels([x, y]);  // '0', '1', 'pool'
 */
export interface NamedMap {
  /** '0', '1', ... then 'pool'. */
  name: string;
  tensor: Tensor;
}

/**
 * @example
 * const fpn = new FeaturePyramidNetwork({ inChannelsList: [256, 512, 1024, 2048], outChannels: 256 });
 * const levels = fpn.levels(fuseForInference(model.eval()).features(x));  // '0'..'3' and 'pool', 256 channels each
 */
export class FeaturePyramidNetwork extends Module {
  readonly innerBlocks: Sequential<Sequential>;
  readonly layerBlocks: Sequential<Sequential>;
  readonly outChannels: number;
  readonly lastLevelMaxPool: boolean;

  constructor(opts: FpnOptions) {
    super();
    const { inChannelsList, outChannels, backend } = opts;
    if (!Array.isArray(inChannelsList) || inChannelsList.length === 0) throw new InvalidArgumentError('FeaturePyramidNetwork: inChannelsList must list the channels of each input level');
    this.outChannels = outChannels;
    this.lastLevelMaxPool = opts.lastLevelMaxPool ?? true;
    const init = constant(0);  // weights are loaded (torchvision: kaiming_uniform a=1, bias 0)
    this.innerBlocks = this.registerModule('inner_blocks', new Sequential<Sequential>());
    this.layerBlocks = this.registerModule('layer_blocks', new Sequential<Sequential>());
    const norm = opts.norm ?? false;
    const block = (inC: number, k: number, padding: number): Sequential => norm
      ? new Sequential<Module>(new Conv2d(inC, outChannels, k, { padding, bias: false, init, backend }), new BatchNorm2d(outChannels, { backend }))
      : new Sequential<Module>(new Conv2d(inC, outChannels, k, { padding, init, backend }));
    for (const c of inChannelsList) {
      this.innerBlocks.append(block(c, 1, 0));
      this.layerBlocks.append(block(outChannels, 3, 1));
    }
  }

  /** The pyramid of `maps` (finest first, as the backbone's layer1..layer4). */
  override forward(maps: Tensor[] | Tensor): Tensor {
    void maps;
    throw new InvalidArgumentError('FeaturePyramidNetwork: use levels(maps), which returns every level');
  }

  levels(maps: readonly Tensor[]): NamedMap[] {
    const n = this.innerBlocks.length;
    if (maps.length !== n) throw new InvalidArgumentError(`FeaturePyramidNetwork: expected ${n} feature maps, got ${maps.length}`);
    const build = (): NamedMap[] => {
      const run = (b: Sequential, x: Tensor) => { let h = x; for (const m of b) h = m.forward(h); return h; };
      const inner = (i: number, x: Tensor) => run(this.innerBlocks.at(i), x);
      const layer = (i: number, x: Tensor) => run(this.layerBlocks.at(i), x);
      let last = inner(n - 1, maps[n - 1]);
      const results: Tensor[] = [layer(n - 1, last)];
      for (let i = n - 2; i >= 0; i--) {
        const lateral = inner(i, maps[i]);
        const topDown = interpolate(last, { size: [lateral.shape[2], lateral.shape[3]], mode: 'nearest' });
        last = add(lateral, topDown);
        results.unshift(layer(i, last));
      }
      const out = results.map((t, i) => ({ name: String(i), tensor: t }));
      if (this.lastLevelMaxPool) {
        out.push({ name: 'pool', tensor: maxPool2d(results[n - 1], { kernelSize: 1, stride: 2, padding: 0 }) });
      }
      return out;
    };
    return this.training ? build() : noGrad(build);
  }
}
