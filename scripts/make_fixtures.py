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



# ---- ResNets ---------------------------------------------------------------------------
# Weights too big to store (resnet18: 11.7M floats) are drawn by a counter-based generator
# that test/helpers/fixture_weights.ts reproduces bit for bit: element i of the k-th tensor
# is center + half * (2u - 1), u = (lowbias32(i + k * 0x9E3779B1) >> 8) / 2^24, computed in
# float64 and rounded to float32. Gradients are stored as checksums (sum, sum of squares,
# sum of |g|) plus SAMPLES elements at indices (j * 2654435761) mod numel.

SAMPLES = 64
M32 = 0xFFFFFFFF


def lowbias32(x):
    """Chris Wellons' lowbias32 integer hash on a uint64 array holding 32-bit values."""
    x = x & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def draw(numel, seed, center, half):
    import numpy as np
    i = np.arange(numel, dtype=np.uint64)
    h = lowbias32((i + ((seed * 0x9E3779B1) & M32)) & M32)
    u = (h >> 8).astype(np.float64) / float(1 << 24)
    return (center + half * (2.0 * u - 1.0)).astype(np.float32)


def generated_state(net):
    """Fills every float entry of net's state dict from the generator (k-th entry: seed k+1);
    returns the spec the tests rebuild it from, with a checksum of each entry."""
    import math
    kinds = {name: type(m) for name, m in net.named_modules()}
    spec = []
    with torch.no_grad():
        for k, (key, t) in enumerate(net.state_dict().items()):
            shape = list(t.shape)
            owner, name = key.rsplit('.', 1)
            if name == 'num_batches_tracked':
                spec.append({'key': key, 'shape': shape, 'int': True})
                continue
            if kinds[owner] is nn.BatchNorm2d:
                center, half = {'weight': (1.0, 0.5), 'bias': (0.0, 0.2), 'running_mean': (0.0, 0.1),
                                'running_var': (1.0, 0.5)}[name]
            elif kinds[owner] is nn.Conv2d:  # He uniform
                center, half = 0.0, math.sqrt(6.0 / (shape[1] * shape[2] * shape[3]))
            else:  # nn.Linear, PyTorch's default bound for weight and bias
                center, half = 0.0, 1.0 / math.sqrt(net.get_submodule(owner).in_features)
            vals = torch.from_numpy(draw(t.numel(), k + 1, center, half)).reshape(shape)
            t.copy_(vals)
            spec.append({'key': key, 'shape': shape, 'seed': k + 1, 'center': center, 'half': half,
                         'check': checksum(vals)})
    return spec


def checksum(t):
    v = t.detach().double().reshape(-1)
    n = v.numel()
    idx = list(range(n)) if n <= SAMPLES else [(j * 2654435761) % n for j in range(SAMPLES)]
    return {'sum': float(v.sum()), 'sumsq': float((v * v).sum()), 'sumabs': float(v.abs().sum()),
            'numel': n, 'idx': idx, 'values': [float(v[i]) for i in idx]}


class ShortcutA(nn.Module):
    """Option A of the widely used CIFAR code: subsample by 2 and pad planes//4 zero
    channels before and after (its LambdaLayer)."""

    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.planes // 4, self.planes // 4), 'constant', 0)


class CifarBasicBlock(nn.Module):
    def __init__(self, cin, planes, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            if option == 'A':
                self.shortcut = ShortcutA(planes)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The paper's CIFAR net (section 4.2) with the key names of the widely used CIFAR
    implementation (akamaster/pytorch_resnet_cifar10): conv1, bn1, layer1..3, linear."""

    def __init__(self, n, num_classes=10, in_channels=3, option='A'):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for j in range(n):
                blocks.append(CifarBasicBlock(cin, planes, 2 if (i > 0 and j == 0) else 1, option))
                cin = planes
            setattr(self, 'layer%d' % (i + 1), nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3]).flatten(1)
        return self.linear(out)


def count_macs(net, shape):
    """Multiply-adds of convolutions and linear layers (torchvision's GFLOPS convention)."""
    total = [0]

    def conv_hook(m, inp, out):
        total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(*shape))
    for h in hooks:
        h.remove()
    return total[0]


def resnet_keys():
    """Key lists (in order, with shapes), parameter counts and multiply-adds of torchvision's
    ResNets at 224x224 and of the CIFAR nets (10 classes, option A) at 32x32."""
    import torchvision.models as tvm
    out = {'torch': torch.__version__, 'imagenet': {}, 'cifar': {}}
    for arch in ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'wide_resnet50_2',
                 'wide_resnet101_2', 'resnext50_32x4d', 'resnext101_32x8d', 'resnext101_64x4d']:
        torch.manual_seed(0)
        net = getattr(tvm, arch)()
        sd = net.state_dict()
        out['imagenet'][arch] = {
            'keys': [[k, list(v.shape)] for k, v in sd.items()],
            'params': sum(p.numel() for p in net.parameters()),
            'macs': count_macs(net, (1, 3, 224, 224)),
        }
        del net
    for depth in [20, 32, 44, 56, 110, 1202]:
        net = CifarResNet((depth - 2) // 6)
        out['cifar']['resnet%d' % depth] = {
            'keys': [[k, list(v.shape)] for k, v in net.state_dict().items()],
            'params': sum(p.numel() for p in net.parameters()),
            'macs': count_macs(net, (1, 3, 32, 32)),
        }
    net = CifarResNet(3, option='B')
    out['cifar']['resnet20_option_b'] = {
        'keys': [[k, list(v.shape)] for k, v in net.state_dict().items()],
        'params': sum(p.numel() for p in net.parameters()),
    }
    return out


def model_fixture(net, x_shape, labels):
    """Generated weights and input; eval logits, then train-mode logits, loss, checksums of
    every parameter gradient and of the running statistics after the step. Computed in
    float64 (the weights and input are float32 values, so this is the exact answer for them);
    PyTorch's own float32 run is measured against it and its worst errors recorded, the
    yardstick for ours."""
    import copy
    spec = generated_state(net)
    x = torch.from_numpy(draw(int(torch.tensor(x_shape).prod()), 100003, 0.0, 1.0)).reshape(x_shape)
    labels_t = torch.tensor(labels)
    runs = {}
    for dtype in (torch.float64, torch.float32):
        m = copy.deepcopy(net).to(dtype)
        xd = x.to(dtype)
        m.eval()
        with torch.no_grad():
            eval_logits = m(xd)
        m.train()
        logits = m(xd)
        loss = F.cross_entropy(logits, labels_t)
        loss.backward()
        runs[dtype] = {
            'eval_logits': eval_logits.double(), 'logits': logits.double(), 'loss': float(loss),
            'grads': {k: p.grad.double() for k, p in m.named_parameters()},
            'running': {k: v.double() for k, v in m.state_dict().items() if 'running' in k},
        }
    exact, f32 = runs[torch.float64], runs[torch.float32]

    def rel(a, b, floor):
        return float(((a - b).abs() / torch.clamp(b.abs(), min=floor)).max())

    def grad_err(a, b):
        return rel(a, b, 0.1 * float(b.pow(2).mean().sqrt()) + 1e-30)

    return {
        'torch': torch.__version__, 'dtype': 'float64',
        'x_shape': list(x_shape), 'x_seed': 100003, 'labels': labels,
        'spec': spec,
        'eval_logits': flat(exact['eval_logits']),
        'logits': flat(exact['logits']), 'loss': exact['loss'],
        'grads': {k: checksum(g) for k, g in exact['grads'].items()},
        'running_after': {k: checksum(v) for k, v in exact['running'].items()},
        'torch_float32_error': {
            'eval_logits': rel(f32['eval_logits'], exact['eval_logits'], 1e-3),
            'logits': rel(f32['logits'], exact['logits'], 1e-3),
            'loss': abs(f32['loss'] - exact['loss']) / abs(exact['loss']),
            'grads': max(grad_err(f32['grads'][k], g) for k, g in exact['grads'].items()),
        },
    }


def resnet18_small():
    import torchvision.models as tvm
    net = tvm.resnet18(num_classes=10)
    return model_fixture(net, (2, 3, 64, 64), [3, 7])


def resnet20_cifar():
    net = CifarResNet(3, num_classes=10, in_channels=1, option='A')
    return model_fixture(net, (2, 1, 28, 28), [1, 8])


def resnet56_cifar():
    # Nine blocks per stage: a long residual chain, where an autograd fault that three
    # blocks (resnet20) hide would show.
    net = CifarResNet(9, num_classes=10, in_channels=1, option='A')
    return model_fixture(net, (2, 1, 28, 28), [4, 2])


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    only = set(sys.argv[1:])  # e.g. `make_fixtures.py resnet20_cifar`: just those
    for name, fn in [('small_net', small_net), ('resnet_keys', resnet_keys),
                     ('resnet18_small', resnet18_small), ('resnet20_cifar', resnet20_cifar),
                     ('resnet56_cifar', resnet56_cifar)]:
        if only and name not in only:
            continue
        path = os.path.join(OUT, name + '.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(fn(), f)
        os.replace(path + '.tmp', path)
        print('wrote', os.path.relpath(path), file=sys.stderr)


if __name__ == '__main__':
    main()
