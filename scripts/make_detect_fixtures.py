#!/usr/bin/python3
"""Fixtures of test/detect_model.test.ts, from Debian's python3-torch 1.13 / torchvision 0.14
(never a runtime dependency). Writes test/fixtures/detect/fasterrcnn_resnet50_fpn.json.

Weights: torchvision's fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None) (v1, the
backbone with nn.BatchNorm2d, eps 1e-5, eval mode) holds 41 M parameters, 167 MB in float32:
too large to commit, and the TS test cannot replay torch's RNG. So neither side stores them:
every state-dict entry is a formula of its key and element index, computed identically here
(numpy, float64 then one rounding to float32) and in test/helpers/synthetic_weights.ts:
  seed = FNV-1a 32-bit of the key (ASCII); x = (i * 0x9E3779B1 + seed) mod 2^32, then
  murmur3's fmix32; u = (x >> 8) / 2^24 in [0, 1).
  running_mean: (2u - 1) * 0.1     running_var: 0.5 + u       (BN not a no-op)
  1-D weight (BN gamma): 0.5 + 0.5u   other 1-D (BN beta, biases): (2u - 1) * 0.1
  N-D weight: (2u - 1) * sqrt(6 / fan_in), times SCALES[key] where listed: the predictor's
  cls_score (so that tens of detections pass the default 0.05 threshold on random weights)
  the RPN's cls_logits (so that objectness stays small: sigmoid must not saturate to 1.0,
  whose ties torch's large sorts order in no documented way), and both box regressors (so
  that deltas stay realistic: exp(dw) of a large random delta turns 1e-6 of float noise into
  tenths of a pixel).
num_batches_tracked is left as it is. The fixture lists every key with its shape, so the test
also checks the TS model's state dict names against torchvision's.

Images: test/fixtures/predict/images/b_517x389.jpg and c_1024x683.jpg at their own sizes,
decoded by PIL (sharp decodes the same bytes to the same pixels: checked by md5 when this was
written), to_tensor (x / 255 in float32), run through the whole model in eval mode.
Recorded per image: original, resized and padded sizes; a few anchors per level; the first 50
proposals with their objectness; MultiScaleRoIAlign's output for a few rois (4 channels);
every detection; and per FPN level a checksum (sum, sum of squares) of the features. Then
both images in one batch (padded together): proposal counts and detections per image.
Also writes fasterrcnn_resnet50_c4.json: the paper's C4 detector composed from torchvision's
own parts (FasterRCNN over a conv1..layer3 trunk, AnchorGenerator with sizes 32..512 x ratios
0.5, 1, 2 on that one map, MultiScaleRoIAlign(['0'], 14, 2), layer4 + global average pooling
as the box head, FastRCNNPredictor(2048, 91)), smaller test settings (min_size 320,
max_size 512, 64 proposals) so its per-region layer4 stays fast, same weight formula; and
fasterrcnn_resnet50_fpn_v2.json: torchvision's v2 builder at the same test settings; and
fpn_keys.json: the state-dict keys of resnet_fpn_backbone('resnet18' / 'resnet34') detectors;
boxes.json: torchvision.ops.boxes, BoxCoder and cell anchors on seeded random inputs.
Run: /usr/bin/python3 scripts/make_detect_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF
from collections import OrderedDict
from PIL import Image
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
IMAGES = os.path.join(ROOT, 'test', 'fixtures', 'predict', 'images')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'detect')
FILES = ['b_517x389.jpg', 'c_1024x683.jpg']
SCALES = {'roi_heads.box_predictor.cls_score.weight': 0.02, 'rpn.head.cls_logits.weight': 0.03,
          'rpn.head.bbox_pred.weight': 0.02, 'roi_heads.box_predictor.bbox_pred.weight': 0.05}


def fnv1a(s):
    h = 0x811C9DC5
    for ch in s.encode('ascii'):
        h ^= ch
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def uniform(key, n):
    seed = fnv1a(key)
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(seed)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return (x >> np.uint64(8)).astype(np.float64) / 16777216.0


def synthetic(key, shape, scales):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(key, n)
    if key.endswith('running_mean'):
        v = (2 * u - 1) * 0.1
    elif key.endswith('running_var'):
        v = 0.5 + u
    elif len(shape) == 1 and key.endswith('weight'):
        v = 0.5 + 0.5 * u
    elif len(shape) == 1:
        v = (2 * u - 1) * 0.1
    else:
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * math.sqrt(6 / fan_in)
        if key in scales:
            v = v * scales[key]
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


SCALES_C4 = {'roi_heads.box_predictor.cls_score.weight': float(os.environ.get('C4_CLS', '0.1')), 'rpn.head.cls_logits.weight': 0.03,
             'rpn.head.bbox_pred.weight': 0.02, 'roi_heads.box_predictor.bbox_pred.weight': 0.05}


class C4Head(nn.Module):
    def __init__(self, layer4):
        super().__init__()
        self.layer4 = layer4

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.layer4(x), 1), 1)


def c4_model():
    r50 = resnet50()
    trunk = nn.Sequential(OrderedDict([(n, getattr(r50, n)) for n in ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3']]))
    trunk.out_channels = 1024
    return FasterRCNN(
        trunk, num_classes=None, min_size=320, max_size=512, rpn_post_nms_top_n_test=64,
        rpn_anchor_generator=AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(['0'], output_size=14, sampling_ratio=2),
        box_head=C4Head(r50.layer4), box_predictor=FastRCNNPredictor(2048, 91))


SCALES_V2 = {'roi_heads.box_predictor.cls_score.weight': float(os.environ.get('V2_CLS', '0.2')), 'rpn.head.cls_logits.weight': 0.03,
             'rpn.head.bbox_pred.weight': 0.02, 'roi_heads.box_predictor.bbox_pred.weight': 0.05}


def v2_model():
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2
    return fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, min_size=320, max_size=512, rpn_post_nms_top_n_test=64)


def make_small(arch, model, scales):
    sd = model.state_dict()
    keys = []
    for k, v in sd.items():
        keys.append([k, list(v.shape)])
        if not k.endswith('num_batches_tracked'):
            sd[k] = synthetic(k, list(v.shape), scales)
    model.load_state_dict(sd)
    model.eval()
    rec = {}
    orig_filter = model.rpn.filter_proposals

    def filter_proposals(*a, **kw):
        boxes, scores = orig_filter(*a, **kw)
        rec['proposals'], rec['proposal_scores'] = boxes, scores
        return boxes, scores
    model.rpn.filter_proposals = filter_proposals
    model.transform.register_forward_hook(lambda m, i, o: rec.__setitem__('images', o[0]))
    out = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'arch': arch,
           'settings': {'minSize': 320, 'maxSize': 512, 'postNmsTopN': 64}, 'scales': scales, 'keys': keys, 'images': []}
    f = FILES[0]
    img = TF.to_tensor(Image.open(os.path.join(IMAGES, f)).convert('RGB'))
    with torch.no_grad():
        det = model([img])[0]
    il = rec['images']
    print(arch, f, 'resized', il.image_sizes[0], 'proposals', rec['proposals'][0].shape[0], 'detections', det['boxes'].shape[0])
    out['images'].append({
        'file': f, 'resized': list(il.image_sizes[0]), 'padded': list(il.tensors.shape[-2:]),
        'numProposals': int(rec['proposals'][0].shape[0]),
        'proposals': r(rec['proposals'][0][:50], 4), 'proposalScores': r(rec['proposal_scores'][0][:50], 7),
        'detections': {'boxes': r(det['boxes'], 4), 'scores': r(det['scores'], 7),
                       'labels': [int(v) for v in det['labels'].tolist()]},
    })
    with open(os.path.join(OUT, arch + '.json'), 'w') as fh:
        json.dump(out, fh, separators=(',', ':'))


def make_boxes():
    """Box utilities on seeded random inputs: nms, batched_nms (both CPU paths: 300 boxes take
    the coordinate trick, 1100 the per-class loop), box_iou, BoxCoder decode / encode, cell
    anchors, remove_small_boxes, clip_boxes_to_image."""
    from torchvision.ops import boxes as box_ops
    from torchvision.models.detection._utils import BoxCoder
    g = torch.Generator().manual_seed(0)

    def rand_boxes(n, size=200.0):
        xy = torch.rand(n, 2, generator=g) * size
        wh = torch.rand(n, 2, generator=g) * 60 + 0.001
        return torch.cat([xy, xy + wh], 1)
    out = {}
    for n in [300, 1100]:
        b = rand_boxes(n)
        sc = torch.rand(n, generator=g)
        idx = torch.randint(0, 5, (n,), generator=g)
        out[f'nms{n}'] = {'boxes': b.reshape(-1).tolist(), 'scores': sc.tolist(), 'idxs': idx.tolist(),
                          'keep': box_ops.nms(b, sc, 0.5).tolist(), 'batched': box_ops.batched_nms(b, sc, idx, 0.5).tolist()}
    a, b = rand_boxes(6), rand_boxes(7)
    out['iou'] = {'a': a.reshape(-1).tolist(), 'b': b.reshape(-1).tolist(), 'iou': box_ops.box_iou(a, b).reshape(-1).tolist()}
    ref = rand_boxes(20)
    codes = torch.randn(20, 8, generator=g) * 2
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    dec = coder.decode_single(codes, ref)
    out['coder'] = {'boxes': ref.reshape(-1).tolist(), 'codes': codes.reshape(-1).tolist(), 'decoded': dec.reshape(-1).tolist(),
                    'encoded': coder.encode_single(dec[:, :4], ref).reshape(-1).tolist()}
    ag = AnchorGenerator(sizes=((32, 64, 128, 256, 512), (20, 45.5)), aspect_ratios=((0.5, 1.0, 2.0), (0.3, 1.7)))
    out['cellAnchors'] = [c.reshape(-1).tolist() for c in ag.cell_anchors]
    small = rand_boxes(50, 20.0) - 10
    small[::3, 2] = small[::3, 0] + 0.005
    out['small'] = {'boxes': small.reshape(-1).tolist(), 'keep': box_ops.remove_small_boxes(small, 1e-2).tolist(),
                    'clipped': box_ops.clip_boxes_to_image(small, (7, 9)).reshape(-1).tolist()}
    with open(os.path.join(OUT, 'boxes.json'), 'w') as fh:
        json.dump(out, fh, separators=(',', ':'))


def make_fpn_keys():
    out = {}
    for name in ['resnet18', 'resnet34']:
        m = FasterRCNN(resnet_fpn_backbone(backbone_name=name, weights=None), num_classes=91)
        out[f'fasterrcnn_{name}_fpn'] = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    with open(os.path.join(OUT, 'fpn_keys.json'), 'w') as fh:
        json.dump(out, fh, separators=(',', ':'))


def r(t, nd=6):
    return [round(float(v), nd) for v in t.reshape(-1).tolist()]


def main():
    torch.set_num_threads(2)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    sd = model.state_dict()
    keys = []
    for k, v in sd.items():
        keys.append([k, list(v.shape)])
        if k.endswith('num_batches_tracked'):
            continue
        sd[k] = synthetic(k, list(v.shape), SCALES)
    model.load_state_dict(sd)
    model.eval()

    rec = {}
    orig_filter = model.rpn.filter_proposals

    def filter_proposals(*a, **kw):
        boxes, scores = orig_filter(*a, **kw)
        rec['proposals'] = boxes
        rec['proposal_scores'] = scores
        return boxes, scores
    model.rpn.filter_proposals = filter_proposals
    model.rpn.anchor_generator.register_forward_hook(lambda m, i, o: rec.__setitem__('anchors', o))
    model.backbone.register_forward_hook(lambda m, i, o: rec.__setitem__('features', o))
    model.transform.register_forward_hook(lambda m, i, o: rec.__setitem__('images', o[0]))
    model.roi_heads.box_roi_pool.register_forward_hook(lambda m, i, o: rec.__setitem__('roi', (i[1], o)))
    model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: rec.__setitem__('logits', o[0]))

    out = {
        'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'arch': 'fasterrcnn_resnet50_fpn', 'scales': SCALES,
        'keys': keys, 'images': [],
    }
    for f in FILES:
        img = TF.to_tensor(Image.open(os.path.join(IMAGES, f)).convert('RGB'))
        with torch.no_grad():
            det = model([img])[0]
        il = rec['images']
        anchors = rec['anchors'][0]
        feats = rec['features']
        levels = []
        off = 0
        for name, fm in feats.items():
            n = fm.shape[-2] * fm.shape[-1] * 3
            a = anchors[off:off + n]
            levels.append({
                'name': name, 'shape': list(fm.shape), 'count': n, 'offset': off,
                'first': r(a[:9]), 'last': r(a[-3:]),
                'sum': float(fm.double().sum()), 'sumsq': float((fm.double() ** 2).sum()),
                'head': r(fm[0, 0, 0, :8]),
            })
            off += n
        props = rec['proposals'][0]
        pscores = rec['proposal_scores'][0]
        rois, pooled = rec['roi']
        K = pooled.shape[0]
        pick = sorted(set([0, 1, 2, K // 3, K // 2, K - 1]))
        logits = rec['logits']
        print(f, 'resized', il.image_sizes[0], 'padded', list(il.tensors.shape[-2:]), 'proposals', props.shape[0],
              'detections', det['boxes'].shape[0], 'max prob', float(torch.softmax(logits, -1)[:, 1:].max()))
        out['images'].append({
            'file': f, 'size': list(img.shape[-2:]), 'resized': list(il.image_sizes[0]),
            'padded': list(il.tensors.shape[-2:]),
            'levels': levels,
            'numProposals': int(props.shape[0]),
            'proposals': r(props[:50], 4), 'proposalScores': r(pscores[:50], 7),
            'roi': {'index': pick, 'boxes': r(rois[0][pick], 4), 'channels': 4,
                    'values': r(pooled[pick, :4], 6)},
            'detections': {'boxes': r(det['boxes'], 4), 'scores': r(det['scores'], 7),
                           'labels': [int(v) for v in det['labels'].tolist()]},
        })
    # Both images in one batch: padded together to the larger size (800 x 1216), which moves
    # the smaller image's anchors' strides and borders, so its detections differ from its own run.
    imgs = [TF.to_tensor(Image.open(os.path.join(IMAGES, f)).convert('RGB')) for f in FILES]
    with torch.no_grad():
        dets = model(imgs)
    out['batch'] = {'padded': list(rec['images'].tensors.shape[-2:]), 'numProposals': [int(p.shape[0]) for p in rec['proposals']],
                    'detections': [{'boxes': r(d['boxes'], 4), 'scores': r(d['scores'], 7), 'labels': [int(v) for v in d['labels'].tolist()]} for d in dets]}
    print('batch', out['batch']['padded'], out['batch']['numProposals'], [len(d['scores']) for d in dets])
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'fasterrcnn_resnet50_fpn.json'), 'w') as fh:
        json.dump(out, fh, separators=(',', ':'))


if __name__ == '__main__':
    torch.set_num_threads(2)
    what = sys.argv[1:] or ['fpn', 'c4', 'v2', 'keys', 'boxes']
    if 'keys' in what:
        make_fpn_keys()
    if 'boxes' in what:
        make_boxes()
    if 'c4' in what:
        make_small('fasterrcnn_resnet50_c4', c4_model(), SCALES_C4)
    if 'v2' in what:
        make_small('fasterrcnn_resnet50_fpn_v2', v2_model(), SCALES_V2)
    if 'fpn' in what:
        main()
