#!/usr/bin/python3
"""pycocotools' own COCOeval on random box cases, for test/detect_eval.test.ts (never a runtime
dependency). pycocotools cannot be pip-installed here, so this runs its sources verbatim:
PythonAPI/pycocotools/cocoeval.py and coco.py from a checkout of github.com/cocodataset/cocoapi
(commit 8c9bcc3 was used), with the compiled `mask` module replaced by a Python transcription
of common/maskApi.c bbIou (the only part bbox evaluation calls). matplotlib (imported by coco.py
for drawing only) is stubbed; np.float (removed in NumPy 1.24) is aliased to float.
Also runs py-faster-rcnn's lib/datasets/voc_eval.py (commit 781a917; Python 2 source, made to
run by textual substitutions that touch no arithmetic) on random VOC cases, when --faster-rcnn
is given (both fixture files were written with both options, NumPy 1.24.2).
Writes test/fixtures/deteval/coco_cases.json and voc_cases.json. Inputs are stored; outputs are
the 12 stats and recall as exact float reprs, precision and scores as sha256 of their float64
little-endian C-order bytes. Also checks np.mean's summation order (see numpy_compat.ts).
Run: /usr/bin/python3 scripts/make_deteval_fixtures.py --cocoapi /path/to/cocoapi [--faster-rcnn /path/to/py-faster-rcnn]
"""
import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import sys
import tempfile
import types

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'deteval')

MASK_PY = '''
import numpy as np
def iou(dt, gt, pyiscrowd):
    # _mask.pyx iou() for two lists of xywh boxes -> common/maskApi.c bbIou, o reshaped (m, n) order F
    if len(dt) == 0 or len(gt) == 0:
        return []
    dt = np.array(dt, dtype=np.double).reshape(-1, 4)
    gt = np.array(gt, dtype=np.double).reshape(-1, 4)
    iscrowd = np.array(pyiscrowd, dtype=np.uint8)
    m, n = dt.shape[0], gt.shape[0]
    o = np.zeros((m, n))
    for g in range(n):
        G = gt[g]; ga = G[2] * G[3]; crowd = iscrowd[g]
        for d in range(m):
            D = dt[d]; da = D[2] * D[3]
            w = min(D[2] + D[0], G[2] + G[0]) - max(D[0], G[0])
            if w <= 0: continue
            h = min(D[3] + D[1], G[3] + G[1]) - max(D[1], G[1])
            if h <= 0: continue
            i = w * h; u = da if crowd else da + ga - i
            o[d, g] = i / u
    return o
'''


def load_pycocotools(cocoapi):
    """Import cocoapi's coco.py and cocoeval.py, unmodified, as package `pycocotools`."""
    np.float = float  # accumulate() calls astype(np.float)
    for name in ['matplotlib', 'matplotlib.pyplot', 'matplotlib.collections', 'matplotlib.patches']:
        mod = types.ModuleType(name)
        mod.PatchCollection = mod.Polygon = object
        sys.modules[name] = mod
    tmp = tempfile.mkdtemp()
    pkg = os.path.join(tmp, 'pycocotools')
    os.mkdir(pkg)
    open(os.path.join(pkg, '__init__.py'), 'w').close()
    open(os.path.join(pkg, 'mask.py'), 'w').write(MASK_PY)
    src = os.path.join(cocoapi, 'PythonAPI', 'pycocotools')
    for f in ['coco.py', 'cocoeval.py']:
        open(os.path.join(pkg, f), 'w').write(open(os.path.join(src, f)).read())
    sys.path.insert(0, tmp)
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    return COCO, COCOeval


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype='<f8').tobytes()).hexdigest()


def rand_box(rng, kind):
    """xywh with an area in the requested COCO range (or on its edge)."""
    if kind == 'edge':
        w = rng.choice([32, 16, 64, 96]); h = 32 * 32 // w if w != 96 else 96
    else:
        lo, hi = {'small': (2, 31), 'medium': (33, 95), 'large': (97, 200)}[kind]
        w = rng.uniform(lo, hi); h = rng.uniform(lo, hi)
        if rng.random() < 0.5: w, h = round(w), round(h)
    return [round(rng.uniform(0, 400), 2), round(rng.uniform(0, 300), 2), w, h]


def jitter(rng, b, s):
    return [round(b[0] + rng.uniform(-s, s) * b[2], 2), round(b[1] + rng.uniform(-s, s) * b[3], 2),
            max(0.5, round(b[2] * (1 + rng.uniform(-s, s)), 2)), max(0.5, round(b[3] * (1 + rng.uniform(-s, s)), 2))]


def make_case(seed, n_img, n_cat, dets_per_gt=2, n_fp=3, many=False):
    rng = random.Random(seed)
    cats = [{'id': c, 'name': 'c%d' % c} for c in range(1, n_cat + 1)]
    images = [{'id': 10 + i * 3, 'width': 640, 'height': 480} for i in range(n_img)]
    anns, dets = [], []
    aid = 1
    for im in images:
        for _ in range(rng.randint(0, 6)):
            cat = rng.randint(1, max(1, n_cat - 1))  # the last category never has gt (when n_cat > 1)
            b = rand_box(rng, rng.choice(['small', 'medium', 'large', 'edge']))
            crowd = 1 if rng.random() < 0.12 else 0
            area = b[2] * b[3] if rng.random() < 0.7 else round(b[2] * b[3] * rng.uniform(0.5, 1.0), 2)
            anns.append({'id': aid, 'image_id': im['id'], 'category_id': cat, 'bbox': b, 'area': area, 'iscrowd': crowd})
            aid += 1
            for _ in range(rng.randint(0, dets_per_gt)):
                dets.append({'image_id': im['id'], 'category_id': cat if rng.random() < 0.9 else rng.randint(1, n_cat),
                             'bbox': jitter(rng, b, rng.choice([0.02, 0.08, 0.2, 0.4])), 'score': round(rng.random(), 1)})
        for _ in range(rng.randint(0, n_fp)):
            dets.append({'image_id': im['id'], 'category_id': rng.randint(1, n_cat),
                         'bbox': rand_box(rng, rng.choice(['small', 'medium', 'large'])), 'score': round(rng.random(), 2)})
    if many:  # one image with > 100 detections of one category: the maxDets cut
        im = images[0]
        b = rand_box(rng, 'large')
        for _ in range(3):
            anns.append({'id': aid, 'image_id': im['id'], 'category_id': 1, 'bbox': jitter(rng, b, 0.3), 'area': b[2] * b[3], 'iscrowd': 0})
            aid += 1
        for _ in range(130):
            dets.append({'image_id': im['id'], 'category_id': 1, 'bbox': jitter(rng, b, 0.3), 'score': round(rng.random(), 2)})
    rng.shuffle(dets)
    return {'images': images, 'annotations': anns, 'categories': cats}, dets


def run_coco(COCO, COCOeval, gt, dets, opts):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))
        coco.createIndex()
        res = coco.loadRes(json.loads(json.dumps(dets)))
        E = COCOeval(coco, res, 'bbox')
        if 'imgIds' in opts: E.params.imgIds = opts['imgIds']
        if 'catIds' in opts: E.params.catIds = opts['catIds']
        if 'useCats' in opts: E.params.useCats = 1 if opts['useCats'] else 0
        if 'maxDets' in opts: E.params.maxDets = opts['maxDets']
        E.evaluate(); E.accumulate()
        E.summarize()
    summary = '\n'.join(l for l in out.getvalue().split('\n') if l.startswith(' Average'))
    return {
        'stats': [float(s) for s in E.stats],
        'precisionShape': list(E.eval['precision'].shape), 'precisionSha256': sha(E.eval['precision']),
        'scoresSha256': sha(E.eval['scores']),
        'precisionSum': float(E.eval['precision'].astype(np.float64).sum()),
        'recallShape': list(E.eval['recall'].shape), 'recall': [float(v) for v in E.eval['recall'].ravel()],
        'summary': summary,
    }


def check_mean_order():
    """numpy_compat.ts pairwiseSum: pairwise within blocks of 8192, blocks added one by one."""
    def pw(a, lo, n):
        if n < 8:
            r = 0.0
            for i in range(n): r += a[lo + i]
            return r
        if n <= 128:
            r = [a[lo + i] for i in range(8)]; i = 8
            while i < n - n % 8:
                for j in range(8): r[j] += a[lo + i + j]
                i += 8
            res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n: res += a[lo + i]; i += 1
            return res
        n2 = n // 2; n2 -= n2 % 8
        return pw(a, lo, n2) + pw(a, lo + n2, n - n2)
    g = np.random.default_rng(0)
    for n in [5, 100, 129, 8192, 8193, 30000, 80800, 300000]:
        x = g.random(n)
        s = 0.0
        for lo in range(0, n, 8192): s += pw(list(x), lo, min(8192, n - lo))
        assert s == np.sum(x) and s / n == np.mean(x), n


def load_voc_eval(frcnn):
    """py-faster-rcnn's lib/datasets/voc_eval.py (Python 2) made to run on Python 3 by textual
    substitutions that change no arithmetic: print statements become assignments, cPickle is
    pickle with binary file modes, and np.bool (removed in NumPy 1.24) is bool."""
    src = open(os.path.join(frcnn, 'lib', 'datasets', 'voc_eval.py')).read()
    src = src.replace('import cPickle', 'import pickle as cPickle').replace("print '", "_ = '")
    src = src.replace("open(cachefile, 'w')", "open(cachefile, 'wb')").replace("open(cachefile, 'r')", "open(cachefile, 'rb')")
    np.bool = bool
    ns = {}
    exec(compile(src, 'voc_eval.py', 'exec'), ns)
    return ns['voc_eval']


def make_voc_case(seed, n_img, classes):
    rng = random.Random(seed)
    gts, dets = [], []
    used = set()
    for i in range(n_img):
        name = '%06d' % (i * 7 + 1)
        objs = []
        for _ in range(rng.randint(1, 5)):
            x1, y1 = rng.randint(1, 300), rng.randint(1, 200)
            b = [x1, y1, x1 + rng.randint(4, 150), y1 + rng.randint(4, 150)]
            objs.append({'name': rng.choice(classes), 'bbox': b, 'difficult': 1 if rng.random() < 0.15 else 0})
            for _ in range(rng.randint(0, 3)):
                s = rng.choice([0.05, 0.1, 0.3])
                w, h = b[2] - b[0], b[3] - b[1]
                d = [round(b[0] + rng.uniform(-s, s) * w, 1), round(b[1] + rng.uniform(-s, s) * h, 1), 0, 0]
                d[2] = round(d[0] + w * (1 + rng.uniform(-s, s)), 1); d[3] = round(d[1] + h * (1 + rng.uniform(-s, s)), 1)
                score = round(rng.random(), 6)
                while score in used: score = round(rng.random(), 6)
                used.add(score)
                dets.append({'imageId': name, 'name': objs[-1]['name'] if rng.random() < 0.85 else rng.choice(classes), 'score': score, 'bbox': d})
        gts.append({'imageId': name, 'objects': objs})
    for c in classes:  # every class has a positive (no 0/0 recall in the fixture)
        gts[0]['objects'].append({'name': c, 'bbox': [5, 5, 40, 60], 'difficult': 0})
    rng.shuffle(dets)
    return gts, dets


def run_voc(voc_eval, gts, dets, classes, ovthresh, use07):
    tmp = tempfile.mkdtemp()
    os.mkdir(os.path.join(tmp, 'ann'))
    for g in gts:
        objs = ''.join('<object><name>%s</name><pose>Unspecified</pose><truncated>0</truncated><difficult>%d</difficult>'
                       '<bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox></object>'
                       % (o['name'], o['difficult'], *o['bbox']) for o in g['objects'])
        open(os.path.join(tmp, 'ann', g['imageId'] + '.xml'), 'w').write('<annotation>%s</annotation>' % objs)
    open(os.path.join(tmp, 'set.txt'), 'w').write(''.join(g['imageId'] + '\n' for g in gts))
    for c in classes:
        open(os.path.join(tmp, 'det_%s.txt' % c), 'w').write(''.join(
            '%s %r %r %r %r %r\n' % (d['imageId'], d['score'], *d['bbox']) for d in dets if d['name'] == c))
    out = []
    for c in classes:
        with contextlib.redirect_stdout(io.StringIO()):
            rec, prec, ap = voc_eval(os.path.join(tmp, 'det_{:s}.txt'), os.path.join(tmp, 'ann', '{:s}.xml'),
                                     os.path.join(tmp, 'set.txt'), c, os.path.join(tmp, 'cache'), ovthresh, use07)
        out.append({'name': c, 'ap': float(ap), 'recall': [float(v) for v in rec], 'precision': [float(v) for v in prec]})
    return {'classes': out, 'mAP': float(np.mean([o['ap'] for o in out]))}


def make_voc_cases(frcnn):
    voc_eval = load_voc_eval(frcnn)
    classes = ['cat', 'dog', 'person']
    cases = []
    for name, seed, n_img, ovthresh, use07 in [('voc07', 11, 8, 0.5, True), ('voc_area', 11, 8, 0.5, False),
                                             ('voc07_more', 12, 20, 0.5, True), ('voc07_iou07', 13, 12, 0.7, True)]:
        gts, dets = make_voc_case(seed, n_img, classes)
        cases.append({'name': name, 'gts': gts, 'dets': dets, 'opts': {'classes': classes, 'iouThreshold': ovthresh, 'use07Metric': use07},
                      'expected': run_voc(voc_eval, gts, dets, classes, ovthresh, use07)})
    doc = {'source': 'rbgirshick/py-faster-rcnn lib/datasets/voc_eval.py (print/cPickle/np.bool substituted)',
           'numpy': np.__version__, 'cases': cases}
    with open(os.path.join(OUT, 'voc_cases.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print('wrote', len(cases), 'VOC cases')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cocoapi', required=True, help='checkout of github.com/cocodataset/cocoapi')
    ap.add_argument('--faster-rcnn', help='checkout of github.com/rbgirshick/py-faster-rcnn (VOC cases)')
    args = ap.parse_args()
    check_mean_order()
    COCO, COCOeval = load_pycocotools(args.cocoapi)
    specs = [
        ('small_3cats', 1, dict(n_img=4, n_cat=3), {}),
        ('mixed_5cats', 2, dict(n_img=8, n_cat=5), {}),
        ('duplicates', 3, dict(n_img=6, n_cat=2, dets_per_gt=4, n_fp=1), {}),
        ('maxdets_cut', 4, dict(n_img=3, n_cat=2, many=True), {}),
        ('many_cats_chunked_mean', 5, dict(n_img=12, n_cat=12), {}),
        ('no_cats', 6, dict(n_img=6, n_cat=4), {'useCats': False}),
        ('subset', 7, dict(n_img=8, n_cat=4), {'imgIds': [13, 19, 22, 31, 10], 'catIds': [3, 1]}),
        ('maxdets_custom', 8, dict(n_img=4, n_cat=3, many=True), {'maxDets': [5, 1, 20]}),
    ]
    cases = []
    for name, seed, kw, opts in specs:
        gt, dets = make_case(seed, **kw)
        cases.append({'name': name, 'gt': gt, 'dets': dets, 'opts': opts, 'expected': run_coco(COCO, COCOeval, gt, dets, opts)})
    os.makedirs(OUT, exist_ok=True)
    doc = {'source': 'cocodataset/cocoapi PythonAPI/pycocotools cocoeval.py + coco.py (verbatim), bbIou transcribed',
           'numpy': np.__version__, 'cases': cases}
    with open(os.path.join(OUT, 'coco_cases.json'), 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print('wrote', len(cases), 'COCO cases')
    if args.faster_rcnn:
        make_voc_cases(args.faster_rcnn)


if __name__ == '__main__':
    main()
