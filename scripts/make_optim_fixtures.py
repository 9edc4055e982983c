#!/usr/bin/python3
"""torch.optim.AdamW reference trajectories for test/adamw.test.ts (Debian's python3-torch
1.13; never a runtime dependency). Two parameter groups (the second with amsgrad off/on and
no weight decay), six steps with fixed gradients, one parameter skipped on step 3 (grad
None), in float32 as torch runs it. Writes test/fixtures/optim/adamw_torch.json.
Run: /usr/bin/python3 scripts/make_optim_fixtures.py
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'optim')


def main():
    g = torch.Generator().manual_seed(0)
    shapes = [[3, 4], [5], [2, 3]]
    init = [torch.randn(s, generator=g) for s in shapes]
    grads = [[torch.randn(s, generator=g) * (10.0 ** (k % 3 - 1)) for s in shapes] for k in range(6)]
    cases = []
    for amsgrad in (False, True):
        params = [p.clone().requires_grad_(True) for p in init]
        groups = [
            {'params': [params[0], params[2]], 'lr': 0.01, 'weight_decay': 0.05},
            {'params': [params[1]], 'lr': 0.003, 'weight_decay': 0.0, 'betas': (0.8, 0.99), 'eps': 1e-6},
        ]
        opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=amsgrad)
        after = []
        for k in range(6):
            for i, p in enumerate(params):
                p.grad = None if (k == 3 and i == 2) else grads[k][i].clone()
            opt.step()
            after.append([p.detach().flatten().tolist() for p in params])
        cases.append({'amsgrad': amsgrad, 'after': after})
    doc = {
        'torch': torch.__version__,
        'shapes': shapes,
        'init': [p.flatten().tolist() for p in init],
        'grads': [[t.flatten().tolist() for t in step] for step in grads],
        'skip': {'step': 3, 'param': 2},
        'groups': [{'params': [0, 2], 'lr': 0.01, 'weightDecay': 0.05},
                   {'params': [1], 'lr': 0.003, 'weightDecay': 0.0, 'betas': [0.8, 0.99], 'eps': 1e-6}],
        'defaults': {'lr': 1e-3, 'betas': [0.9, 0.999], 'eps': 1e-8, 'weightDecay': 1e-2},
        'cases': cases,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'adamw_torch.json'), 'w') as f:
        json.dump(doc, f)


if __name__ == '__main__':
    main()
