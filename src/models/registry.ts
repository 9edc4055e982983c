// The registry: every named network and its builder. ImageNet archs match torchvision's
// (models/resnet.py: layer counts, groups, width_per_group); CIFAR archs are the paper's
// 6n+2 nets of section 4.2 (n = 3, 5, 7, 9, 18, 200) and the pre-activation 9n+2 bottleneck
// nets of He et al. 2016 (164, 1001). Plain twins share every layer but the shortcuts.

import type { Backend } from '../backend/backend.js';
import { InvalidArgumentError } from '../errors.js';
import type { BlockKind } from './blocks.js';
import { ResNet, type Family, type ResNetConfig } from './resnet.js';
import type { ShortcutOption } from './shortcut.js';

/**
 * What a user may set on a registered arch.
 * @example const o: ModelOptions = { inChannels: 1, numClasses: 10, shortcut: 'A', seed: 0 };
 */
export interface ModelOptions {
  /** Input channels (3; 1 for grey images). */
  inChannels?: number;
  /** Classes of the classifier (1000 for the ImageNet family, 10 for CIFAR). */
  numClasses?: number;
  /** Shortcut option A, B or C (default: B for ImageNet and CIFAR bottleneck nets, A for CIFAR basic nets). */
  shortcut?: ShortcutOption;
  /** Multiplies every stage's planes (Wide ResNet's k). */
  width?: number;
  /** Bottleneck 3x3 groups (fixed by resnext archs). */
  groups?: number;
  /** torchvision's width_per_group (fixed by resnext / wide archs). */
  widthPerGroup?: number;
  /** Zero the last BN gamma of each block. */
  zeroInitResidual?: boolean;
  /** Seed of the He initialisation. */
  seed?: number;
  /** 'he' (default) or 'none' (zero weights: a fast build before loading weights). */
  init?: 'he' | 'none';
  backend?: Backend;
}

const OPTION_KEYS: readonly (keyof ModelOptions)[] = [
  'inChannels', 'numClasses', 'shortcut', 'width', 'groups', 'widthPerGroup', 'zeroInitResidual', 'seed', 'init', 'backend',
];

/** @example const { family, depth, input }: ArchInfo = archInfo('resnet56');  // 'cifar', 56, [32, 32] */
export interface ArchInfo {
  name: string;
  family: Family;
  block: BlockKind;
  layers: readonly number[];
  /** Weighted layers counted as the paper does (convs + fc). */
  depth: number;
  preact: boolean;
  plain: boolean;
  /** Default shortcut option ('none' for plain nets). */
  shortcut: ShortcutOption | 'none';
  groups: number;
  widthPerGroup: number;
  /** The usual input (224x224 or 32x32) for summaries. */
  input: [number, number];
  description: string;
}

const IMAGENET_LAYERS: Record<number, { block: BlockKind; layers: number[] }> = {
  18: { block: 'basic', layers: [2, 2, 2, 2] },
  34: { block: 'basic', layers: [3, 4, 6, 3] },
  50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
  200: { block: 'bottleneck', layers: [3, 24, 36, 3] },
};

const registry = new Map<string, ArchInfo>();

function add(info: Omit<ArchInfo, 'groups' | 'widthPerGroup' | 'input'> & Partial<Pick<ArchInfo, 'groups' | 'widthPerGroup'>>): void {
  registry.set(info.name, {
    ...info,
    groups: info.groups ?? 1,
    widthPerGroup: info.widthPerGroup ?? 64,
    input: info.family === 'imagenet' ? [224, 224] : [32, 32],
  });
}

function imagenet(name: string, depth: number, extra: { preact?: boolean; plain?: boolean; groups?: number; widthPerGroup?: number; description: string }): void {
  const { block, layers } = IMAGENET_LAYERS[depth];
  add({ name, family: 'imagenet', block, layers, depth, preact: extra.preact ?? false, plain: extra.plain ?? false,
    shortcut: extra.plain ? 'none' : 'B', groups: extra.groups, widthPerGroup: extra.widthPerGroup, description: extra.description });
}

function cifar(name: string, depth: number, extra: { preact?: boolean; plain?: boolean; block?: BlockKind; description: string }): void {
  const block = extra.block ?? 'basic';
  const n = block === 'basic' ? (depth - 2) / 6 : (depth - 2) / 9;
  add({ name, family: 'cifar', block, layers: [n, n, n], depth, preact: extra.preact ?? false, plain: extra.plain ?? false,
    shortcut: extra.plain ? 'none' : block === 'basic' ? 'A' : 'B', description: extra.description });
}

for (const d of [18, 34, 50, 101, 152]) imagenet(`resnet${d}`, d, { description: `ResNet-${d} (He et al. 2015, Table 1; torchvision)` });
imagenet('wide_resnet50_2', 50, { widthPerGroup: 128, description: 'Wide ResNet-50-2 (Zagoruyko & Komodakis 2016; torchvision): bottleneck 3x3s twice as wide' });
imagenet('wide_resnet101_2', 101, { widthPerGroup: 128, description: 'Wide ResNet-101-2 (torchvision)' });
imagenet('resnext50_32x4d', 50, { groups: 32, widthPerGroup: 4, description: 'ResNeXt-50 32x4d (Xie et al. 2017; torchvision): grouped 3x3, cardinality 32' });
imagenet('resnext101_32x8d', 101, { groups: 32, widthPerGroup: 8, description: 'ResNeXt-101 32x8d (torchvision)' });
imagenet('resnext101_64x4d', 101, { groups: 64, widthPerGroup: 4, description: 'ResNeXt-101 64x4d (torchvision)' });
for (const d of [18, 34, 50, 101, 152, 200]) imagenet(`preact_resnet${d}`, d, { preact: true, description: `Pre-activation ResNet-${d} (He et al. 2016), ImageNet layout` });
for (const d of [18, 34, 50, 101, 152]) imagenet(`plain${d}`, d, { plain: true, description: `Plain-${d}: resnet${d} without shortcuts (He et al. 2015, Fig. 3 middle)` });

for (const d of [20, 32, 44, 56, 110, 1202]) cifar(`resnet${d}`, d, { description: `ResNet-${d} for CIFAR (He et al. 2015, section 4.2, 6n+2 with n=${(d - 2) / 6}), option A` });
for (const d of [164, 1001]) cifar(`resnet${d}`, d, { block: 'bottleneck', description: `ResNet-${d} for CIFAR, bottleneck 9n+2 (He et al. 2016, Table 2, original units)` });
for (const d of [20, 32, 44, 56, 110, 1202]) cifar(`preact_resnet${d}`, d, { preact: true, description: `Pre-activation ResNet-${d} for CIFAR (He et al. 2016)` });
for (const d of [164, 1001]) cifar(`preact_resnet${d}`, d, { preact: true, block: 'bottleneck', description: `Pre-activation ResNet-${d} for CIFAR (He et al. 2016, Table 2)` });
for (const d of [20, 32, 44, 56, 110, 1202]) cifar(`plain${d}`, d, { plain: true, description: `Plain-${d} for CIFAR: resnet${d} without shortcuts (He et al. 2015, Fig. 6 left)` });

/**
 * Every registered arch name, in registry order.
 * @example modelNames().includes('resnet20')  // true
 */
export function modelNames(): string[] {
  return [...registry.keys()];
}

/**
 * Every registered arch with its definition.
 * @example for (const a of listModels()) console.log(a.name, a.depth, a.description);
 */
export function listModels(): ArchInfo[] {
  return [...registry.values()].map((a) => ({ ...a, layers: [...a.layers], input: [...a.input] as [number, number] }));
}

function closest(name: string): string | null {
  const names = modelNames();
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0];
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const t = d[j];
        d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = t;
      }
    }
    return d[b.length];
  };
  let best: string | null = null;
  let bestD = 3;
  for (const n of names) {
    const dd = dist(name.toLowerCase(), n);
    if (dd < bestD) { bestD = dd; best = n; }
  }
  return best;
}

/**
 * The registered definition of `arch`; throws listing the valid names.
 * @example archInfo('resnet50').block  // 'bottleneck'
 */
export function archInfo(arch: string): ArchInfo {
  const a = registry.get(arch);
  if (!a) {
    const hint = typeof arch === 'string' ? closest(arch) : null;
    throw new InvalidArgumentError(`unknown arch '${String(arch)}'${hint ? ` (did you mean '${hint}'?)` : ''}; valid: ${modelNames().join(', ')}`);
  }
  return a;
}

/**
 * The ResNet config of a registered arch with the user's options applied and checked.
 * @example const config = archConfig('resnet20', { numClasses: 100 });  // the ResNetConfig createModel builds
 */
export function archConfig(arch: string, opts: ModelOptions = {}): ResNetConfig {
  const a = archInfo(arch);
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError(`${arch}: options must be an object`);
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.includes(k as keyof ModelOptions)) {
      throw new InvalidArgumentError(`${arch}: unknown option '${k}'; valid: ${OPTION_KEYS.join(', ')}`);
    }
  }
  if (opts.shortcut !== undefined) {
    if (a.plain) throw new InvalidArgumentError(`${arch}: a plain net has no shortcuts, so the 'shortcut' option does not apply (use its residual twin ${arch.replace('plain', 'resnet')})`);
    if (!['A', 'B', 'C'].includes(opts.shortcut)) throw new InvalidArgumentError(`${arch}: unknown shortcut option '${String(opts.shortcut)}'; valid: A, B, C`);
  }
  // As torchvision's _ovewrite_named_param: an arch that fixes groups / width_per_group refuses another value.
  for (const k of ['groups', 'widthPerGroup'] as const) {
    const fixed = a[k];
    if (opts[k] !== undefined && (a.groups !== 1 || a.widthPerGroup !== 64) && opts[k] !== fixed) {
      throw new InvalidArgumentError(`${arch}: fixes ${k}=${fixed}, got ${k}=${String(opts[k])} (build a ResNet from a config for other values)`);
    }
  }
  return {
    name: arch,
    family: a.family,
    block: a.block,
    layers: a.layers,
    preact: a.preact,
    shortcut: a.plain ? 'none' : opts.shortcut ?? a.shortcut,
    inChannels: opts.inChannels,
    numClasses: opts.numClasses,
    groups: opts.groups ?? a.groups,
    widthPerGroup: opts.widthPerGroup ?? a.widthPerGroup,
    width: opts.width,
    zeroInitResidual: opts.zeroInitResidual,
    seed: opts.seed,
    init: opts.init,
    backend: opts.backend,
  };
}

/**
 * Builds a registered arch.
 * @example const net = createModel('resnet20', { inChannels: 1, numClasses: 10 });
 */
export function createModel(arch: string, opts: ModelOptions = {}): ResNet {
  return new ResNet(archConfig(arch, opts));
}

/**
 * Options of the depth builders.
 * @example const o: DepthOptions = { preact: true, shortcut: 'none', numClasses: 10 };
 */
export interface DepthOptions extends Omit<ModelOptions, 'shortcut'> {
  preact?: boolean;
  /** Shortcut option, or 'none' for the plain twin. */
  shortcut?: ShortcutOption | 'none';
}

/**
 * Any CIFAR-style net by depth: 6n+2 with basic blocks, or 9n+2 with bottlenecks.
 * @example const net = cifarResNet(1202, { shortcut: 'A' });  // the paper's 1202-layer net
 */
export function cifarResNet(depth: number, opts: DepthOptions & { block?: BlockKind } = {}): ResNet {
  const { preact, shortcut, block = 'basic', ...rest } = opts;
  const per = block === 'basic' ? 6 : 9;
  const n = (depth - 2) / per;
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`cifarResNet: depth ${depth} is not ${per}n+2 for ${block} blocks (valid: ${[1, 2, 3, 5, 9, 18].map((k) => per * k + 2).join(', ')}, ...)`);
  }
  const name = `${shortcut === 'none' ? 'plain' : preact ? 'preact_resnet' : 'resnet'}${depth}`;
  return new ResNet({ ...rest, name, family: 'cifar', block, layers: [n, n, n], preact, shortcut: shortcut ?? (block === 'basic' ? 'A' : 'B') });
}

/**
 * Any ImageNet-style net of a standard depth (18, 34, 50, 101, 152, 200).
 * @example const net = imagenetResNet(26, { numClasses: 100 });  // any depth of the ImageNet family
 */
export function imagenetResNet(depth: number, opts: DepthOptions = {}): ResNet {
  const def = IMAGENET_LAYERS[depth];
  if (!def) throw new InvalidArgumentError(`imagenetResNet: no standard layout for depth ${depth}; valid: ${Object.keys(IMAGENET_LAYERS).join(', ')}`);
  const { preact, shortcut, ...rest } = opts;
  const name = `${shortcut === 'none' ? 'plain' : preact ? 'preact_resnet' : 'resnet'}${depth}`;
  return new ResNet({ ...rest, name, family: 'imagenet', block: def.block, layers: def.layers, preact, shortcut: shortcut ?? 'B' });
}

// One-line builders, torchvision style.
/** @example const net = resnet18({ numClasses: 10 }); */
export const resnet18 = (o?: ModelOptions) => createModel('resnet18', o);
/** @example const net = resnet34(); */
export const resnet34 = (o?: ModelOptions) => createModel('resnet34', o);
/** @example const net = resnet50({ numClasses: 1000 }); */
export const resnet50 = (o?: ModelOptions) => createModel('resnet50', o);
/** @example const net = resnet101(); */
export const resnet101 = (o?: ModelOptions) => createModel('resnet101', o);
/** @example const net = resnet152(); */
export const resnet152 = (o?: ModelOptions) => createModel('resnet152', o);
/** @example const net = wideResnet50_2(); */
export const wideResnet50_2 = (o?: ModelOptions) => createModel('wide_resnet50_2', o);
/** @example const net = wideResnet101_2(); */
export const wideResnet101_2 = (o?: ModelOptions) => createModel('wide_resnet101_2', o);
/** @example const net = resnext50_32x4d(); */
export const resnext50_32x4d = (o?: ModelOptions) => createModel('resnext50_32x4d', o);
/** @example const net = resnext101_32x8d(); */
export const resnext101_32x8d = (o?: ModelOptions) => createModel('resnext101_32x8d', o);
/** @example const net = resnext101_64x4d(); */
export const resnext101_64x4d = (o?: ModelOptions) => createModel('resnext101_64x4d', o);
/** @example const net = resnet20({ inChannels: 1, numClasses: 10 });  // Fashion-MNIST */
export const resnet20 = (o?: ModelOptions) => createModel('resnet20', o);
/** @example const net = resnet32(); */
export const resnet32 = (o?: ModelOptions) => createModel('resnet32', o);
/** @example const net = resnet44(); */
export const resnet44 = (o?: ModelOptions) => createModel('resnet44', o);
/** @example const net = resnet56({ numClasses: 100 }); */
export const resnet56 = (o?: ModelOptions) => createModel('resnet56', o);
/** @example const net = resnet110(); */
export const resnet110 = (o?: ModelOptions) => createModel('resnet110', o);
/** @example const net = resnet1202(); */
export const resnet1202 = (o?: ModelOptions) => createModel('resnet1202', o);
/** @example const net = preactResnet18(); */
export const preactResnet18 = (o?: ModelOptions) => createModel('preact_resnet18', o);
/** @example const net = preactResnet110(); */
export const preactResnet110 = (o?: ModelOptions) => createModel('preact_resnet110', o);
/** @example const net = preactResnet164(); */
export const preactResnet164 = (o?: ModelOptions) => createModel('preact_resnet164', o);
/** @example const net = plain18();  // resnet18 without shortcuts */
export const plain18 = (o?: ModelOptions) => createModel('plain18', o);
/** @example const net = plain34(); */
export const plain34 = (o?: ModelOptions) => createModel('plain34', o);
/** @example const net = plain20();  // the paper's plain 20-layer CIFAR net */
export const plain20 = (o?: ModelOptions) => createModel('plain20', o);
/** @example const net = plain56(); */
export const plain56 = (o?: ModelOptions) => createModel('plain56', o);
/** @example const net = plain110(); */
export const plain110 = (o?: ModelOptions) => createModel('plain110', o);
