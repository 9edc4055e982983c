#!/usr/bin/python3
"""PyTorch's SGD with two parameter groups (the classifier at the base lr, the backbone at
--lr-backbone), for test/finetune.test.ts: a few steps of momentum and weight decay on
fixed gradients, then the groups' lrs scaled by one schedule factor (what the Trainer does
every step). Writes test/fixtures/finetune/sgd_groups.json (float32 values as lists).
Run: /usr/bin/python3 scripts/make_finetune_fixtures.py
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'finetune')


def main():
    g = torch.Generator().manual_seed(14)
    # Group 0: the classifier (weight [3, 4], bias [3]); group 1: a backbone conv [2, 1, 2, 2].
    shapes = {'head.weight': [3, 4], 'head.bias': [3], 'backbone.weight': [2, 1, 2, 2]}
    params = {k: torch.randn(*s, generator=g) for k, s in shapes.items()}
    initial = {k: v.clone() for k, v in params.items()}
    for v in params.values():
        v.requires_grad_(True)
    lr, lr_backbone, momentum, wd = 0.1, 0.01, 0.9, 1e-3
    opt = torch.optim.SGD([
        {'params': [params['head.weight'], params['head.bias']]},
        {'params': [params['backbone.weight']], 'lr': lr_backbone},
    ], lr=lr, momentum=momentum, weight_decay=wd)
    factors = [1.0, 0.5, 0.25]
    grads = []
    for f in factors:
        for group, base in zip(opt.param_groups, [lr, lr_backbone]):
            group['lr'] = base * f
        step = {k: torch.randn(*s, generator=g) for k, s in shapes.items()}
        for k, v in params.items():
            v.grad = step[k].clone()
        opt.step()
        grads.append({k: v.flatten().tolist() for k, v in step.items()})
    out = {
        'torch': torch.__version__,
        'lr': lr, 'lr_backbone': lr_backbone, 'momentum': momentum, 'weight_decay': wd, 'factors': factors,
        'shapes': shapes,
        'initial': {k: v.flatten().tolist() for k, v in initial.items()},
        'grads': grads,
        'final': {k: v.detach().flatten().tolist() for k, v in params.items()},
        'final_lrs': [grp['lr'] for grp in opt.param_groups],
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'sgd_groups.json'), 'w') as fh:
        json.dump(out, fh, indent=1)
        fh.write('\n')


if __name__ == '__main__':
    main()
