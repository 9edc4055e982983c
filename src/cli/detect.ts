// `resnet detect`: the detection command group (issue 16): `synth` (here), `train`
// (detect_train.ts), `predict` (detect_predict.ts) and `eval` (detect_eval.ts). Commands parse and print; the work is in src/detect/.

import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import { writeSynthDataset, type SynthResult } from '../detect/data/synth.js';
import { DETECTION_ARCHS } from '../detect/models.js';
import { detectEval, type DetectEvalFlags } from './detect_eval.js';
import { intFlag } from './flags.js';
import { PRECISION_HELP } from './precision.js';
import { detectPredict, type DetectPredictFlags } from './detect_predict.js';
import { detectTrainCommand, type DetectTrainFlags } from './detect_train.js';

export interface SynthFlags {
  out: string; images: string; seed?: string; size?: string; split?: string; maxObjects?: string; force?: boolean; data?: string; json?: boolean;
}

/** `resnet detect synth`: writes the scenes, then one line (or JSON) saying what was written. */
export async function synthCommand(flags: SynthFlags): Promise<SynthResult> {
  const split = flags.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new InvalidArgumentError(`--split must be train or test, got '${split}'`);
  const r = await writeSynthDataset({
    out: flags.out,
    images: intFlag(flags.images, 'images', 1)!,
    seed: intFlag(flags.seed, 'seed', 0),
    size: intFlag(flags.size, 'size', 32),
    maxObjects: intFlag(flags.maxObjects, 'max-objects', 1),
    split,
    force: flags.force === true,
    data: flags.data,
  });
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ out: r.out, images: r.images, annotations: r.annotations, seconds: Number(r.seconds.toFixed(2)) })}\n`);
  } else {
    process.stdout.write(`wrote ${r.images} scenes with ${r.annotations} objects to ${r.out} (images/*.png, instances.json) in ${r.seconds.toFixed(1)} s\n`);
  }
  return r;
}

/**
 * The `resnet detect` command group, for `program.addCommand(detectCommand)`.
 * @example program.addCommand(detectCommand);  // resnet detect synth --out DIR --images N
 */
export const detectCommand = new Command('detect')
  .description('object detection with ResNet backbones (Faster R-CNN, torchvision-compatible): synthetic data, train, predict, eval');

detectCommand
  .command('synth')
  .description('write a COCO-format detection dataset of scenes made of Fashion-MNIST items (10 classes) on textured backgrounds: DIR/images/*.png and DIR/instances.json')
  .requiredOption('--out <dir>', 'the folder to create (must be new or empty unless --force)')
  .requiredOption('--images <n>', 'number of scenes')
  .option('--seed <s>', 'seed: the same seed writes byte-identical files, another seed other scenes', '0')
  .option('--size <px>', 'side of the square scenes in pixels', '320')
  .option('--split <split>', "Fashion-MNIST items to use: train | test (held-out scenes never show a training item)", 'train')
  .option('--max-objects <n>', 'at most N objects a scene (1..N drawn)', '6')
  .option('--data <dir>', 'Fashion-MNIST IDX folder (default /usr/share/datasets/fashion-mnist)')
  .option('--force', 'replace an earlier synth output in --out (only a folder holding images/ and instances.json)')
  .option('--json', 'print {"out","images","annotations","seconds"}')
  .action(async (opts: SynthFlags) => { await synthCommand(opts); });

detectCommand
  .command('train')
  .description("train a Faster R-CNN on a COCO folder with torchvision's recipe scaled to the batch (SGD 0.02 per 16 images, momentum 0.9, wd 1e-4, warm-up, lr / 10 at 16/26 and 22/26 of the epochs, flips); COCO AP on --val-data after each epoch; checkpoints, metrics.jsonl, losses.png and ap.png in --out")
  .requiredOption('--data <dir>', 'training COCO folder (instances.json + images/), e.g. resnet detect synth --split train')
  .requiredOption('--val-data <dir>', 'held-out COCO folder scored after each epoch, e.g. resnet detect synth --split test')
  .option('--arch <name>', `detection arch: ${DETECTION_ARCHS.join(', ')}`, 'fasterrcnn_resnet18_fpn')
  .option('--weights <file>', 'start from a classification checkpoint (the backbone: resnet train, torchvision) or a detection checkpoint of the same classes; default: from scratch')
  .option('--pretrained-backbone', "start the backbone from torchvision's ImageNet weights of its ResNet (downloaded once, sha256-checked)")
  .option('--epochs <n>', 'epochs', '12')
  .option('--batch <n>', 'images per step', '2')
  .option('--lr <lr>', 'learning rate (default 0.02 x batch / 16)')
  .option('--momentum <m>', 'SGD momentum', '0.9')
  .option('--weight-decay <wd>', 'weight decay', '1e-4')
  .option('--warmup <epochs>', 'linear warm-up from 0.1 x lr (default min(1, epochs / 10))')
  .option('--milestones <e1,e2>', 'epochs at which the lr is divided by 10 (default 16/26 and 22/26 of --epochs)')
  .option('--schedule <kind>', 'multistep (lr / 10 at --milestones, torchvision\'s reference; default) | cosine (lr to 0 over the epochs after the warm-up)')
  .option('--trainable-layers <n>', 'backbone layers trained, 0..5 of layer4..conv1 (default 3 with --weights, else 5)')
  .option('--bn <mode>', "backbone BatchNorm: frozen (running statistics and affine fixed, torchvision's FrozenBatchNorm2d) | train (batch statistics); default frozen with --weights, else train")
  .option('--min-size <px>', "resize: short side (default the arch's 800)")
  .option('--max-size <px>', "resize: cap of the long side (default the arch's 1333)")
  .option('--hflip <p>', 'horizontal flip probability', '0.5')
  .option('--fpn-channels <n>', "FPN width (torchvision's resnet_fpn_backbone out_channels; default 256): 128 makes the FPN and RPN convs 4x cheaper")
  .option('--rpn-post-nms <n>', 'RPN proposals kept per image in training (default 2000)')
  .option('--box-batch <n>', 'proposals sampled per image for the box head (default 512)')
  .option('--box-positive-fraction <f>', 'most of those that are positive (torchvision\'s box_positive_fraction; default 0.25)')
  .option('--representation-size <n>', 'the FPN box head\'s width (torchvision\'s TwoMLPHead representation_size; default 1024)')
  .option('--roi-canonical-scale <px>', 'a box of this side pools from P4, half of it from P3, ... (MultiScaleRoIAlign canonical_scale; default 224, sized for ImageNet backbones)')
  .option('--roi-output-size <n>', 'the side of a pooled region (MultiScaleRoIAlign output_size; default 7 for FPN, 14 for C4, whose layer4 halves it)')
  .option('--val-subset <n>', 'score the first N held-out images only')
  .option('--precision <p>', PRECISION_HELP)
  .option('--seed <s>', 'seed of the init, the data order, flips and sampling', '0')
  .option('--out <dir>', 'run directory', 'runs/detect')
  .option('--checkpoint-every <steps>', 'also save last.safetensors every N steps (0: each epoch)', '0')
  .option('--resume', 'continue the run in --out from its last checkpoint')
  .option('--force', 'overwrite an earlier run in --out')
  .option('--json', 'last stdout line: {"epochs","AP","AP50","bestAP50","seconds","images_per_sec"} (progress stays on stderr)')
  .action(async (opts: DetectTrainFlags) => { await detectTrainCommand(opts); });

detectCommand
  .command('predict')
  .description('detect objects in images with a Faster R-CNN (torchvision weights or a resnet detect train run): prints each image\'s detections, or with --json one array [{"file","detections":[{"box":[x1,y1,x2,y2],"score","label","name"}]}]')
  .argument('<images...>', 'image files or folders')
  .option('--arch <name>', `detection arch: ${DETECTION_ARCHS.join(', ')} (default fasterrcnn_resnet50_fpn)`)
  .requiredOption('--weights <file>', "a torchvision detection checkpoint (.pth or .safetensors; with --arch) or a 'resnet detect train' run (its folder or a checkpoint)")
  .option('--score <p>', 'keep detections scoring at least this (0..1; the model\'s own 0.05 applies before NMS)')
  .addOption(new Option('--score-thresh <p>', 'the same as --score (torchvision\'s box_score_thresh)').hideHelp())
  .option('--bn-eps <eps>', 'backbone BatchNorm eps (default: 0 for torchvision\'s v1 COCO files, else 1e-5)')
  .option('--json', 'print one JSON array [{"file","detections":[{"box":[x1,y1,x2,y2],"score","label","name"}]}] (boxes in the image\'s pixels)')
  .option('--out <dir>', 'also write each image with its boxes and labels drawn (DIR/NAME.png) and DIR/index.html')
  .option('--precision <p>', PRECISION_HELP)
  .action(async (images: string[], opts: DetectPredictFlags) => { await detectPredict(images, opts); });

detectCommand
  .command('eval')
  .description('run a detector over a COCO folder (instances.json + images/) and print the 12 COCO box numbers as pycocotools does')
  .requiredOption('--data <dir>', 'a folder holding instances.json and images/ (e.g. from `resnet detect synth`), or the annotation file')
  .option('--arch <name>', `detection arch: ${DETECTION_ARCHS.join(', ')} (default fasterrcnn_resnet50_fpn)`)
  .requiredOption('--weights <file>', "a torchvision detection checkpoint (.pth or .safetensors; with --arch) or a 'resnet detect train' run (its folder or a checkpoint)")
  .option('--bn-eps <eps>', 'backbone BatchNorm eps (default: as the weights say)')
  .option('--limit <n>', 'evaluate the first N images only')
  .option('--precision <p>', PRECISION_HELP)
  .option('--json', 'print {"AP","AP50","AP75","APs","APm","APl","AR1","AR10","AR100","ARs","ARm","ARl"} (fractions; -1 where undefined)')
  .action(async (opts: DetectEvalFlags) => { await detectEval(opts); });
