# The PyTorch peer of bench/detect.ts (Debian's python3-torch 1.13 / torchvision 0.14, run with
# /usr/bin/python3): torchvision's fasterrcnn_resnet50_fpn in eval mode under no_grad on one
# photo at its own size (the model resizes it to 800 on the short side), warm-up then timed
# runs; prints one JSON line. --save FILE first writes the weights both sides use (the key
# formula of scripts/make_detect_fixtures.py, so proposals and detections are real work).
#   /usr/bin/python3 bench/detect_torch.py --image test/fixtures/predict/images/b_517x389.jpg [--runs 5] [--threads 2] [--save W.pth]
import argparse, importlib.util, json, os, time
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.models.detection import fasterrcnn_resnet50_fpn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
ap = argparse.ArgumentParser()
ap.add_argument('--image', required=True)
ap.add_argument('--runs', type=int, default=5)
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--weights')
ap.add_argument('--save')
a = ap.parse_args()
torch.set_num_threads(a.threads)
m = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).eval()
if a.save:
    spec = importlib.util.spec_from_file_location('mdf', os.path.join(ROOT, 'scripts', 'make_detect_fixtures.py'))
    mdf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mdf)
    sd = m.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            if not k.endswith('num_batches_tracked'):
                v.copy_(mdf.synthetic(k, list(v.shape), mdf.SCALES))
    torch.save(sd, a.save)
    print(json.dumps({'saved': a.save}))
    raise SystemExit(0)
m.load_state_dict(torch.load(a.weights))
img = TF.to_tensor(Image.open(a.image).convert('RGB'))
with torch.no_grad():
    for _ in range(2):
        out = m([img])
    runs = []
    for _ in range(a.runs):
        t = time.perf_counter()
        out = m([img])
        runs.append((time.perf_counter() - t) * 1000)
print(json.dumps({'runs_ms': runs, 'detections': int(out[0]['boxes'].shape[0]), 'threads': torch.get_num_threads(), 'torch': torch.__version__}))
