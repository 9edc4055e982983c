// The ResNet family: summaries against torchvision and the paper, torchvision / CIFAR-code
// key lists in order, structure of every block kind and shortcut option, feature
// extraction, the lesion, initialisation options and the errors. Key lists, parameter counts
// and multiply-adds of torchvision's nets come from test/fixtures/resnet_keys.json
// (scripts/make_fixtures.py).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CheckpointError, InvalidArgumentError, ShapeError, flatten, noGrad, randn, Rng, tensor, tidy } from '../src/index.js';
import {
  BasicBlock, Bottleneck, PlainBasicBlock, PreActBasicBlock, PreActBottleneck, ResNet, ShortcutA, createModel, cifarResNet,
  imagenetResNet, listModels, modelNames, summarize, summarizeArch, resnet18, resnet20,
} from '../src/models/index.js';
import { describeEachBackend } from './helpers/backends.js';
import { assertClose } from './helpers/compare.js';

interface KeyFixture {
  torch: string;
  imagenet: Record<string, { keys: [string, number[]][]; params: number; macs: number }>;
  cifar: Record<string, { keys: [string, number[]][]; params: number; macs?: number }>;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/resnet_keys.json', import.meta.url), 'utf8')) as KeyFixture;

describe('summary equals torchvision and the paper', () => {
  const DESIGN: Record<string, [number, number]> = {
    resnet18: [11_689_512, 1.81], resnet34: [21_797_672, 3.66], resnet50: [25_557_032, 4.09],
    resnet101: [44_549_160, 7.80], resnet152: [60_192_808, 11.51],
  };
  for (const [arch, tv] of Object.entries(fx.imagenet)) {
    test(`${arch}: parameters and multiply-adds at 224x224 equal torchvision ${fx.torch}`, () => {
      const s = summarizeArch(arch);
      assert.equal(s.params, tv.params);
      assert.equal(s.macs, tv.macs);
      if (DESIGN[arch]) {
        assert.equal(s.params, DESIGN[arch][0]);
        assert.equal(Number((s.macs / 1e9).toFixed(2)), DESIGN[arch][1]);
      }
    });
  }

  test('resnet18 stage shapes are the paper\'s Table 1 (112, 56, 28, 14, 7)', () => {
    const s = summarizeArch('resnet18');
    assert.deepEqual(s.stages.map((st) => [st.name, st.shape]), [
      ['conv1', [64, 112, 112]], ['maxpool', [64, 56, 56]], ['layer1', [64, 56, 56]], ['layer2', [128, 28, 28]],
      ['layer3', [256, 14, 14]], ['layer4', [512, 7, 7]], ['avgpool', [512, 1, 1]], ['fc', [1000]],
    ]);
    assert.equal(s.stages.reduce((a, st) => a + st.params, 0), s.params, 'stage parameters add up');
    assert.equal(s.stages.find((st) => st.name === 'layer2')!.layers, '[3x3, 128; 3x3, 128] x 2');
    assert.equal(summarizeArch('resnet50').stages.find((st) => st.name === 'layer3')!.layers, '[1x1, 256; 3x3, 256; 1x1, 1024] x 6');
  });

  test('CIFAR nets: the paper\'s Table 6 parameter counts and the CIFAR code\'s exact counts', () => {
    const paper: Record<string, string> = { resnet20: '0.27', resnet32: '0.46', resnet44: '0.66', resnet56: '0.85', resnet110: '1.7', resnet1202: '19.4' };
    for (const [arch, m] of Object.entries(paper)) {
      const s = summarizeArch(arch);
      assert.equal(s.params, fx.cifar[arch].params, arch);
      assert.equal(s.macs, fx.cifar[arch].macs, `${arch} MACs`);
      assert.equal((s.params / 1e6).toFixed(m.split('.')[1].length), m, arch);
      assert.deepEqual(s.stages.map((st) => st.shape), [[16, 32, 32], [16, 32, 32], [32, 16, 16], [64, 8, 8], [64, 1, 1], [10]]);
    }
  });

  test('summary follows classes, input channels and input size; no forward, any size', () => {
    const s = summarizeArch('resnet50', { numClasses: 10, inChannels: 1, input: [97, 131] });
    assert.equal(s.params, 25_557_032 - 2048 * 990 - 990 - 64 * 2 * 49);
    assert.deepEqual(s.input, [1, 97, 131]);
    assert.deepEqual(s.stages.find((st) => st.name === 'layer4')!.shape, [2048, 4, 5]);
    assert.deepEqual(s.stages.at(-1)!.shape, [10]);
  });

  test('option A adds no parameters; B adds projections only where the shape changes; C everywhere', () => {
    const a = summarizeArch('resnet20', { shortcut: 'A' }).params;
    const b = summarizeArch('resnet20', { shortcut: 'B' }).params;
    const c = summarizeArch('resnet20', { shortcut: 'C' }).params;
    assert.equal(b - a, (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64));
    const proj = (cin: number, cout: number) => cin * cout + 2 * cout; // 1x1 conv + BN
    assert.equal(c - a, 3 * proj(16, 16) + proj(16, 32) + 2 * proj(32, 32) + proj(32, 64) + 2 * proj(64, 64));
    assert.equal(summarizeArch('plain20').params, a, 'the plain twin has the same parameters as option A');
    // Option A works for bottleneck ImageNet nets too (channels only grow): resnet50 loses its 2,776,576 projection parameters.
    assert.equal(summarizeArch('resnet50', { shortcut: 'A' }).params, 25_557_032 - 2_776_576);
    assert.equal(summarizeArch('resnet50', { shortcut: 'A' }).params, summarizeArch('plain50').params);
  });
});

describe('state dict keys', () => {
  for (const arch of Object.keys(fx.imagenet)) {
    test(`${arch}: keys and shapes equal torchvision's, in order`, () => {
      const m = createModel(arch, { init: 'none' });
      assert.deepEqual(m.stateDictShapes(), fx.imagenet[arch].keys);
      m.dispose();
    });
  }

  test('resnet18 and resnet50: stateDict() itself has torchvision\'s keys in order', () => {
    for (const arch of ['resnet18', 'resnet50']) {
      const m = createModel(arch, { init: 'none' });
      const sd = m.stateDict();
      assert.deepEqual(Object.keys(sd), fx.imagenet[arch].keys.map(([k]) => k));
      assert.deepEqual(Object.values(sd).map((e) => e.shape), fx.imagenet[arch].keys.map(([, s]) => s));
      assert.deepEqual(sd['bn1.num_batches_tracked'], { data: Int32Array.of(0), shape: [] });
      m.dispose();
    }
  });

  test('CIFAR nets have the CIFAR code\'s keys (conv1, bn1, layer1..3, linear; shortcut.0/.1 for option B)', () => {
    for (const arch of ['resnet20', 'resnet56', 'resnet110']) {
      const m = createModel(arch, { init: 'none' });
      assert.deepEqual(m.stateDictShapes(), fx.cifar[arch].keys);
      m.dispose();
    }
    const b = createModel('resnet20', { shortcut: 'B', init: 'none' });
    assert.deepEqual(b.stateDictShapes(), fx.cifar.resnet20_option_b.keys);
    b.dispose();
  });

  test('plain twins: the same keys minus the projections; pre-activation nets: bn1 first, a final bn', () => {
    const p = createModel('plain18', { init: 'none' });
    assert.deepEqual(p.stateDictShapes(), fx.imagenet.resnet18.keys.filter(([k]) => !k.includes('downsample')));
    p.dispose();
    const pre = createModel('preact_resnet110', { init: 'none' });
    const keys = pre.stateDictShapes().map(([k]) => k);
    assert.deepEqual(keys.slice(0, 8), ['conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'layer1.0.bn1.running_mean',
      'layer1.0.bn1.running_var', 'layer1.0.bn1.num_batches_tracked', 'layer1.0.conv1.weight', 'layer1.0.bn2.weight']);
    assert.deepEqual(keys.slice(-7), ['bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'linear.weight', 'linear.bias']);
    pre.dispose();
    const pre164 = createModel('preact_resnet164', { init: 'none' });
    assert.ok(pre164.stateDictShapes().some(([k, s]) => k === 'layer2.0.shortcut.0.weight' && s.join() === '128,64,1,1'), 'pre-activation projection: conv only');
    assert.ok(!pre164.stateDictShapes().some(([k]) => k.startsWith('layer2.0.shortcut.1')));
    pre164.dispose();
  });
});

describe('registry', () => {
  test('every arch of the issue is registered, and list describes each', () => {
    const names = modelNames();
    for (const a of ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'wide_resnet50_2', 'resnext50_32x4d',
      'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'resnet1202', 'preact_resnet18', 'preact_resnet110',
      'plain18', 'plain34', 'plain20', 'plain56', 'plain110']) assert.ok(names.includes(a), a);
    const info = listModels().find((a) => a.name === 'resnext50_32x4d')!;
    assert.deepEqual([info.family, info.block, info.groups, info.widthPerGroup, info.layers], ['imagenet', 'bottleneck', 32, 4, [3, 4, 6, 3]]);
    assert.equal(listModels().find((a) => a.name === 'resnet20')!.shortcut, 'A');
    assert.equal(listModels().find((a) => a.name === 'plain20')!.shortcut, 'none');
  });

  test('builders by depth make any other member of the family', () => {
    const m = cifarResNet(8, { numClasses: 3, init: 'none' });
    assert.deepEqual(m.layers, [1, 1, 1]);
    assert.equal(m.name, 'resnet8');
    assert.equal(cifarResNet(47, { block: 'bottleneck', preact: true, init: 'none' }).layers[0], 5);
    assert.equal(imagenetResNet(200, { preact: true, init: 'none' }).numParameters(), summarizeArch('preact_resnet200').params);
    assert.throws(() => cifarResNet(21), /depth 21 is not 6n\+2 for basic blocks/);
    assert.throws(() => imagenetResNet(19), /no standard layout for depth 19; valid: 18, 34, 50, 101, 152, 200/);
  });
});

describe('errors list what is valid', () => {
  test('unknown arch, with a suggestion and the valid names', () => {
    assert.throws(() => createModel('resnet19'), (e: Error) => e instanceof InvalidArgumentError
      && /unknown arch 'resnet19' \(did you mean 'resnet18'\?\); valid: resnet18, resnet34, .*resnet20/.test(e.message));
  });

  test('impossible options', () => {
    assert.throws(() => createModel('resnet18', { groups: 32 }), /BasicBlock only supports groups=1 and widthPerGroup=64, as torchvision/);
    assert.throws(() => createModel('resnet34', { widthPerGroup: 128 }), /BasicBlock only supports groups=1/);
    assert.throws(() => createModel('resnext50_32x4d', { groups: 8 }), /fixes groups=32, got groups=8/);
    assert.throws(() => createModel('plain34', { shortcut: 'B' }), /plain net has no shortcuts/);
    assert.throws(() => createModel('plain20', { zeroInitResidual: true }), /zeroInitResidual needs shortcuts/);
    assert.throws(() => createModel('resnet20', { shortcut: 'D' as 'A' }), /unknown shortcut option 'D'; valid: A, B, C/);
    assert.throws(() => createModel('resnet20', { numClass: 10 } as object), /unknown option 'numClass'; valid: inChannels, numClasses, shortcut/);
    assert.throws(() => createModel('resnet20', { numClasses: 0 }), /'numClasses' must be an integer >= 1, got 0/);
    assert.throws(() => createModel('resnet20', { width: 0.3 }), /width 0.3 gives stage 1 4.8 planes/);
    // Option A pads channels: it cannot shrink them (a stem wider than the first stage).
    assert.throws(() => new ResNet({ family: 'cifar', block: 'basic', layers: [1, 1, 1], width: 0.5 }), /layer1.0: .*option A pads channels and cannot reduce them \(16 -> 8\); use option B or C/);
    assert.throws(() => new BasicBlock(64, 64, { groups: 2 }), /BasicBlock only supports groups=1/);
  });

  test('wrong input shapes name the expected layout', () => {
    const m = createModel('resnet20', { inChannels: 1, init: 'none' });
    assert.throws(() => m.forward(tensor(new Float32Array(28 * 28), [1, 28, 28])), (e: Error) => e instanceof ShapeError
      && /resnet20: input must be \[N, 1, H, W\] \(N images of 1 channel\(s\), any H and W\), got \[1, 28, 28\]/.test(e.message));
    assert.throws(() => m.forward(tensor(new Float32Array(3 * 64), [1, 3, 8, 8])), /must be \[N, 1, H, W\].*got \[1, 3, 8, 8\]/);
    assert.throws(() => summarizeArch('resnet18', { input: [0, 5] as [number, number] }), /input must be two integers >= 1/);
    m.dispose();
  });

  test('dropping an unknown or impossible block', () => {
    const m = createModel('resnet20', { init: 'none' });
    const x = tensor(new Float32Array(2 * 3 * 8 * 8), [2, 3, 8, 8]);
    assert.throws(() => m.forward(x, { dropBlocks: ['layer4.0'] }), /no block "layer4.0" to drop; valid: indices 0..8 or names layer1.0, layer1.1, layer1.2, layer2.0/);
    assert.throws(() => m.forward(x, { dropBlocks: [9] }), /no block 9 to drop/);
    const p = createModel('plain20', { init: 'none' });
    assert.throws(() => p.forward(x, { dropBlocks: ['layer2.0'] }), /block layer2.0 is plain and changes the shape \(16 -> 32 channels, stride 2\)/);
    x.dispose(); m.dispose(); p.dispose();
  });
});

describe('initialisation', () => {
  test('He normal (fan_out) convs, BN gamma 1 / beta 0, seeded and reproducible', () => {
    const a = resnet18({ seed: 7 });
    const w = a.getSubmodule('layer3.0.conv2') as BasicBlock['conv2'];
    const v = w.weight.toFloat32Array();
    const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
    assert.ok(Math.abs(std - Math.sqrt(2 / (256 * 9))) < 0.01 * Math.sqrt(2 / (256 * 9)) * 10, `std ${std}`);
    const sdA = a.stateDict();
    assert.deepEqual(sdA['layer1.0.bn1.weight'].data, new Float32Array(64).fill(1));
    assert.deepEqual(sdA['layer1.0.bn1.bias'].data, new Float32Array(64));
    const b = resnet18({ seed: 7 });
    assert.deepEqual(b.stateDict()['fc.weight'].data, sdA['fc.weight'].data);
    const c = resnet18({ seed: 8 });
    assert.notDeepEqual(c.stateDict()['conv1.weight'].data, sdA['conv1.weight'].data);
    for (const m of [a, b, c]) m.dispose();
  });

  test('zeroInitResidual zeroes the last BN gamma of every block (bn2 / bn3)', () => {
    const m = createModel('resnet50', { zeroInitResidual: true, init: 'none' });
    const sd = m.stateDict();
    for (const [k, e] of Object.entries(sd)) {
      if (/^layer\d\.\d+\.bn3\.weight$/.test(k)) assert.ok(e.data.every((x) => x === 0), k);
      if (/^layer\d\.\d+\.bn[12]\.weight$/.test(k)) assert.ok(e.data.every((x) => x === 1), k);
    }
    m.dispose();
    const r = createModel('resnet20', { zeroInitResidual: true, init: 'none' });
    assert.ok(r.stateDict()['layer2.1.bn2.weight'].data.every((x) => x === 0));
    r.dispose();
  });
});

describe('command line: resnet list and resnet summary', () => {
  const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;
  const cli = (...args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', stdio: 'pipe' });

  test('summary --json is {"arch","params","macs","stages":[{"name","shape"}]} and honours the options', () => {
    const s = JSON.parse(cli('summary', 'resnet50', '--classes', '10', '--in-channels', '1', '--input', '64x96', '--json'));
    assert.deepEqual(Object.keys(s), ['arch', 'params', 'macs', 'stages']);
    assert.deepEqual(Object.keys(s.stages[0]), ['name', 'shape']);
    const expected = summarizeArch('resnet50', { numClasses: 10, inChannels: 1, input: [64, 96] });
    assert.deepEqual(s, { arch: 'resnet50', params: expected.params, macs: expected.macs, stages: expected.stages.map((st) => ({ name: st.name, shape: st.shape })) });
    assert.deepEqual(s.stages.find((st: { name: string }) => st.name === 'layer4').shape, [2048, 2, 3]);
    const text = cli('summary', 'resnet18');
    assert.match(text, /^layer2\s+128x28x28\s+\[3x3, 128; 3x3, 128\] x 2\s+525,568/m);
    assert.match(text, /^params\s+11,689,512 \(11\.69M\)$/m);
    assert.match(text, /^MACs\s+1,814,073,344 \(1\.81G\)$/m);
  });

  test('list --json names every arch; errors exit 1 with the valid choices', () => {
    const list = JSON.parse(cli('list', '--json')) as { name: string }[];
    assert.deepEqual(list.map((a) => a.name), modelNames());
    assert.throws(() => cli('summary', 'resnet19'), (e: { status?: number; stderr?: string }) => e.status === 1
      && /^resnet: unknown arch 'resnet19' \(did you mean 'resnet18'\?\); valid: resnet18, /.test(String(e.stderr)));
    assert.throws(() => cli('summary', 'resnet18', '--input', '224x'), (e: { stderr?: string }) => /--input must be HxW \(e\.g\. 224x224\) or one size, got '224x'/.test(String(e.stderr)));
    assert.throws(() => cli('summary', 'resnet18', '--classes', 'ten'), (e: { stderr?: string }) => /--classes must be an integer >= 1, got 'ten'/.test(String(e.stderr)));
  });
});

describeEachBackend('models forward', (backend, name) => {
  test('option A is x[:, :, ::2, ::2] with planes//4 zero channels before and after (the CIFAR code), exactly', () => {
    const rng = new Rng(3);
    const x = randn([2, 16, 5, 7], rng, { backend });
    const sc = new ShortcutA(16, 32, 2, backend);
    const y = sc.forward(x).toFloat32Array();
    const xv = x.toFloat32Array();
    const expected = new Float32Array(2 * 32 * 3 * 4);
    for (let n = 0; n < 2; n++) for (let c = 0; c < 16; c++) for (let h = 0; h < 3; h++) for (let w = 0; w < 4; w++) {
      expected[((n * 32 + c + 8) * 3 + h) * 4 + w] = xv[((n * 16 + c) * 5 + 2 * h) * 7 + 2 * w];
    }
    assert.deepEqual(y, expected);
    assert.deepEqual(sc.stateDictShapes(), [], 'no state');
    x.dispose(); sc.dispose();
  });

  test('features: the stem and each stage with its stride, and the embedding the classifier takes', () => {
    const m = resnet18({ numClasses: 5, backend, seed: 1 }).eval();
    const x = randn([2, 3, 64, 64], new Rng(1), { backend });
    const { shapes, logitsA, logitsB } = tidy(() => noGrad(() => {
      const f = m.features(x);
      return {
        shapes: f.maps.map((mp) => [mp.name, mp.stride, [...mp.tensor.shape]]).concat([['embedding', 0, [...f.embedding.shape]]]),
        logitsA: m.head.forward(f.embedding).toArray(),
        logitsB: m.forward(x).toArray(),
      };
    }));
    assert.deepEqual(shapes, [
      ['stem', 2, [2, 64, 32, 32]], ['layer1', 4, [2, 64, 16, 16]], ['layer2', 8, [2, 128, 8, 8]],
      ['layer3', 16, [2, 256, 4, 4]], ['layer4', 32, [2, 512, 2, 2]], ['embedding', 0, [2, 512]],
    ]);
    assert.deepEqual(logitsA, logitsB);
    const c = resnet20({ inChannels: 1, backend, init: 'none' });
    const xc = tensor(new Float32Array(2 * 28 * 28), [2, 1, 28, 28], { backend });
    const fc = tidy(() => noGrad(() => c.features(xc).maps.map((mp) => [mp.name, mp.stride, [...mp.tensor.shape]])));
    assert.deepEqual(fc, [['stem', 1, [2, 16, 28, 28]], ['layer1', 1, [2, 16, 28, 28]], ['layer2', 2, [2, 32, 14, 14]], ['layer3', 4, [2, 64, 7, 7]]]);
    for (const t of [m, c, x, xc]) t.dispose();
  });

  test('lesion: no block removed equals the plain forward; a removed identity block passes its input on', () => {
    const m = resnet20({ backend, seed: 2 }).eval();
    // Give the BNs non-trivial statistics first (a few training batches).
    const rng = new Rng(2);
    const x = randn([2, 3, 12, 12], rng, { backend });
    tidy(() => { m.train(); noGrad(() => m.forward(x)); m.eval(); });
    const out = tidy(() => noGrad(() => {
      const plain = m.forward(x).toArray();
      const none = m.forward(x, { dropBlocks: [] }).toArray();
      const byName = m.forward(x, { dropBlocks: ['layer2.1', 'layer3.0'] }).toArray();
      const byIndex = m.forward(x, { dropBlocks: [4, 6] }).toArray();
      // By hand: run the blocks, replacing layer2.1 by its input and layer3.0 by its shortcut.
      let h = m.bn1!.forward(m.conv1.forward(x), { relu: true });
      for (const b of m.blocks()) {
        if (b.name === 'layer2.1') continue;
        h = b.name === 'layer3.0' ? b.block.getChild('shortcut').forward(h) : b.block.forward(h);
      }
      const manual = m.head.forward(flatten(m.avgpool.forward(h))).toArray();
      return { plain, none, byName, byIndex, manual };
    }));
    assert.deepEqual(out.none, out.plain);
    assert.deepEqual(out.byName, out.byIndex);
    assert.notDeepEqual(out.byName, out.plain);
    assertClose(out.byName, out.manual, 1e-5, `lesioned logits [${name}]`);
    x.dispose(); m.dispose();
  });

  test('train mode updates running statistics and num_batches_tracked; eval mode does not', () => {
    const m = resnet20({ backend, seed: 3 });
    const x = randn([2, 3, 8, 8], new Rng(3), { backend });
    tidy(() => noGrad(() => m.forward(x)));
    const sd1 = m.stateDict();
    assert.deepEqual(sd1['layer3.2.bn2.num_batches_tracked'].data, Int32Array.of(1));
    assert.ok(sd1['bn1.running_mean'].data.some((v) => v !== 0));
    m.eval();
    tidy(() => noGrad(() => m.forward(x)));
    const sd2 = m.stateDict();
    assert.deepEqual(sd2['bn1.running_mean'], sd1['bn1.running_mean']);
    assert.deepEqual(sd2['layer3.2.bn2.num_batches_tracked'].data, Int32Array.of(1));
    x.dispose(); m.dispose();
  });

  test('pre-activation and plain blocks compute what their definitions say', () => {
    const rng = new Rng(4);
    const x = randn([2, 8, 6, 6], rng, { backend });
    const pre = new PreActBasicBlock(8, 8, { rng, backend });
    const plain = new PlainBasicBlock(8, 8, { rng, backend });
    const r = tidy(() => noGrad(() => {
      const a = pre.forward(x).toArray();
      const pa = pre.bn2.forward(pre.conv1.forward(pre.bn1.forward(x, { relu: true })), { relu: true });
      const b = pre.conv2.forward(pa).toArray();
      const xv = x.toArray();
      const p = plain.forward(x).toArray();
      const pb = plain.bn2.forward(plain.conv2.forward(plain.bn1.forward(plain.conv1.forward(x), { relu: true })), { relu: true }).toArray();
      return { a, b: b.map((v, i) => v + xv[i]), p, pb };
    }));
    assertClose(r.a, r.b, 1e-6, 'preact = conv2(relu(bn2(conv1(relu(bn1(x)))))) + x');
    assert.deepEqual(r.p, r.pb);
    const bott = new PreActBottleneck(16, 8, { stride: 2, rng, backend });
    assert.equal(bott.outChannels, 32);
    assert.deepEqual(bott.traceShape([2, 16, 7, 7]), [2, 32, 4, 4]);
    const bt = new Bottleneck(64, 64, { groups: 32, baseWidth: 4, rng, backend });
    assert.equal(bt.width, 128, 'resnext50_32x4d layer1 width: 64 * 4/64 * 32');
    for (const t of [x, pre, plain, bott, bt]) t.dispose();
  });

  test('loadStateDict: round trip, report of missing / unexpected / mis-shaped keys, strict refuses and loads nothing', () => {
    const a = resnet20({ backend, seed: 5 });
    const b = resnet20({ backend, seed: 6 });
    const sd = a.stateDict();
    const before = b.parameters();
    const rep = b.loadStateDict(sd);
    assert.equal(rep.loaded.length, Object.keys(sd).length);
    assert.deepEqual(b.stateDict(), sd);
    assert.ok(b.parameters().every((p, i) => p === before[i]), 'loaded in place: parameter objects keep their identity');
    // Old checkpoints without num_batches_tracked load; an extra key, a missing one and a
    // mis-shaped one are reported, and strict mode refuses all of it.
    const old = Object.fromEntries(Object.entries(sd).filter(([k]) => !k.endsWith('num_batches_tracked')));
    assert.deepEqual(b.loadStateDict(old).missing, []);
    const bad = { ...old, 'linear.weight': { data: new Float32Array(64 * 7), shape: [7, 64] }, 'fc.weight': { data: new Float32Array(1), shape: [1] } };
    delete (bad as Record<string, unknown>)['layer1.0.conv1.weight'];
    const c = resnet20({ backend, seed: 7 });
    const cBefore = c.stateDict();
    assert.throws(() => c.loadStateDict(bad), (e: Error) => e instanceof CheckpointError
      && /nothing was loaded\. 1 missing key\(s\): layer1.0.conv1.weight; 1 unexpected key\(s\): fc.weight; 1 mis-shaped key\(s\): linear.weight \(model \[10, 64\], state dict \[7, 64\]\)/.test(e.message));
    assert.deepEqual(c.stateDict(), cBefore);
    const loose = c.loadStateDict(bad, { strict: false });
    assert.deepEqual([loose.missing, loose.unexpected, loose.mismatched.map((m) => m.key)], [['layer1.0.conv1.weight'], ['fc.weight'], ['linear.weight']]);
    assert.deepEqual(c.stateDict()['layer3.2.conv2.weight'], sd['layer3.2.conv2.weight']);
    assert.throws(() => c.loadStateDict(Object.fromEntries(Object.entries(sd).map(([k, v]) => [`module.${k}`, v]))), /strip the 'module.' prefix/);
    for (const m of [a, b, c]) m.dispose();
  });
});
