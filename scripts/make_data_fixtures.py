#!/usr/bin/python3
"""Reference outputs of torchvision's PIL preprocessing for the data tests (Debian's
python3-pil, python3-torchvision; never a runtime dependency). Writes
test/fixtures/data/resize.json. Inputs are not stored: each image is regenerated in the
tests from (seed, mode, width, height) with the same 31-bit LCG as lcg_image() below.
Outputs are stored as base64 bytes when small and as sha256 always.
Run: /usr/bin/python3 scripts/make_data_fixtures.py
"""
import base64
import hashlib
import io
import json
import os

import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'data')


def lcg_image(seed, mode, width, height):
    """Pixels in HWC order from state = (state * 1103515245 + 12345) mod 2^31, byte = state >> 16."""
    channels = 3 if mode == 'RGB' else 1
    state = seed & 0x7FFFFFFF
    out = bytearray(width * height * channels)
    for i in range(len(out)):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (state >> 16) & 0xFF
    return Image.frombytes(mode, (width, height), bytes(out))


def chw_bytes(img):
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[None, :, :]
    else:
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a).tobytes()


def entry(out_bytes, shape, small_limit=6000):
    e = {'shape': list(shape), 'sha256': hashlib.sha256(out_bytes).hexdigest()}
    if len(out_bytes) <= small_limit:
        e['b64'] = base64.b64encode(out_bytes).decode()
    return e


def image_shape(img):
    return [len(img.getbands()), img.size[1], img.size[0]]


def main():
    cases = []
    # PIL resize (torchvision Resize([h, w]) on PIL): down, up, one axis, grey, large ratio.
    for seed, mode, w, h, ow, oh in [
        (1, 'RGB', 53, 37, 20, 15),
        (2, 'RGB', 23, 17, 61, 43),
        (3, 'RGB', 53, 37, 53, 20),
        (4, 'RGB', 53, 37, 17, 37),
        (5, 'L', 41, 29, 13, 9),
        (6, 'RGB', 300, 200, 7, 5),
        (7, 'RGB', 31, 47, 224, 224),
        (8, 'L', 5, 3, 2, 7),
    ]:
        img = lcg_image(seed, mode, w, h)
        out = F.resize(img, [oh, ow], interpolation=T.InterpolationMode.BILINEAR)
        cases.append({'op': 'resize', 'seed': seed, 'mode': mode, 'width': w, 'height': h,
                      'size': [oh, ow], 'out': entry(chw_bytes(out), image_shape(out))})
    # Resize(short side) + CenterCrop: long side truncated, crop offsets half to even.
    for seed, mode, w, h, short, crop in [
        (11, 'RGB', 1024, 683, 256, 224),
        (12, 'RGB', 41, 64, 20, 19),
        (13, 'RGB', 64, 41, 24, 20),
        (14, 'L', 33, 50, 16, 15),
        (15, 'RGB', 20, 20, 20, 24),
    ]:
        img = lcg_image(seed, mode, w, h)
        resized = T.Resize(short)(img)
        out = T.CenterCrop(crop)(resized)
        cases.append({'op': 'resize_center_crop', 'seed': seed, 'mode': mode, 'width': w, 'height': h,
                      'resize': short, 'crop': crop, 'resized_shape': image_shape(resized),
                      'out': entry(chw_bytes(out), image_shape(out))})
    # resized_crop with fixed boxes (RandomResizedCrop's deterministic part).
    for seed, mode, w, h, box, size in [
        (21, 'RGB', 80, 60, (5, 7, 40, 50), 32),
        (22, 'RGB', 80, 60, (0, 0, 60, 80), 17),
        (23, 'L', 40, 30, (3, 2, 9, 11), 24),
    ]:
        img = lcg_image(seed, mode, w, h)
        i, j, bh, bw = box
        out = F.resized_crop(img, i, j, bh, bw, [size, size], interpolation=T.InterpolationMode.BILINEAR)
        cases.append({'op': 'resized_crop', 'seed': seed, 'mode': mode, 'width': w, 'height': h,
                      'box': list(box), 'size': size, 'out': entry(chw_bytes(out), image_shape(out))})
    # The whole eval pipeline to float32: Resize, CenterCrop, ToTensor, Normalize.
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    img = lcg_image(31, 'RGB', 47, 35)
    t = T.Compose([T.Resize(24), T.CenterCrop(20), T.ToTensor(), T.Normalize(mean, std)])(img)
    fb = t.numpy().astype('<f4').tobytes()
    cases.append({'op': 'eval_pipeline', 'seed': 31, 'mode': 'RGB', 'width': 47, 'height': 35,
                  'resize': 24, 'crop': 20, 'mean': mean, 'std': std,
                  'out': {'shape': list(t.shape), 'sha256': hashlib.sha256(fb).hexdigest(),
                          'b64': base64.b64encode(fb).decode()}})
    # Decoding: files PIL writes, and what PIL's convert('RGB') reads back (sharp must agree).
    w, h = 16, 12
    smooth = bytes((y * 9 + x * 5 + c * 40) & 0xFF for y in range(h) for x in range(w) for c in range(3))
    rgb = Image.frombytes('RGB', (w, h), smooth)
    grey = rgb.convert('L')
    rgba = lcg_image(41, 'RGB', w, h).convert('RGBA')
    pal = lcg_image(42, 'RGB', w, h).convert('P', palette=Image.ADAPTIVE, colors=16)
    decodes = []
    for name, img, fmt, kw in [
        ('baseline-420.jpg', rgb, 'JPEG', {'quality': 90}),
        ('444.jpg', rgb, 'JPEG', {'quality': 95, 'subsampling': 0}),
        ('progressive.jpg', rgb, 'JPEG', {'quality': 85, 'progressive': True}),
        ('grey.jpg', grey, 'JPEG', {'quality': 90}),
        ('rgba.png', rgba, 'PNG', {}),
        ('palette.png', pal, 'PNG', {}),
        ('grey.png', grey, 'PNG', {}),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        data = buf.getvalue()
        back = Image.open(io.BytesIO(data)).convert('RGB')
        decodes.append({'name': name, 'file_b64': base64.b64encode(data).decode(),
                        'out': entry(chw_bytes(back), image_shape(back))})
    doc = {'pil': PIL.__version__, 'torch': torch.__version__, 'torchvision': torchvision.__version__,
           'cases': cases, 'decodes': decodes}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'resize.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(f'wrote {len(cases)} cases and {len(decodes)} decodes to test/fixtures/data/resize.json')


if __name__ == '__main__':
    main()
