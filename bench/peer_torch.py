# The PyTorch peer (Debian's python3-torch 1.13, run with /usr/bin/python3): the same work
# as `resnet bench` — inference of a batch in eval mode under no_grad, or a training step
# (forward, cross-entropy, backward, SGD momentum 0.9 / weight decay 1e-4) — on random data,
# median of warm runs. torchvision builds the ImageNet nets; resnet20 is the CIFAR net with
# option-A shortcuts (as ours). --channels-last tries PyTorch's faster layout for inference.
#   /usr/bin/python3 bench/peer_torch.py --arch resnet50 --batch 16 --mode infer [--runs 10] [--threads 2]
import argparse, contextlib, json, os, time
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

class CifarResNet(nn.Module):
    def __init__(self, cin=3, classes=10, n=3):
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

CIFAR = {'resnet20': 3, 'resnet32': 5, 'resnet44': 7, 'resnet56': 9, 'resnet110': 18}

def build(arch, cin, classes):
    if arch in CIFAR:
        return CifarResNet(cin, classes or 10, CIFAR[arch])
    import torchvision
    m = getattr(torchvision.models, arch)(num_classes=classes or 1000)
    if cin != 3:
        m.conv1 = nn.Conv2d(cin, 64, 7, 2, 3, bias=False)
    return m

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--arch', default='resnet20'); p.add_argument('--batch', type=int, default=128)
    p.add_argument('--mode', choices=['infer', 'train'], default='train')
    p.add_argument('--input', default=None, help='HxW (default 224x224 ImageNet, 32x32 CIFAR)')
    p.add_argument('--in-channels', type=int, default=3); p.add_argument('--classes', type=int, default=None)
    p.add_argument('--runs', type=int, default=10); p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=os.cpu_count()); p.add_argument('--channels-last', action='store_true')
    p.add_argument('--bf16', action='store_true', help='forward under torch.autocast("cpu", torch.bfloat16), as Intel\'s recipe')
    a = p.parse_args()
    amp = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    h, w = (int(v) for v in (a.input or ('32x32' if a.arch in CIFAR else '224x224')).lower().split('x'))
    model = build(a.arch, a.in_channels, a.classes)
    x = torch.randn(a.batch, a.in_channels, h, w)
    y = torch.randint(0, a.classes or (10 if a.arch in CIFAR else 1000), (a.batch,))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    if a.mode == 'train':
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        def step():
            with amp():
                out = model(x)
            loss = F.cross_entropy(out.float(), y); opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); loss.item()
    else:
        model.eval()
        def step():
            with torch.no_grad(), amp():
                model(x).float().numpy()
    times = []
    for i in range(a.warmup + a.runs):
        t0 = time.perf_counter(); step(); dt = (time.perf_counter() - t0) * 1000
        if i >= a.warmup: times.append(dt)
    ms = sorted(times)[len(times) // 2] if len(times) % 2 else sum(sorted(times)[len(times) // 2 - 1:len(times) // 2 + 1]) / 2
    print(json.dumps({'arch': a.arch, 'batch': a.batch, 'mode': a.mode, 'backend': 'pytorch', 'ms_per_batch': ms,
                      'images_per_sec': a.batch * 1000 / ms, 'runs_ms': times, 'threads': a.threads,
                      'channels_last': a.channels_last, 'bf16': a.bf16, 'torch': torch.__version__}))

if __name__ == '__main__':
    main()
