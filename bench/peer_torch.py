# The PyTorch peer of bench/train.ts: resnet20 (option A, CIFAR-style, 1 input channel) on
# random 1x28x28 batches of 128, SGD momentum 0.9, wd 5e-4; forward, cross-entropy,
# backward, step. Data are pre-made tensors (no loader), so this is PyTorch's best case.
#   /usr/bin/python3 bench/train_torch.py [--steps 200] [--batch 128] [--threads N]
import argparse, json, os, time
import torch
import torch.nn as nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin; self.stride = stride
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.stride != 1 or self.pad:
            sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)

class ResNet20(nn.Module):
    def __init__(self, cin=1, classes=10, n=3):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16)
        layers, c = [], 16
        for i, w in enumerate([16, 32, 64]):
            for j in range(n):
                layers.append(Block(c, w, 2 if (i > 0 and j == 0) else 1)); c = w
        self.layers = nn.Sequential(*layers); self.fc = nn.Linear(64, classes)
    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

p = argparse.ArgumentParser()
p.add_argument('--steps', type=int, default=200); p.add_argument('--batch', type=int, default=128)
p.add_argument('--threads', type=int, default=os.cpu_count())
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
model = ResNet20().train()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, 1, 28, 28); y = torch.randint(0, 10, (a.batch,))
for i in range(10 + a.steps):
    if i == 10: t0 = time.perf_counter()
    loss = F.cross_entropy(model(x), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
dt = time.perf_counter() - t0
print(json.dumps({'images_per_sec': a.steps * a.batch / dt, 'steps': a.steps, 'batch': a.batch, 'threads': a.threads, 'torch': torch.__version__}))
