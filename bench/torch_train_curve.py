#!/usr/bin/env python3
"""A PyTorch twin of `resnet train` for the CIFAR-style option-A ResNets on Fashion-MNIST,
for comparing training curves (not speed): the net of bench/peer_torch.py with our init
(kaiming_normal_ fan_out on convs, PyTorch's default Linear), SGD momentum 0.9, lr 0.1 with
a linear warm-up from 0.1x and cosine decay per step, batch 128, no augmentation,
normalisation by the subset's mean/std. Prints the running training error of each epoch.

usage: /usr/bin/python3 bench/torch_train_curve.py DEPTH SUBSET EPOCHS WEIGHT_DECAY WARMUP_EPOCHS [SEED]
e.g.   /usr/bin/python3 bench/torch_train_curve.py 56 10000 4 1e-4 1 0
The ours side: resnet train --arch resnet56 --subset 10000 --epochs 4 --wd 1e-4 --warmup 1 --aug none --seed 0
"""
import gzip, math, os, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from peer_torch import CifarResNet

torch.set_num_threads(1); SEED = int(sys.argv[6]) if len(sys.argv) > 6 else 0; torch.manual_seed(SEED); np.random.seed(SEED)
depth = int(sys.argv[1]); N = int(sys.argv[2]); E = int(sys.argv[3]); wd = float(sys.argv[4]); warm = float(sys.argv[5])
D = os.environ.get('FASHION_MNIST', '/usr/share/datasets/fashion-mnist') + '/'
def rd(f, off):
    return np.frombuffer(gzip.open(D + f).read(), np.uint8)[off:]
X = rd('train-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28)[:N].astype(np.float32) / 255; Y = rd('train-labels-idx1-ubyte.gz', 8)[:N].astype(np.int64)
m, s = X.mean(), X.std(); X = (X - m) / s
X = torch.from_numpy(X); Y = torch.from_numpy(Y)
net = CifarResNet(cin=1, classes=10, n=(depth - 2) // 6)
for mm in net.modules():
    if isinstance(mm, nn.Conv2d): nn.init.kaiming_normal_(mm.weight, mode='fan_out', nonlinearity='relu')
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=wd)
nb = math.ceil(N / 128)
for ep in range(E):
    perm = torch.randperm(N); err = 0; t = time.time()
    for b in range(nb):
        e = ep + b / nb; lr = 0.1 * 0.5 * (1 + math.cos(math.pi * e / E))
        if warm > 0 and e < warm: lr *= 0.1 + 0.9 * e / warm
        for g in opt.param_groups: g['lr'] = lr
        idx = perm[b * 128:(b + 1) * 128]; out = net(X[idx]); loss = F.cross_entropy(out, Y[idx])
        opt.zero_grad(); loss.backward(); opt.step(); err += (out.argmax(1) != Y[idx]).sum().item()
    print(f'depth {depth} epoch {ep + 1} train err {100 * err / N:.2f}% {time.time() - t:.0f}s', flush=True)
