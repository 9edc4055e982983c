#!/usr/bin/python3
"""Reference outputs from PyTorch for the tests (Debian's python3-torch; never a runtime
dependency). Writes test/fixtures/*.json: inputs, parameters, outputs and gradients as
float lists, with the torch version. Run: /usr/bin/python3 scripts/make_fixtures.py
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


class SmallNet(nn.Module):
    """A small residual conv net touching every op of the engine: conv (bias and not,
    stride 2, 1x1/3x3/7x7, groups), batch norm, relu, max pool, residual add, avg pool,
    global average pool, linear, cross-entropy with label smoothing."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 1, stride=2, bias=True)
        self.bn3 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        y = self.bn2(self.conv2(x))
        x = F.relu(x + y)
        x = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def small_net():
    torch.manual_seed(0)
    net = SmallNet()
    # Non-trivial BN affine parameters and running stats, so they are really tested.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x = torch.randn(4, 3, 17, 19)
    labels = torch.tensor([0, 3, 4, 1])
    smoothing = 0.1
    init = {k: flat(v) for k, v in net.state_dict().items()}
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}

    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    loss.backward()
    grads = {k: flat(p.grad) for k, p in net.named_parameters()}
    after = {k: flat(v) for k, v in net.state_dict().items() if 'running' in k}

    # A few SGD steps (momentum 0.9, weight decay 1e-4, nesterov): the loss trajectory.
    net.load_state_dict({k: torch.tensor(v).reshape(shapes[k]) for k, v in init.items()})
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        l = F.cross_entropy(net(x), labels, label_smoothing=smoothing)
        l.backward()
        opt.step()
        losses.append(float(l))
    net.eval()
    with torch.no_grad():
        eval_logits = net(x)
    return {
        'torch': torch.__version__,
        'x': flat(x), 'x_shape': list(x.shape), 'labels': labels.tolist(), 'label_smoothing': smoothing,
        'state_dict': init, 'shapes': shapes,
        'logits': flat(logits), 'loss': float(loss), 'grads': grads, 'running_after': after,
        'sgd': {'lr': 0.05, 'momentum': 0.9, 'weight_decay': 1e-4, 'nesterov': True, 'losses': losses},
        'eval_logits_after_sgd': flat(eval_logits),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for name, fn in [('small_net', small_net)]:
        path = os.path.join(OUT, name + '.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(fn(), f)
        os.replace(path + '.tmp', path)
        print('wrote', os.path.relpath(path), file=sys.stderr)


if __name__ == '__main__':
    main()
