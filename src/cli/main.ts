#!/usr/bin/env node
// The `resnet` command line. Commands parse and print; the work is in the library.

import { Command } from 'commander';
import { benchCommand, type BenchFlags } from './bench.js';
import { infoCommand } from './info.js';
import { listCommand, summaryCommand, type SummaryFlags } from './models.js';
import { evalCommand, trainCommand, type EvalFlags, type TrainFlags } from './train.js';
import { reportCommand, studyCommand, type ReportFlags, type StudyFlags } from './study.js';
import { exportCommand, type ExportFlags } from './export.js';
import { collectKeyMap, convertCommand, type ConvertFlags } from './convert.js';
import { addRecipeOptions } from './recipe.js';
import { PRECISION_HELP } from './precision.js';
import { VERSION } from '../version.js';
import { failAndExit, installLastResort } from './last_resort.js';
import { featuresCommand, predictCommand, collect, type FeaturesFlags, type PredictFlags } from './predict.js';
import type { ServeFlags } from './serve.js';
import { detectCommand } from './detect.js';

const program = new Command();
program
  .name('resnet')
  .description('Deep residual networks from TypeScript: build, train, evaluate and study ResNets')
  .version(VERSION);

program
  .command('info')
  .description('print the version, the backend in use, oneDNN version, threads and the ISA oneDNN dispatches to')
  .option('--json', 'print one JSON object')
  .action((opts: { json?: boolean }) => infoCommand(opts));

program
  .command('list')
  .description('list every network of the registry (ImageNet and CIFAR families, pre-activation and plain twins)')
  .option('--json', 'print one JSON array')
  .action((opts: { json?: boolean }) => listCommand(opts));

program
  .command('summary')
  .description("parameters, multiply-adds and each stage's output shape of a network, as the paper's Table 1")
  .argument('<arch>', 'a registered arch (see `resnet list`)')
  .option('--classes <n>', 'classes of the classifier')
  .option('--in-channels <c>', 'input channels')
  .option('--input <HxW>', 'input size (default 224x224, or 32x32 for CIFAR nets)')
  .option('--shortcut <A|B|C>', 'shortcut option')
  .option('--json', 'print one JSON object {"arch","params","macs","stages":[{"name","shape"}]}')
  .action((arch: string, opts: SummaryFlags) => summaryCommand(arch, opts));

addRecipeOptions(program
  .command('train')
  .description('train a network (default: resnet20 on Fashion-MNIST, under 10 minutes on 2 cores); checkpoints, metrics.jsonl and --resume in --out')
  .option('--arch <name>', 'a registered arch (see `resnet list`; default resnet20, or the arch --weights names)')
  .option('--dataset <name>', 'fashion-mnist | mnist | cifar10 | cifar100 | folder', 'fashion-mnist')
  .option('--data <dir>', 'dataset directory (Fashion-MNIST defaults to /usr/share/datasets/fashion-mnist)')
  .option('--epochs <n>', 'epochs'))
  .option('--subset <n>', 'train on the first N images')
  .option('--test-subset <n>', 'evaluate on the first N test images')
  .option('--out <dir>', 'run directory', 'runs/default')
  .option('--resume', 'continue the run in --out from its last good checkpoint')
  .option('--force', 'overwrite an earlier run in --out')
  .option('--seed <n>', 'seed of init, data order and augmentation')
  .option('--checkpoint-every <steps>', 'also save last.safetensors every N steps')
  .option('--json', 'last stdout line: {"epochs","top1","top5","seconds","images_per_sec"}')
  .option('--weights <file>', 'fine-tune: start from a .pth/.safetensors state dict, a resnet train checkpoint or run directory (its best); the classifier is re-created for the new classes')
  .option('--key-map <FROM=TO>', 'rename a key prefix of --weights before loading, e.g. module.= (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--mapping <names>', 'whose key names --weights uses: auto | torchvision | timm | hf')
  .option('--pretrained', "fine-tune torchvision's ImageNet weights for --arch (downloaded once, sha256-checked)")
  .option('--pretrained-tag <tag>', 'DEFAULT, IMAGENET1K_V1 or IMAGENET1K_V2')
  .option('--freeze <upto>', 'keep the weights and BN statistics of everything up to and including: stem | layer1 | layer2 | layer3 | layer4')
  .option('--freeze-backbone', 'train only the classifier')
  .option('--bn <mode>', 'train (batch statistics) | frozen (running statistics used and kept, affine fixed)')
  .option('--lr-backbone <x>', 'learning rate of everything but the classifier (default --lr)')
  .option('--in-channels <c>', 'input channels of the net, 1 or 3 (default: the weights\', else the data\'s; images are converted)')
  .option('--input <HxW>', 'image-folder input size (default: the weights\' input, else 224x224)')
  .option('--preset <kind>', 'how image folders are fitted to the input: imagenet (RandomResizedCrop; resize + centre crop) | whole (whole image resized to fit, then --aug); default: what the weights were trained with, else imagenet')
  .option('--val-data <dir>', 'a validation image folder (one subfolder per class) instead of 10% of --data')
  .action((opts: TrainFlags) => trainCommand(opts));

program
  .command('bench')
  .description('median time of one inference batch (BN folded, residual add and ReLU fused) or one training step (forward, cross-entropy, backward, SGD momentum 0.9, wd 1e-4) on random data')
  .requiredOption('--arch <name>', 'a registered arch (see `resnet list`)')
  .option('--batch <n>', 'batch size', '1')
  .option('--mode <mode>', 'infer | train', 'infer')
  .option('--input <HxW>', 'input size (default 224x224, or 32x32 for CIFAR nets)')
  .option('--classes <n>', 'classes of the classifier')
  .option('--in-channels <c>', 'input channels')
  .option('--runs <n>', 'timed runs (the median is reported)', '10')
  .option('--warmup <n>', 'untimed runs first', '2')
  .option('--unfused', 'infer through the plain eval forward instead of the fused path')
  .option('--precision <p>', PRECISION_HELP)
  .option('--json', 'print {"arch","batch","mode","backend","precision","ms_per_batch","images_per_sec",...}')
  .action((opts: BenchFlags) => benchCommand(opts));

program
  .command('eval')
  .description("test top-1/top-5 and loss of a checkpoint (a run directory means its best checkpoint)")
  .requiredOption('--checkpoint <path>', 'a .safetensors checkpoint or a run directory')
  .option('--data <dir>', 'dataset directory (default: the one the run trained on)')
  .option('--subset <n>', 'evaluate the first N test images')
  .option('--precision <p>', PRECISION_HELP)
  .option('--json', 'print {"top1","top5","loss","n"}')
  .action((opts: EvalFlags) => evalCommand(opts));

program
  .command('export')
  .description('write a network with its weights as ONNX (IR 8, opset 17, dynamic batch) for onnxruntime and other runtimes')
  .argument('<out>', 'the file to write, e.g. resnet18.onnx')
  .option('--arch <name>', 'a registered arch (see `resnet list`); a resnet train checkpoint brings its own')
  .option('--weights <file>', 'a .safetensors or .pth state dict (torchvision names; timm / transformers names mapped), a resnet train checkpoint or a run directory (its best)')
  .option('--random-init', 'He-initialised weights instead of --weights (benchmarks)')
  .option('--seed <n>', 'seed of --random-init (default 0)')
  .option('--classes <n>', 'classes of the classifier (default: read off the weights)')
  .option('--in-channels <c>', 'input channels (default: read off the weights)')
  .option('--input <HxW>', 'input size (default 224x224, or 32x32 for CIFAR nets, or the size a checkpoint trained on)')
  .option('--shortcut <A|B|C>', 'shortcut option the weights were trained with')
  .option('--format <fmt>', 'output format: onnx', 'onnx')
  .option('--key-map <FROM=TO>', 'rename a key prefix of --weights before loading, e.g. module.= (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
  .option('--json', 'print one JSON object {"out","format","arch","irVersion","opset","input","classes","bytes","weights","notes"}')
  .action((out: string, opts: ExportFlags) => exportCommand(out, opts));

const FORMATS_HELP = 'image formats to read, told from the first bytes: jpeg,png,webp (default); add gif, tiff, avif, heif (never SVG)';

program
  .command('predict')
  .description('top-K ImageNet (or checkpoint) classes of images, preprocessed exactly as torchvision (PIL-exact resize, centre crop, normalise)')
  .argument('<images...>', 'image files and directories (walked for jpg, jpeg, png, webp; sorted)')
  .option('--arch <name>', 'a registered arch (see `resnet list`); a resnet train checkpoint brings its own')
  .option('--weights <file>', 'a state dict with torchvision names (.pth/.pt from torch.save, or .safetensors), a resnet train checkpoint, or a run directory (its best checkpoint)')
  .option('--pretrained', "torchvision's ImageNet weights for --arch, downloaded once into $RESNET_CACHE_DIR (~/.cache/resnet-ts) and sha256-checked")
  .option('--pretrained-tag <tag>', 'which torchvision weights: DEFAULT (V2 where there is one, as torchvision), IMAGENET1K_V1, IMAGENET1K_V2')
  .option('--top <k>', 'classes to show per image', '5')
  .option('--resize <s>', 'resize the shorter side to S, long side truncated (0 keeps the size); default 256, or the weights\' own preset ' +
    '(232 for IMAGENET1K_V2), or for a resnet train checkpoint its input size (image folders: H*256/224)')
  .option('--crop <c>', 'centre crop CxC (0 = none); default 224, or a checkpoint\'s input HxW')
  .option('--batch <b>', 'images per forward pass', '16')
  .option('--classes <n>', 'classes of the classifier (default: the rows of fc.weight in the weights)')
  .option('--key-map <FROM=TO>', 'rename a key prefix before loading, e.g. module.= (repeatable)', collect)
  .option('--width <k>', "multiplier of every stage's planes, for reduced or widened nets (default 1)")
  .option('--json', 'print one JSON array [{"file","top":[{"index","label","prob"}]}] (unreadable images: {"file","error"})')
  .option('--logits', 'also print the raw logits ("logits" in JSON)')
  .option('--precision <p>', PRECISION_HELP)
  .option('--formats <list>', FORMATS_HELP)
  .action((images: string[], opts: PredictFlags) => predictCommand(images, opts));

program
  .command('features')
  .description('embeddings or feature maps of images (pooled, stem or a stage) as .npy float32 (+ FILE.npy.files.txt) or .jsonl')
  .argument('<images...>', 'image files and directories (walked for jpg, jpeg, png, webp; sorted)')
  .option('--arch <name>', 'a registered arch (see `resnet list`); a resnet train checkpoint brings its own')
  .option('--weights <file>', 'a state dict with torchvision names (.pth/.pt from torch.save, or .safetensors), a resnet train checkpoint, or a run directory (its best checkpoint)')
  .option('--pretrained', "torchvision's ImageNet weights for --arch (downloaded once, sha256-checked)")
  .option('--pretrained-tag <tag>', 'DEFAULT, IMAGENET1K_V1 or IMAGENET1K_V2')
  .option('--layer <name>', 'pool (the embedding fed to fc), stem, or stage1..stage4 (stage3 for CIFAR nets)', 'pool')
  .option('--out <file>', 'FILE.npy ([N, ...] float32, image paths in FILE.npy.files.txt, one per line) or FILE.jsonl ({"file","shape","data"} per line)')
  .option('--resize <s>', 'as for predict (default 256 or the weights\' preset; 0 keeps the size)')
  .option('--crop <c>', 'as for predict (default 224; 0 = none, then .npy needs images of one size)')
  .option('--batch <b>', 'images per forward pass', '16')
  .option('--classes <n>', 'classes of the classifier (default: the rows of fc.weight in the weights)')
  .option('--key-map <FROM=TO>', 'rename a key prefix before loading (repeatable)', collect)
  .option('--width <k>', "multiplier of every stage's planes (default 1)")
  .option('--precision <p>', PRECISION_HELP)
  .option('--json', 'print {"out","n","shape","failed"}')
  .option('--formats <list>', FORMATS_HELP)
  .action((images: string[], opts: FeaturesFlags) => featuresCommand(images, opts));

addRecipeOptions(program
  .command('study')
  .description('run one of the paper\'s experiments and write results.json, SVG/PNG plots and index.html to --out: degradation | shortcuts | lesion | paths | responses')
  .argument('<name>', 'degradation | shortcuts | lesion | paths | responses')
  .option('--data <dir>', 'dataset directory (Fashion-MNIST defaults to /usr/share/datasets/fashion-mnist)')
  .option('--epochs <n>', 'training epochs of each net the study trains'))
  .option('--subset <n>', 'train on the first N images')
  .option('--test-subset <n>', 'evaluate on the first N test images')
  .option('--seed <n>', 'seed of init, data order, augmentation and the random draws')
  .option('--seeds <s,s,...>', 'train every net once per seed (runs in DIR/runs/<net>/seed<S>); results show the mean and spread, and how many seeds support each claim')
  .option('--archs <a,b,...>', 'the nets to train (each study has its default)')
  .option('--checkpoint <paths...>', 'trained nets to study instead (lesion, paths, responses): .safetensors files or run directories; a multi-seed net directory (DIR/runs/<net>) runs once per seed')
  .option('--draws <n>', 'random draws per point (lesion: sets of deleted blocks; paths: sets of branches)')
  .requiredOption('--out <dir>', 'output directory (earlier results are kept unless --force)')
  .option('--force', 'replace earlier results in --out (and discard an interrupted run of it)')
  .option('--resume', 'continue an interrupted run of the same study and recipe (its nets resume from their checkpoints)')
  .option('--json', 'print one JSON object {"study","out","files","seconds","finding","results"}')
  .action((name: string, opts: StudyFlags) => studyCommand(name, opts));

program
  .command('report')
  .description('gather study directories into one self-contained HTML page; single-seed runs of one study that differ only in the seed become one multi-seed section')
  .argument('<dirs...>', 'study directories (each holds results.json)')
  .requiredOption('--out <file>', 'the page to write, e.g. report.html')
  .option('--json', 'print {"out","studies","seeds"} (seeds: each section\'s seeds)')
  .action((dirs: string[], opts: ReportFlags) => reportCommand(dirs, opts));

program
  .command('convert')
  .description('convert weights between formats, bit-exact: .pth/.pt/.bin (zip or legacy) or .safetensors in; .safetensors or .pth out (floats F32, integer buffers I64; float64 is narrowed to F32 and the notes say what changed)')
  .argument('<in>', 'a torch.save checkpoint (a state dict, or a dict holding one under state_dict / model / model_state_dict) or a .safetensors file')
  .argument('<out>', 'the file to write: .safetensors, or .pth / .pt / .bin (loads with torch.load(f, weights_only=True))')
  .option('--key-map <FROM=TO>', 'rename a key prefix, e.g. backbone.= or head.fc.=fc. (repeatable; first match wins)', collectKeyMap)
  .option('--mapping <names>', 'whose key names the input uses: auto | torchvision | timm | hf', 'auto')
  .option('--allow-narrowing', 'write float64 values beyond float32\'s range as ±inf instead of refusing (rounding is always allowed and reported in the notes)')
  .option('--json', 'print one JSON object {"in","out","format_in","format_out","tensors","f32","i64","bytes","notes"}')
  .action((input: string, output: string, opts: ConvertFlags) => convertCommand(input, output, opts));

program
  .command('serve')
  .description('serve classifiers and detectors over HTTP: the Open Inference Protocol (KServe v2, JSON and binary tensors), /v1 classify, embed and detect, /metrics and a page at /; dynamic batching in an engine thread')
  .option('--arch <name>', 'a registered arch or a detection arch (fasterrcnn_*; the model is named after it)')
  .option('--weights <file>', "weights for --arch (or naming their arch), a resnet train checkpoint or a run directory; for a detection arch a torchvision Faster R-CNN checkpoint, or a 'resnet detect train' run (no --arch needed)")
  .option('--pretrained', "torchvision's ImageNet weights for --arch (downloaded once, sha256-checked)")
  .option('--pretrained-tag <tag>', 'DEFAULT, IMAGENET1K_V1 or IMAGENET1K_V2')
  .option('--model <NAME=[ARCH:]WEIGHTS>', "serve WEIGHTS as NAME (repeatable); ARCH: names the arch, required for a torchvision detection file (det=fasterrcnn_resnet50_fpn:coco.pth); a 'resnet detect train' run is found a detector by itself", collect)
  .option('--width <k>', "multiplier of every stage's planes, for reduced nets (default 1)")
  .option('--host <addr>', 'address to bind (0.0.0.0 for all interfaces)', '127.0.0.1')
  .option('--port <n>', 'port (0 picks a free one; the URL is printed)', '8080')
  .option('--max-batch <n>', 'rows per batch (classifiers; a detector runs one image per forward)', '16')
  .option('--max-delay-ms <ms>', "longest wait of a batch's oldest request", '5')
  .option('--max-queue <n>', 'requests queued per model before 503 + Retry-After', '256')
  .option('--timeout-ms <ms>', 'a request still queued this long gets 503 and is dropped', '10000')
  .option('--token <t>', 'every route but health and the page needs "Authorization: Bearer T" (or set RESNET_SERVE_TOKEN)')
  .option('--cors <origin>', 'allow cross-origin requests from ORIGIN (* for any); off by default')
  .option('--precision <p>', PRECISION_HELP)
  .option('--max-body <bytes>', 'largest request body (413 above)', String(32 * 1024 * 1024))
  .option('--max-pixels <n>', 'largest image in pixels (400 above)')
  .option('--formats <list>', FORMATS_HELP)
  .option('--decode-threads <n>', 'threads decoding and preprocessing images (default: half the cores, 1 to 4)')
  .option('--threads <n>', "the engine's compute threads (default: RESNET_NUM_THREADS, else every core; with cores to spare, leave one or two for HTTP and decoding)")
  .option('--streams <n>', 'engine threads, each running its own batch on threads/streams cores: more images/s under load, slower single requests (README, Serve)', '1')
  .option('--helper-priority <p>', "normal | idle: idle runs the helper threads (V8's GC, image decoding) at Linux's SCHED_IDLE, on what the engine's compute threads leave: more images/s for tensor requests when the engine takes every core, slower decoding (README, Serve)", 'normal')
  .option('--drain-ms <ms>', 'on SIGTERM/SIGINT, how long in-flight requests may take before exiting anyway', '25000')
  .option('--bn-eps <eps>', "detectors: backbone BatchNorm eps (default: 0 for torchvision's v1 COCO files, else 1e-5)")
  .option('--min-size <px>', "detectors: resize images' short side to this (torchvision's min_size; default the model's, 800); smaller is faster")
  .option('--max-size <px>', "detectors: cap of the resized long side (torchvision's max_size; default the model's, 1333)")
  // Loaded on use: fastify and prom-client stay out of every other command's start.
  .action(async (opts: ServeFlags) => (await import('./serve.js')).serveCommand(opts));

program.addCommand(detectCommand);

installLastResort();
try {
  await program.parseAsync(process.argv);
} catch (e) {
  failAndExit(e); // `resnet: MESSAGE` exit 1, or `resnet: internal error: ...` exit 2 (last_resort.ts)
}
