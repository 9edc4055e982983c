#!/usr/bin/python3
"""Fixtures of test/predict.test.ts, from Debian's python3-torch / python3-torchvision / PIL
(never a runtime dependency). Writes test/fixtures/predict/:
  images/*.jpg|png        non-square images of several sizes (seeded smooth pattern + noise)
                          and one 224x224 image, made with PIL
  preprocessed.safetensors.gz
                          torchvision's Resize(256) + CenterCrop(224) + ToTensor + Normalize
                          of each non-square image (float32 [3, 224, 224], key = file name),
                          and convert('L') + Resize(28) + CenterCrop(28) + ToTensor +
                          Normalize of two (key 'L28:<file name>', [1, 28, 28])
  <net>.safetensors       small random-weight nets (reduced width, so they can be committed)
                          with non-trivial BatchNorm running statistics; one also as <net>.pth
  expected.json           PyTorch's logits and pooled features of each net for the 224 image
                          (no resize, no crop) and logits for the non-square images (default
                          preprocessing), with the versions used
Run: /usr/bin/python3 scripts/make_predict_fixtures.py
"""
import gzip
import json
import os
import struct

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'predict')
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# (file, width, height): non-square, portrait, an exact half-pixel crop offset (341 - 224 =
# 117 -> round(58.5) = 58), an upscale, and a square image for the logits tests.
IMAGES = [
    ('a_300x200.jpg', 300, 200),
    ('b_517x389.jpg', 517, 389),
    ('c_1024x683.jpg', 1024, 683),
    ('d_200x300.png', 200, 300),
    ('e_341x256.png', 341, 256),
    ('f_150x100.jpg', 150, 100),
]
SQUARE = ('sq_224.jpg', 224, 224)

# Reduced-width torchvision nets: (name, block, layers, width multiplier of the stage planes).
NETS = [
    ('resnet18_w8', 'resnet18', BasicBlock, [2, 2, 2, 2], 0.125),
    ('resnet50_w16', 'resnet50', Bottleneck, [3, 4, 6, 3], 0.0625),
]


GREY_IMAGES = ['b_517x389.jpg', 'e_341x256.png']
GREY_SIZE, GREY_MEAN, GREY_STD = 28, [0.3], [0.2]

# Also saved by torch.save (zip format), to load the same weights from .pth.
PTH_NETS = ['resnet50_w16']


def make_image(seed, w, h, noise):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for c in range(3):
        fx, fy, ph = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 2 * np.pi)
        v = 0.5 + 0.35 * np.sin(2 * np.pi * (fx * x / w + fy * y / h) + ph) * np.cos(2 * np.pi * fy * x / w - ph)
        v += 0.15 * np.exp(-(((x - w * 0.3) / (0.2 * w)) ** 2 + ((y - h * 0.6) / (0.25 * h)) ** 2)) * (c - 1)
        chans.append(v)
    a = np.stack(chans, axis=-1) * 255 + rng.normal(0, noise, size=(h, w, 3))
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), 'RGB')


def save_image(img, path):
    if path.endswith('.png'):
        img.save(path, optimize=True)
    else:
        img.save(path, quality=85)


def safetensors_bytes(tensors):
    """A safetensors file: F32 for floating tensors, I64 for integer ones, header padded to 8."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.is_floating_point():
            b, dtype = t.to(torch.float32).numpy().astype('<f4').tobytes(), 'F32'
        else:
            b, dtype = t.to(torch.int64).numpy().astype('<i8').tobytes(), 'I64'
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(',', ':'))
    h += ' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h.encode() + b''.join(blobs)


def small_net(block, layers, width, seed):
    """torchvision's ResNet with every stage's planes times `width` (the stem keeps 64), as
    resnet-ts's registry option `width` builds it."""
    torch.manual_seed(seed)
    net = ResNet(block, layers)
    net.inplanes = 64
    for i, n in enumerate(layers):
        setattr(net, f'layer{i + 1}', net._make_layer(block, int(64 * 2 ** i * width), n, stride=1 if i == 0 else 2))
    net.fc = torch.nn.Linear(int(512 * width) * block.expansion, 1000)
    # Non-trivial BN: statistics of noise batches (cumulative average), then random affine
    # parameters and a jitter of the statistics, so eval mode is far from identity.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, 96, 96))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5))
                m.bias.copy_(torch.randn(c) * 0.2)
                m.running_mean.add_(torch.randn(c) * 0.1)
                m.running_var.mul_(torch.empty(c).uniform_(0.7, 1.4))
        # The last BN of each block at half gain keeps the residual sums moderate.
        for name, m in net.named_modules():
            if name.endswith('.bn2') and block is BasicBlock or name.endswith('.bn3'):
                m.weight.mul_(0.5)
        # Logits of spread ~3 on the square image, so that softmax is not saturated.
        net.eval()
        x = torch.randn(2, 3, 224, 224)
        scale = 3.0 / float(net(x).std())
        net.fc.weight.mul_(scale)
        net.fc.bias.mul_(scale)
    return net


def to_list(t):
    """float32 values with 9 significant digits (enough to round-trip a float32)."""
    return [float('%.9g' % v) for v in t.reshape(-1).tolist()]


def main():
    torch.set_num_threads(1)
    os.makedirs(os.path.join(OUT, 'images'), exist_ok=True)
    for i, (name, w, h) in enumerate(IMAGES + [SQUARE]):
        # PNG is lossless: noise would make it large; the JPEGs carry it.
        save_image(make_image(1000 + i, w, h, 0 if name.endswith('.png') else 12), os.path.join(OUT, 'images', name))

    norm = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    eval_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(MEAN, STD)])
    load = lambda name: Image.open(os.path.join(OUT, 'images', name)).convert('RGB')
    pre = {name: eval_tf(load(name)) for name, _, _ in IMAGES}
    # One-channel inputs (a checkpoint trained on grey images): convert('L'), then a small
    # resize and crop, as resnet-ts does for such checkpoints.
    grey_tf = T.Compose([T.Resize(GREY_SIZE), T.CenterCrop(GREY_SIZE), T.ToTensor(), T.Normalize(GREY_MEAN, GREY_STD)])
    for name in GREY_IMAGES:
        pre[f'L{GREY_SIZE}:{name}'] = grey_tf(Image.open(os.path.join(OUT, 'images', name)).convert('L'))
    with open(os.path.join(OUT, 'preprocessed.safetensors.gz'), 'wb') as f:
        f.write(gzip.compress(safetensors_bytes(pre), compresslevel=9, mtime=0))
    x224 = norm(load(SQUARE[0])).unsqueeze(0)

    expected = {
        'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'PIL': PIL.__version__},
        'mean': MEAN, 'std': STD, 'square': SQUARE[0], 'images': [name for name, _, _ in IMAGES], 'nets': {},
        'grey': {'size': GREY_SIZE, 'mean': GREY_MEAN, 'std': GREY_STD, 'images': GREY_IMAGES},
    }
    for i, (name, arch, block, layers, width) in enumerate(NETS):
        net = small_net(block, layers, width, seed=7 + i)
        sd = net.state_dict()
        with open(os.path.join(OUT, f'{name}.safetensors'), 'wb') as f:
            f.write(safetensors_bytes(sd))
        if name in PTH_NETS:
            torch.save(sd, os.path.join(OUT, f'{name}.pth'))
        params = sum(p.numel() for p in net.parameters())
        with torch.no_grad():
            logits = net(x224)[0]
            feats = {}
            hook = net.avgpool.register_forward_hook(lambda m, a, o: feats.__setitem__('pool', torch.flatten(o, 1)))
            net(x224)
            hook.remove()
            batch = torch.stack([pre[n] for n, _, _ in IMAGES])
            logits_pre = net(batch)
        top5 = torch.topk(logits, 5).indices.tolist()
        srt = torch.sort(logits, descending=True).values
        gap = float((srt[:5] - srt[1:6]).min())
        print(f'{name}: {params} params, logits in [{logits.min():.3f}, {logits.max():.3f}], top-5 {top5}, smallest top-6 gap {gap:.4f}, '
              f'pool [{feats["pool"].min():.3f}, {feats["pool"].max():.3f}]')
        assert gap > 0.01, 'top-5 too close to call: pick another seed'
        expected['nets'][name] = {
            'arch': arch, 'width': width, 'classes': 1000, 'file': f'{name}.safetensors', 'params': params,
            'square': {'logits': to_list(logits), 'top5': top5, 'pool': to_list(feats['pool'][0])},
            'preprocessed': {n: to_list(logits_pre[j]) for j, (n, _, _) in enumerate(IMAGES)},
        }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f)
    for fn in sorted(os.listdir(OUT)) + ['images/' + n for n in sorted(os.listdir(os.path.join(OUT, 'images')))]:
        p = os.path.join(OUT, fn)
        if os.path.isfile(p):
            print(f'{fn}: {os.path.getsize(p)} bytes')


if __name__ == '__main__':
    main()
