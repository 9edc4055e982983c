#!/usr/bin/python3
"""Fixtures of test/detect_train.test.ts: Faster R-CNN's training losses and gradients from
Debian's python3-torch 1.13 / torchvision 0.14 (never a runtime dependency). Writes
test/fixtures/detect/train_losses.json.

Model: resnet_fpn_backbone('resnet18') + FasterRCNN(num_classes=4) at a small size
(min_size 128, max_size 192), weights from the key formula of make_detect_fixtures.py (the TS
test computes the same values). Sampling is made deterministic by sampling everything:
rpn_batch_size_per_image and box_batch_size_per_image far above the number of anchors and
proposals take every positive and every negative, so the loss does not depend on
torch.randperm and both sides must agree on the matching, the proposals and the losses.
Cases:
  frozen: trainable_layers 3, FrozenBatchNorm2d (torchvision's fine-tuning setting), one image;
  scratch: trainable_layers 5, nn.BatchNorm2d in train mode (torchvision's setting without
           trained weights), two images of different sizes in one padded batch.
Recorded: the four losses; for a set of parameters the gradient's sum, sum of squares and
first 8 values (None for frozen ones); the number of proposals per image.
Run: /usr/bin/python3 scripts/make_detect_train_fixtures.py
"""
import importlib.util
import json
import os

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import misc as misc_nn_ops

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
spec = importlib.util.spec_from_file_location('mdf', os.path.join(ROOT, 'scripts', 'make_detect_fixtures.py'))
mdf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mdf)

IMAGES = os.path.join(ROOT, 'test', 'fixtures', 'predict', 'images')
OUT = os.path.join(ROOT, 'test', 'fixtures', 'detect', 'train_losses.json')
SCALES = {'roi_heads.box_predictor.cls_score.weight': 0.3, 'rpn.head.cls_logits.weight': 0.3,
          'rpn.head.bbox_pred.weight': 0.05, 'roi_heads.box_predictor.bbox_pred.weight': 0.1}
SETTINGS = {'numClasses': 4, 'minSize': 128, 'maxSize': 192, 'preNmsTopNTrain': 300, 'postNmsTopNTrain': 60,
            'rpnBatch': 100000, 'boxBatch': 100000}
GRADS = ['rpn.head.cls_logits.weight', 'rpn.head.bbox_pred.weight', 'rpn.head.conv.0.0.weight',
         'roi_heads.box_predictor.cls_score.weight', 'roi_heads.box_predictor.bbox_pred.bias',
         'roi_heads.box_head.fc6.weight', 'roi_heads.box_head.fc7.bias',
         'backbone.fpn.layer_blocks.0.0.weight', 'backbone.fpn.inner_blocks.3.0.weight',
         'backbone.body.layer4.1.conv2.weight', 'backbone.body.layer2.0.conv1.weight',
         'backbone.body.layer1.0.conv1.weight', 'backbone.body.conv1.weight', 'backbone.body.layer3.0.bn1.weight']
# Objects in each photo's own pixels, labels 1..3.
TARGETS = {
    'b_517x389.jpg': ([[40.0, 60.0, 260.0, 330.0], [300.5, 20.25, 500.0, 200.0], [150.0, 150.0, 230.0, 380.0]], [1, 3, 2]),
    'c_1024x683.jpg': ([[100.0, 100.0, 600.0, 500.0], [650.0, 300.0, 1000.0, 680.0]], [2, 1]),
}


def model(frozen):
    norm = misc_nn_ops.FrozenBatchNorm2d if frozen else nn.BatchNorm2d
    backbone = resnet_fpn_backbone(backbone_name='resnet18', weights=None, norm_layer=norm, trainable_layers=3 if frozen else 5)
    m = FasterRCNN(backbone, num_classes=SETTINGS['numClasses'], min_size=SETTINGS['minSize'], max_size=SETTINGS['maxSize'],
                   rpn_pre_nms_top_n_train=SETTINGS['preNmsTopNTrain'], rpn_post_nms_top_n_train=SETTINGS['postNmsTopNTrain'],
                   rpn_batch_size_per_image=SETTINGS['rpnBatch'], box_batch_size_per_image=SETTINGS['boxBatch'])
    sd = m.state_dict()
    keys = [(k, list(v.shape)) for k, v in sd.items() if not k.endswith('num_batches_tracked')]
    with torch.no_grad():
        for k, shape in keys:
            sd[k].copy_(mdf.synthetic(k, shape, SCALES))
    return m, keys


def case(name, frozen, files):
    m, keys = model(frozen)
    m.train()
    imgs = [TF.to_tensor(Image.open(os.path.join(IMAGES, f)).convert('RGB')) for f in files]
    targets = [{'boxes': torch.tensor(TARGETS[f][0]), 'labels': torch.tensor(TARGETS[f][1])} for f in files]
    props = {}
    hook = m.rpn.register_forward_hook(lambda mod, inp, out: props.update(n=[int(p.shape[0]) for p in out[0]]))
    losses = m(imgs, targets)
    hook.remove()
    total = sum(losses.values())
    total.backward()
    params = dict(m.named_parameters())
    grads = {}
    for k in GRADS:
        p = params.get(k)
        if p is None or p.grad is None or not p.requires_grad:
            grads[k] = None
        else:
            g = p.grad.double()
            grads[k] = {'sum': float(g.sum()), 'sumsq': float((g * g).sum()), 'first': [float(v) for v in g.flatten()[:8]]}
    return {'name': name, 'frozen': frozen, 'files': files,
            'targets': [{'boxes': TARGETS[f][0], 'labels': TARGETS[f][1]} for f in files],
            'losses': {k: float(v) for k, v in losses.items()}, 'proposals': props['n'], 'grads': grads, 'keys': keys}


def main():
    torch.set_num_threads(2)
    out = {'settings': SETTINGS, 'scales': SCALES,
           'cases': [case('frozen', True, ['b_517x389.jpg']), case('scratch', False, ['b_517x389.jpg', 'c_1024x683.jpg'])]}
    with open(OUT, 'w') as fh:
        json.dump(out, fh)
    for c in out['cases']:
        print(c['name'], c['losses'], c['proposals'])


if __name__ == '__main__':
    main()
