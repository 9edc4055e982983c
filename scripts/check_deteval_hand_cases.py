#!/usr/bin/python3
"""The hand-built COCO cases of test/detect_eval.test.ts, run through pycocotools' own
cocoeval.py (loaded as scripts/make_deteval_fixtures.py does): checks that the numbers derived
by hand in the test's comments are pycocotools' numbers. Prints each case's 12 stats and
asserts the ones the test asserts (to 1e-12).
Run: /usr/bin/python3 scripts/check_deteval_hand_cases.py --cocoapi /path/to/cocoapi
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_deteval_fixtures as M  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--cocoapi', required=True)
COCO, COCOeval = M.load_pycocotools(ap.parse_args().cocoapi)
NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']
BIG=[0,0,100,100]
nid=[1]
def ann(i,c,b,**kw):
    a={'id':nid[0],'image_id':i,'category_id':c,'bbox':b,'area':b[2]*b[3],'iscrowd':0}; a.update(kw); nid[0]+=1; return a
def gt(imgs,cats,anns): return {'images':[{'id':i} for i in imgs],'categories':[{'id':c} for c in cats],'annotations':anns}
def det(i,c,b,s): return {'image_id':i,'category_id':c,'bbox':b,'score':s}
def run(name, g, d, expect, **opts):
    r = M.run_coco(COCO, COCOeval, g, d, opts)
    print(name, [round(x, 6) for x in r['stats']])
    for k, v in expect.items():
        got = r['stats'][NAMES.index(k)]
        assert abs(got - v) <= 1e-12, (name, k, got, v)
run('perfect', gt([1,2],[1,2],[ann(1,1,BIG),ann(2,1,[10,10,120,100]),ann(2,2,[5,5,200,150])]), [det(1,1,BIG,.9),det(2,1,[10,10,120,100],.8),det(2,2,[5,5,200,150],.7)], dict(AP=1, AP50=1, AP75=1, APs=-1, APm=-1, APl=1, AR1=1, AR10=1, AR100=1, ARs=-1, ARm=-1, ARl=1))
g=gt([1],[1],[ann(1,1,BIG)])
run('fp_above', g, [det(1,1,[300,300,100,100],.9),det(1,1,BIG,.8)], dict(AP=.5, AP50=.5, AP75=.5, APl=.5, AR1=0, AR10=1, AR100=1))
run('missed 51/101=%f'%(51/101), gt([1],[1],[ann(1,1,BIG),ann(1,1,[200,0,100,100])]), [det(1,1,BIG,.9)], dict(AP=51/101, AP50=51/101, AR1=.5, AR100=.5))
run('dup', g, [det(1,1,BIG,.9),det(1,1,BIG,.8)], dict(AP=1, AR100=1))
run('loose dup .65', g, [det(1,1,[0,0,100,60],.9),det(1,1,BIG,.8)], dict(AP=.65, AP50=1, AP75=.5, AR100=1))
run('iou .75 -> .6', g, [det(1,1,[0,0,100,75],.9)], dict(AP=.6, AP50=1, AP75=1, AR100=.6))
crowd=[200,0,200,200]; ds=[det(1,1,[220,20,50,50],.95),det(1,1,[300,100,60,60],.93),det(1,1,BIG,.9)]
run('crowd 1', gt([1],[1],[ann(1,1,BIG),ann(1,1,crowd,iscrowd=1)]), ds, dict(AP=1, AR100=1))
run('notcrowd %f'%(51/101/3), gt([1],[1],[ann(1,1,BIG),ann(1,1,crowd)]), ds, dict(AP=51/101/3, AR100=.5))
run('ignoreflag 51/101', gt([1],[1],[ann(1,1,BIG),ann(1,1,[200,0,100,100],ignore=1)]), [det(1,1,BIG,.9)], dict(AP=51/101))
run('areas .752 .505 .505 1', gt([1],[1],[ann(1,1,[0,0,10,10]),ann(1,1,[100,0,32,32]),ann(1,1,[200,0,50,50]),ann(1,1,[300,0,100,100])]), [det(1,1,[0,0,10,10],.9),det(1,1,[200,0,50,50],.8),det(1,1,[300,0,100,100],.7)], dict(AP=76/101, APs=51/101, APm=51/101, APl=1, AR100=.75, ARs=.5, ARm=.5, ARl=1))
run('small fp .5 APl 1', gt([1],[1],[ann(1,1,BIG)]), [det(1,1,[500,500,10,10],.99),det(1,1,BIG,.5)], dict(AP=.5, APl=1, APs=-1))
run('area field APs 1', gt([1],[1],[ann(1,1,BIG,area=500)]), [det(1,1,BIG,.9)], dict(APs=1, APl=-1))
g3=gt([1],[1],[ann(1,1,BIG),ann(1,1,[200,0,100,100]),ann(1,1,[400,0,100,100])]); d3=[det(1,1,BIG,.9),det(1,1,[200,0,100,100],.8),det(1,1,[400,0,100,100],.7)]
run('maxdets', g3, d3, dict(AP=1, AR1=1/3, AR10=1, AR100=1))
run('cut 101', gt([1],[1],[ann(1,1,BIG)]), [det(1,1,[600+i,600,10,10],.9) for i in range(100)]+[det(1,1,BIG,.1)], dict(AP=0, AR100=0))
run('maxdets 3,1,2', g3, d3, dict(AP=-1, AP50=1, AR1=1/3, AR10=2/3, AR100=1), maxDets=[3,1,2])
run('issue55', gt([1],[1,2],[ann(1,1,[10,10,200,200])]), [det(1,1,[10,10,200,200],.5),det(1,2,[0,0,400,400],.99)], dict(AP=1, AP50=1, AP75=1, APs=-1, APm=-1, APl=1, AR100=1))
fp=det(1,1,[300,300,100,100],.5); tp=det(1,1,BIG,.5)
run('tie fp first .5', g, [fp, tp], dict(AP=.5))
run('tie tp first 1', g, [tp, fp], dict(AP=1))
g2=gt([1,2,3],[1],[ann(2,1,BIG)])
run('tie img1 .5', g2, [det(2,1,BIG,.5),det(1,1,BIG,.5)], dict(AP=.5))
run('tie img3 1', g2, [det(2,1,BIG,.5),det(3,1,BIG,.5)], dict(AP=1))
gc=gt([1,2],[1,2],[ann(1,1,BIG),ann(2,2,BIG)]); dc=[det(1,2,BIG,.9)]
run('bycat 0', gc, dc, dict(AP=0))
run('pooled .505 .5', gc, dc, dict(AP=51/101, AR100=.5), useCats=False)
run('pooled img1 1', gc, dc, dict(AP=1, AR100=1), useCats=False, imgIds=[1])
run('img2 cat1 -1', gc, dc, dict(AP=-1), imgIds=[2], catIds=[1])

print('all hand cases agree with pycocotools')
