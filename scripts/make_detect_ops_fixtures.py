#!/usr/bin/python3
"""torchvision 0.14 / PyTorch 1.13 references for test/detect_ops.test.ts (never a runtime
dependency): roi_align (aligned false/true, sampling ratio 2 and adaptive, spatial scale 1/4
and 1/16, boxes smaller than a cell, partly and wholly outside the map, degenerate and
inverted, two images), roi_pool, F.interpolate (nearest by size and by scale factor, bilinear
with align_corners false/true and GeneralizedRCNNTransform's recompute_scale_factor=True),
smooth_l1_loss, binary_cross_entropy_with_logits and FrozenBatchNorm2d: outputs, and the
gradient wrt the input of sum(y * dy) for a fixed upstream gradient dy.
Inputs are not stored: x and dy come from pattern() below, whose values are exact in float32
and which the test computes the same way. Outputs are written with 9 significant digits
(float32 round trips). Writes test/fixtures/detect/ops.json.
Run: /usr/bin/python3 scripts/make_detect_ops_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F
import torchvision
from torchvision.ops import FrozenBatchNorm2d, roi_align, roi_pool

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'detect')


def pattern(n, mult=7919, mod=10007, div=1024.0, seed=0):
    """Distinct (for n < mod), exactly representable float32 values in about [-4.9, 4.9]."""
    return [(((i + seed) * mult) % mod - mod // 2) / div for i in range(n)]


def pat(shape, seed=0, div=1024.0):
    n = 1
    for d in shape:
        n *= d
    return torch.tensor(pattern(n, seed=seed, div=div), dtype=torch.float32).reshape(shape)


def vals(t):
    return [float('%.9g' % v) for v in t.detach().flatten().tolist()]


# Boxes in feature-map cells (batch, x1, y1, x2, y2) on a 9 x 11 map; scaled to image
# coordinates per spatial scale, plus a jitter so that products are not all exact.
MAP_ROIS = [
    [0, 1.2, 0.7, 6.3, 5.1],      # ordinary
    [1, 2.3, 3.1, 2.6, 3.35],     # smaller than a cell
    [0, -2.5, -1.5, 4.0, 3.0],    # partly outside, top left
    [1, 7.5, 5.0, 13.0, 11.0],    # partly outside, bottom right
    [1, -5.0, -5.0, -2.0, -1.5],  # wholly outside (beyond -1)
    [0, 3.0, 3.0, 3.0, 3.0],      # zero size
    [1, 0.0, 0.0, 11.0, 9.0],     # the whole map
    [0, 5.5, 4.25, 2.0, 1.0],     # inverted (x2 < x1)
]
X_SHAPE = [2, 2, 9, 11]


def rois_for(inv_scale):
    rows = []
    for k, r in enumerate(MAP_ROIS):
        jitter = ((k * 13) % 7) * 0.1
        rows.append([float(r[0])] + [c * inv_scale + jitter for c in r[1:]])
    return rows


def grad_of(fn, x, seed):
    x = x.clone().requires_grad_(True)
    y = fn(x)
    dy = pat(list(y.shape), seed=seed, div=2048.0)
    (y * dy).sum().backward()
    return y, x.grad


def main():
    cases = {'roiAlign': [], 'roiPool': [], 'interpolate': [], 'smoothL1': [], 'bce': [], 'frozenBn': []}
    x = pat(X_SHAPE)
    for inv in (4, 16):
        rois = rois_for(inv)
        r = torch.tensor(rois, dtype=torch.float32)
        for aligned in (False, True):
            for sr in (2, -1):
                out = [7, 7] if (inv == 16 and sr == 2 and not aligned) else [3, 2]
                y, dx = grad_of(lambda t: roi_align(t, r, out, 1.0 / inv, sr, aligned), x, 1)
                cases['roiAlign'].append({'rois': rois, 'outputSize': out, 'spatialScale': 1.0 / inv,
                                          'samplingRatio': sr, 'aligned': aligned, 'y': vals(y), 'dx': vals(dx)})
        for out in ([3, 2], [2, 2]):
            y, dx = grad_of(lambda t: roi_pool(t, r, out, 1.0 / inv), x, 1)
            cases['roiPool'].append({'rois': rois, 'outputSize': out, 'spatialScale': 1.0 / inv,
                                     'y': vals(y), 'dx': vals(dx)})

    xi = pat([1, 2, 5, 7], seed=3)
    interp = [
        {'mode': 'nearest', 'size': [9, 11]},
        {'mode': 'nearest', 'size': [10, 14]},              # exactly 2x: ATen's shift path
        {'mode': 'nearest', 'size': [3, 4]},
        {'mode': 'nearest', 'size': [5, 7]},                # same size: copy
        {'mode': 'nearest', 'scaleFactor': [1.5, 1.5]},     # 1 / scale reaches the kernel
        {'mode': 'nearest', 'scaleFactor': [2.0, 2.0]},
        {'mode': 'nearest', 'scaleFactor': [1.7, 0.6]},
        {'mode': 'bilinear', 'size': [9, 11], 'alignCorners': False},
        {'mode': 'bilinear', 'size': [9, 11], 'alignCorners': True},
        {'mode': 'bilinear', 'size': [3, 4], 'alignCorners': False},
        {'mode': 'bilinear', 'size': [1, 1], 'alignCorners': True},
        {'mode': 'bilinear', 'size': [5, 7], 'alignCorners': False},
        {'mode': 'bilinear', 'scaleFactor': [1.7, 1.7], 'alignCorners': False},
        {'mode': 'bilinear', 'scaleFactor': [1.7, 1.7], 'alignCorners': False, 'recomputeScaleFactor': True},
        {'mode': 'bilinear', 'scaleFactor': [0.6, 1.3], 'alignCorners': True},
        # GeneralizedRCNNTransform.resize: one float scale, recompute_scale_factor=True
        {'mode': 'bilinear', 'scaleFactor': [1.4285714285714286, 1.4285714285714286], 'alignCorners': False,
         'recomputeScaleFactor': True},
    ]
    for c in interp:
        kw = {'mode': c['mode']}
        if 'size' in c:
            kw['size'] = tuple(c['size'])
        else:
            kw['scale_factor'] = tuple(c['scaleFactor'])
        if c['mode'] == 'bilinear':
            kw['align_corners'] = c['alignCorners']
        if c.get('recomputeScaleFactor'):
            kw['recompute_scale_factor'] = True
        y, dx = grad_of(lambda t: F.interpolate(t, **kw), xi, 2)
        cases['interpolate'].append(dict(c, outShape=list(y.shape), y=vals(y), dx=vals(dx)))

    n = 40
    inp = pat([n], seed=5, div=2048.0)
    tgt = pat([n], seed=11, div=2048.0)
    for beta in (1.0 / 9, 1.0):
        for red in ('none', 'sum', 'mean'):
            y, dx = grad_of(lambda t: F.smooth_l1_loss(t, tgt, beta=beta, reduction=red), inp, 4)
            cases['smoothL1'].append({'beta': beta, 'reduction': red, 'y': vals(y), 'dx': vals(dx)})
    bt = (pat([n], seed=7) > 0).float()
    for red in ('none', 'sum', 'mean'):
        y, dx = grad_of(lambda t: F.binary_cross_entropy_with_logits(t, bt, reduction=red), inp * 4, 4)
        cases['bce'].append({'reduction': red, 'y': vals(y), 'dx': vals(dx)})

    xb = pat([2, 3, 4, 5], seed=9)
    for eps in (0.0, 1e-5):
        m = FrozenBatchNorm2d(3, eps=eps)
        m.weight.copy_(torch.tensor([1.5, -0.75, 0.25]))
        m.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
        m.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        m.running_var.copy_(torch.tensor([0.25, 4.0, 1e-3]))
        y, dx = grad_of(m, xb, 6)
        cases['frozenBn'].append({'eps': eps, 'weight': [1.5, -0.75, 0.25], 'bias': [0.1, 0.2, -0.3],
                                  'runningMean': [0.5, -1.0, 2.0], 'runningVar': [0.25, 4.0, 1e-3],
                                  'y': vals(y), 'dx': vals(dx)})

    doc = {
        'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'pattern': 'x[i] = (((i + seed) * 7919) % 10007 - 5003) / div',
        'inputs': {
            'roi': {'shape': X_SHAPE, 'seed': 0, 'div': 1024, 'dySeed': 1, 'dyDiv': 2048},
            'interpolate': {'shape': [1, 2, 5, 7], 'seed': 3, 'div': 1024, 'dySeed': 2, 'dyDiv': 2048},
            'loss': {'n': n, 'inputSeed': 5, 'targetSeed': 11, 'div': 2048, 'bceLogitScale': 4,
                     'bceTarget': 'pattern(seed 7, div 1024) > 0', 'dySeed': 4, 'dyDiv': 2048},
            'frozenBn': {'shape': [2, 3, 4, 5], 'seed': 9, 'div': 1024, 'dySeed': 6, 'dyDiv': 2048},
        },
        'cases': cases,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'ops.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'))


if __name__ == '__main__':
    main()
