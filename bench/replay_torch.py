#!/usr/bin/env python3
"""Replays bench/replay.ts's run in PyTorch 1.13 (the option-A CIFAR net of
scripts/make_fixtures.py, same key names) from the same initial weights, on the same batches,
with the same per-step learning rates, SGD momentum 0.9 and weight decay. Prints:
  1. one step's weight update against PyTorch's float64 answer, for ours and for PyTorch's
     float32 (relative error per tensor: the median and the worst five);
  2. per epoch, the mean loss and training error of both runs.
usage: /usr/bin/python3 bench/replay_torch.py PREFIX DEPTH [WEIGHT_DECAY]
"""
import json, os, struct, sys
import numpy as np, torch, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from make_fixtures import CifarResNet

pre, depth = sys.argv[1], int(sys.argv[2]); wd = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
torch.set_num_threads(int(os.environ.get('TORCH_THREADS', '1')))

def safetensors(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']
        out[k] = torch.from_numpy(np.frombuffer(b[8 + n + s:8 + n + e], np.float32).reshape(v['shape']).copy())
    return out

def net(dtype):
    m = CifarResNet((depth - 2) // 6, 10, 1, 'A'); m.load_state_dict(safetensors(pre + '_init.safetensors'), strict=False)
    return m.to(dtype).train()

run = json.load(open(pre + '_run.json'))
X = torch.from_numpy(np.fromfile(pre + '_x.f32', np.float32).reshape(-1, 1, 28, 28)); Y = torch.tensor(json.load(open(pre + '_y.json')))
offsets = np.concatenate([[0], np.cumsum(run['sizes'])])

# 1. one step against float64
init = {k: v.double() for k, v in safetensors(pre + '_init.safetensors').items()}
ours = {k: v.double() for k, v in safetensors(pre + '_step1.safetensors').items()}
after = {}
for dt in (torch.float32, torch.float64):
    m = net(dt); opt = torch.optim.SGD(m.parameters(), lr=run['lrs'][0], momentum=0.9, weight_decay=wd)
    F.cross_entropy(m(X[:offsets[1]].to(dt)), Y[:offsets[1]]).backward(); opt.step()
    after[dt] = {k: v.double() for k, v in m.state_dict().items()}
rows = []
for k in ours:
    if 'running' in k: continue
    ref = after[torch.float64][k] - init[k]
    err = lambda w: (((w - init[k]) - ref).norm() / ref.norm()).item()
    rows.append((err(ours[k]), err(after[torch.float32][k]), k))
print('step 1 weight update vs float64 (relative error per tensor): median ours %.2e, PyTorch float32 %.2e'
      % (np.median([r[0] for r in rows]), np.median([r[1] for r in rows])))
for r in sorted(rows, reverse=True)[:5]: print('  %-28s ours %.2e  PyTorch float32 %.2e' % (r[2], r[0], r[1]))

# 2. the whole run
m = net(torch.float32); opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=wd)
losses, errs = [], []
for i, lr in enumerate(run['lrs']):
    for g in opt.param_groups: g['lr'] = lr
    x, y = X[offsets[i]:offsets[i + 1]], Y[offsets[i]:offsets[i + 1]]
    out = m(x); loss = F.cross_entropy(out, y); opt.zero_grad(); loss.backward(); opt.step()
    losses.append(loss.item()); errs.append((out.argmax(1) != y).float().mean().item())
sizes, ep = run['sizes'], run['epochs']
bounds = [0] + [i for i in range(1, len(ep)) if ep[i] != ep[i - 1]] + [len(ep)]
print('steps        ours: loss  train err   PyTorch: loss  train err')
for a, b in zip(bounds[:-1], bounds[1:]):
    w = np.array(sizes[a:b], float)
    mean = lambda v: float(np.dot(v[a:b], w) / w.sum())
    print('%4d-%4d   %10.4f %9.2f%%   %13.4f %9.2f%%' % (a + 1, b, mean(np.array(run['losses'])), 100 * mean(np.array(run['errs'])),
                                                     mean(np.array(losses)), 100 * mean(np.array(errs))))
json.dump({'losses': losses, 'errs': errs}, open(pre + '_torch.json', 'w'))
