// The models layer: the ResNet family, its blocks and shortcuts, the registry, summaries.

export {
  Block, BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, PlainBasicBlock, PlainBottleneck, blockClass,
  type BlockOptions, type BlockKind, type BlockForwardOptions,
} from './blocks.js';
export { ShortcutA, makeShortcut, SHORTCUT_OPTIONS, type ShortcutOption, type ShortcutSpec } from './shortcut.js';
export {
  ResNet, type ResNetConfig, type Family, type BlockRef, type ForwardOptions, type FeatureMap, type Features, type NamedBlock,
} from './resnet.js';
export {
  createModel, archConfig, archInfo, listModels, modelNames, cifarResNet, imagenetResNet,
  resnet18, resnet34, resnet50, resnet101, resnet152, wideResnet50_2, wideResnet101_2,
  resnext50_32x4d, resnext101_32x8d, resnext101_64x4d,
  resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202,
  preactResnet18, preactResnet110, preactResnet164, plain18, plain34, plain20, plain56, plain110,
  type ModelOptions, type ArchInfo, type DepthOptions,
} from './registry.js';
export { summarize, summarizeArch, formatSummary, type ModelSummary, type StageSummary, type SummaryOptions } from './summary.js';
export { FusedResNet, fuseForInference, type FuseOptions } from './fused.js';
