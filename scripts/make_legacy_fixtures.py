#!/usr/bin/python3
"""Legacy (pre-1.6, non-zip) PyTorch checkpoints as PyTorch's early years wrote them, for
test/legacy_pth.test.ts (Debian's python3-torch; never a runtime dependency). torch 1.13
still writes the legacy stream (_use_new_zipfile_serialization=False) but pickles tensors
with _rebuild_tensor_v2; here tensors are reduced to PyTorch 0.3's four-argument
torch._utils._rebuild_tensor(storage, offset, size, stride) by a Pickler subclass handed to
torch.save (reducer_override), and a Python 2.7 pickle (str as SHORT_BINSTRING/BINSTRING,
big ints as INT text, OrderedDict reduced to a list of pairs) is assembled opcode by opcode.
Every file is read back with PyTorch's own unrestricted torch.load (map_location='cpu');
what it gives is recorded beside it in NAME.expected.json: the plain values, and each
tensor's dtype, shape and the sha256 of its contiguous little-endian bytes as resnet-ts
returns them (float32 for floats, int64, int32 for other ints): bit-exact, and small.
Run: /usr/bin/python3 scripts/make_legacy_fixtures.py
"""
import collections
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import struct
import types

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pth', 'legacy')
KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'resnet_keys.json')


class OldTensorPickler(pickle.Pickler):
    """Pickles a tensor as PyTorch 0.3 did: torch._utils._rebuild_tensor(storage, offset, size, stride)."""

    def reducer_override(self, obj):
        if isinstance(obj, torch.Tensor):
            return (torch._utils._rebuild_tensor, (obj.storage(), obj.storage_offset(), tuple(obj.size()), obj.stride()))
        return NotImplemented


OLD = types.SimpleNamespace(__name__='old_tensor_pickle', Pickler=OldTensorPickler, dump=pickle.dump, load=pickle.load)


def legacy_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=OLD, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def split_pickles(b, n):
    """Byte ranges of the first n pickles of a legacy stream (read, never run: pickletools)."""
    f = io.BytesIO(b)
    out = []
    for _ in range(n):
        start = f.tell()
        for _op in pickletools.genops(f):
            pass
        out.append((start, f.tell()))
    return out


def with_sys_info(b, sys_info, element_size_by_numel=None):
    """The stream with its sys_info pickle replaced; with element_size_by_numel, each
    storage's element count is rewritten big-endian, as a big-endian machine's PyTorch < 1.6
    wrote it (the elements stay little-endian: the writer converted them)."""
    ranges = split_pickles(b, 5)
    (s0, s1), (k0, k1) = ranges[2], ranges[4]
    keys = pickle.loads(b[k0:k1])
    head = b[:s0] + pickle.dumps(sys_info, protocol=2) + b[s1:k1]
    if element_size_by_numel is None:
        return head + b[k1:]
    rest, pos, body = b[k1:], 0, b''
    for _ in keys:
        (numel,) = struct.unpack_from('<q', rest, pos)
        n = numel * element_size_by_numel[numel]
        body += struct.pack('>q', numel) + rest[pos + 8:pos + 8 + n]
        pos += 8 + n
    assert pos == len(rest)
    return head + body


def sys_info(little=True, long=8):
    return dict(protocol_version=1001, little_endian=little, type_sizes=dict(short=2, int=4, long=long))


# ---- a Python 2.7 pickle, opcode by opcode ---------------------------------------------

class Py2:
    """The opcodes Python 2.7's cPickle writes at protocol 2 (memoising strings and globals)."""

    def __init__(self):
        self.b = bytearray(b'\x80\x02')
        self.memo = {}

    def put(self, key):
        i = len(self.memo)
        self.memo[key] = i
        self.b += (b'q' + bytes([i])) if i < 256 else (b'r' + struct.pack('<I', i))

    def get(self, key):
        i = self.memo[key]
        self.b += (b'h' + bytes([i])) if i < 256 else (b'j' + struct.pack('<I', i))

    def str(self, s):
        if ('s', s) in self.memo:
            return self.get(('s', s))
        e = s.encode('utf-8')
        self.b += (b'U' + bytes([len(e)]) if len(e) < 256 else b'T' + struct.pack('<i', len(e))) + e
        self.put(('s', s))

    def glob(self, module, name):
        if ('g', module, name) in self.memo:
            return self.get(('g', module, name))
        self.b += b'c' + module.encode() + b'\n' + name.encode() + b'\n'
        self.put(('g', module, name))

    def int(self, v):
        if 0 <= v < 256:
            self.b += b'K' + bytes([v])
        elif 0 <= v < 65536:
            self.b += b'M' + struct.pack('<H', v)
        elif -2 ** 31 <= v < 2 ** 31:
            self.b += b'J' + struct.pack('<i', v)
        else:
            self.b += b'I' + str(v).encode() + b'\n'  # Python 2 int beyond 32 bits: text

    def long(self, v):  # a Python 2 `long`: LONG1, two's complement
        n = (v.bit_length() + 8) // 8 if v else 0
        self.b += b'\x8a' + bytes([n]) + v.to_bytes(n, 'little', signed=True)

    def value(self, v):
        if v is None:
            self.b += b'N'
        elif v is True or v is False:
            self.b += b'\x88' if v else b'\x89'
        elif isinstance(v, Py2Long):
            self.long(int(v))
        elif isinstance(v, int):
            self.int(v)
        elif isinstance(v, float):
            self.b += b'G' + struct.pack('>d', v)
        elif isinstance(v, str):
            self.str(v)
        elif isinstance(v, OldTensor):
            self.tensor(v)
        elif isinstance(v, collections.OrderedDict):
            # Python 2.7's OrderedDict.__reduce__: (OrderedDict, ([[k, v], ...],))
            self.glob('collections', 'OrderedDict')
            self.value([[k, x] for k, x in v.items()])
            self.b += b'\x85R'
            self.put(('o', id(v)))
        elif isinstance(v, dict):
            self.b += b'}'
            self.put(('d', id(v)))
            if v:
                self.b += b'('
                for k, x in v.items():
                    self.value(k)
                    self.value(x)
                self.b += b'u'
        elif isinstance(v, list):
            self.b += b']'
            self.put(('l', id(v)))
            if len(v) == 1:
                self.value(v[0])
                self.b += b'a'
            elif v:
                self.b += b'('
                for x in v:
                    self.value(x)
                self.b += b'e'
        elif isinstance(v, tuple):
            if 1 <= len(v) <= 3:
                for x in v:
                    self.value(x)
                self.b += [b'\x85', b'\x86', b'\x87'][len(v) - 1]
            else:
                self.b += b'(' if v else b')'
                for x in v:
                    self.value(x)
                if v:
                    self.b += b't'
        else:
            raise TypeError(type(v))

    def tensor(self, t):
        self.glob('torch._utils', '_rebuild_tensor')
        self.b += b'(('
        self.str('storage')
        self.glob(t.module, t.storage_type)
        self.str(t.key)
        self.str(t.location)
        self.int(t.numel)
        if t.view:  # (view_key, offset, view_size): a storage view, before PyTorch 0.4
            self.value(t.view)
        else:
            self.b += b'N'
        self.b += b'tQ'
        self.int(t.offset)
        self.value(tuple(t.size))
        self.value(tuple(t.stride))
        self.b += b'tR'

    def done(self):
        return bytes(self.b + b'.')


class Py2Long(int):
    pass


class OldTensor:
    def __init__(self, module, storage_type, key, location, numel, offset, size, stride, view=None):
        self.__dict__.update(locals())


def py2_file(obj, storages, sysinfo):
    """storages: [(key, element bytes)] in the order of the key list."""
    out = bytearray()
    out += pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)
    out += pickle.dumps(1001, protocol=2)
    p = Py2()
    p.value(sysinfo)
    out += p.done()
    p = Py2()
    p.value(obj)
    out += p.done()
    p = Py2()
    p.value([k for k, _ in storages])
    out += p.done()
    for _, (numel, data) in storages:
        out += struct.pack('<q', numel) + data
    return bytes(out)


# ---- expected values ------------------------------------------------------------------

def encode(v):
    """torch.load's result as JSON: dicts as [key, value] pairs, tensors as dtype, shape and
    the sha256 of their contiguous little-endian bytes, ints beyond 2^53 as strings."""
    if isinstance(v, torch.Tensor):
        # hashed as resnet-ts hands tensors out: floats as float32, int64 as is, other ints as int32
        c = v.contiguous()
        out = c.to(torch.float32) if c.is_floating_point() else c if c.dtype == torch.int64 else c.to(torch.int32)
        return {'tensor': str(c.dtype).replace('torch.', ''), 'shape': list(c.shape),
                'sha256': hashlib.sha256(out.numpy().tobytes()).hexdigest()}
    if isinstance(v, dict):
        return {'dict': [[encode(k), encode(x)] for k, x in v.items()], 'ordered': isinstance(v, collections.OrderedDict)}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2 ** 53 - 1 else {'int': str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {'float': repr(v)}
    raise TypeError(type(v))


def check_and_record(name, data, intended, notes):
    path = os.path.join(OUT, name)
    with open(path, 'wb') as f:
        f.write(data)
    got = torch.load(path, map_location='cpu')  # PyTorch's own, unrestricted
    assert_same(got, intended, name)
    try:
        torch.load(path, map_location='cpu', weights_only=True)
        refused = None
    except Exception as e:  # noqa: BLE001 - recorded, not handled
        refused = 'WeightsUnpickler error: ' + str(e).split('WeightsUnpickler error: ')[-1].strip()[:200]
    with open(os.path.join(OUT, name.rsplit('.', 1)[0] + '.expected.json'), 'w') as f:
        json.dump({'file': name, 'torch': torch.__version__, 'notes': notes,
                   'weights_only_refuses': refused, 'value': encode(got)}, f, indent=1)
        f.write('\n')
    return got


def assert_same(got, want, where):
    if isinstance(want, torch.Tensor):
        assert isinstance(got, torch.Tensor) and got.dtype == want.dtype and got.shape == want.shape, where
        assert got.contiguous().numpy().tobytes() == want.contiguous().numpy().tobytes(), where
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want), (where, list(got)[:3], list(want)[:3])
        for k in want:
            assert_same(got[k], want[k], f'{where}.{k}')
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f'{where}.{i}')
    else:
        assert type(got) is type(want) and got == want, (where, got, want)


# ---- the fixtures ---------------------------------------------------------------------

def resnet20_state_dict():
    """akamaster/pytorch_resnet_cifar10's resnet20 names (PyTorch 0.3: no num_batches_tracked),
    DataParallel's 'module.' on each; tensors are views into two shared storages so the file
    stays small (weights ~N(0, 0.05), BN statistics in [0.5, 1.5))."""
    g = torch.Generator().manual_seed(20)
    w = torch.randn(36864 + 997, generator=g) * 0.05
    bn = torch.rand(2000, generator=g) + 0.5
    keys = json.load(open(KEYS))['cifar']['resnet20']['keys']
    sd = collections.OrderedDict()
    for i, (k, shape) in enumerate(keys):
        if k.endswith('num_batches_tracked'):
            continue
        n = math.prod(shape)
        src = w if k.endswith('weight') and len(shape) > 1 else bn
        off = (i * 131) % (src.numel() - n + 1)
        sd['module.' + k] = src[off:off + n].view(shape)
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}

    # 1. akamaster-style resnet20 training checkpoint: _rebuild_tensor, module. prefixes,
    #    'linear' head, a float best_prec1 (BINFLOAT), ints, a string and an optimizer dict.
    sd = resnet20_state_dict()
    ids = [140234567890 + 8 * i for i in range(3)]
    obj = {'epoch': 200, 'arch': 'resnet20', 'state_dict': sd, 'best_prec1': 91.73,
           'optimizer': {'state': {ids[0]: {'momentum_buffer': torch.zeros(2)}},
                         'param_groups': [{'lr': 0.001, 'momentum': 0.9, 'dampening': 0, 'weight_decay': 0.0001,
                                           'nesterov': False, 'params': ids}]},
           'history': (0.1, -2 ** 70, [1, 2, 3]), 'note': None}
    files['resnet20_akamaster.th'] = check_and_record('resnet20_akamaster.th', legacy_bytes(obj), obj,
        'akamaster/pytorch_resnet_cifar10 layout: torch._utils._rebuild_tensor (4 args), module. prefixes, linear head, '
        'best_prec1 as BINFLOAT, an optimizer state dict; tensors share two storages at offsets')

    # 2. Saved on Windows: sys_info says long is 4 bytes; LongStorage elements are still 8.
    g = torch.Generator().manual_seed(4)
    win = collections.OrderedDict([('conv1.weight', torch.randn(2, 1, 3, 3, generator=g)),
                                   ('bn1.num_batches_tracked', torch.tensor(2 ** 33 + 5)),
                                   ('counts', torch.tensor([-1, 0, 2 ** 40, -(2 ** 62)], dtype=torch.int64)),
                                   ('half', torch.tensor([1.5, -0.25], dtype=torch.float16)),
                                   ('ints', torch.tensor([7, -8], dtype=torch.int32))])
    b = legacy_bytes(win)
    files['windows_long4.th'] = check_and_record('windows_long4.th', with_sys_info(b, sys_info(long=4)), win,
        "sys_info type_sizes long=4 (a Windows save); torch.load ignores sys_info: LongStorage elements are 8 bytes")

    # 3. Big-endian sys_info. (a) element counts little-endian (what torch.load reads);
    #    (b) element counts big-endian, as a big-endian machine's writer put them (storage
    #    elements were little-endian either way); torch.load refuses (b) ("storage has wrong
    #    size"), so (b)'s expected values are (a)'s: the same tensors.
    be = collections.OrderedDict([('w', torch.tensor([1.0, -2.0, 3.5e-3, float('inf')])),
                                  ('n', torch.tensor([1, 2 ** 40], dtype=torch.int64))])
    b = legacy_bytes(be)
    files['big_endian.th'] = check_and_record('big_endian.th', with_sys_info(b, sys_info(little=False)), be,
        'sys_info little_endian=False, element counts and elements little-endian: torch.load reads it as any other')
    native = with_sys_info(b, sys_info(little=False), {4: 4, 2: 8})
    with open(os.path.join(OUT, 'big_endian_sizes.th'), 'wb') as f:
        f.write(native)
    try:
        torch.load(os.path.join(OUT, 'big_endian_sizes.th'), map_location='cpu')
        refused_be = None
    except Exception as e:  # noqa: BLE001
        refused_be = str(e).strip()[:200]
    files['big_endian_sizes.th'] = refused_be

    # 4. Python 2.7 + PyTorch 0.3 on a GPU: SHORT_BINSTRING/BINSTRING strs, INT text for
    #    64-bit ints, LONG1 for a Python 2 long, OrderedDict reduced to a list of pairs,
    #    torch.cuda.FloatStorage at cuda:0, memoised strings and globals (BINPUT/BINGET).
    g = torch.Generator().manual_seed(2)
    wt = torch.randn(3, 2, generator=g)
    bias = torch.randn(3, generator=g)
    idx = torch.tensor([5, -6, 2 ** 50], dtype=torch.int64)
    k_w, k_b, k_i = '94254508349216', '94254508349568', '94254508350000'
    t_w = OldTensor('torch.cuda', 'FloatStorage', k_w, 'cuda:0', 6, 0, (3, 2), (2, 1))
    t_wt = OldTensor('torch.cuda', 'FloatStorage', k_w, 'cuda:0', 6, 0, (2, 3), (1, 2))  # a transposed view
    t_b = OldTensor('torch.cuda', 'FloatStorage', k_b, 'cuda:0', 3, 1, (2,), (1,))     # offset 1
    t_i = OldTensor('torch', 'LongStorage', k_i, 'cpu', 3, 0, (3,), (1,))
    sd2 = collections.OrderedDict([('module.fc.weight', t_w), ('module.fc.bias', t_b), ('module.fc_t', t_wt), ('module.idx', t_i)])
    obj2 = {'epoch': Py2Long(90), 'state_dict': sd2, 'best_prec1': 0.9, 'arch': 'resnet20',
            'args': 'Namespace(' + ', '.join(f'opt{i}={i}' for i in range(40)) + ')',
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [140234567890, 140234567898], 'nesterov': False}]},
            'neg': -(2 ** 40), 'flags': (True, None, 1.5, 'x')}
    data2 = py2_file(obj2, [(k_i, (3, idx.numpy().tobytes())), (k_b, (3, bias.numpy().tobytes())), (k_w, (6, wt.numpy().tobytes()))],
                     {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 8}})
    intended2 = {'epoch': 90, 'state_dict': collections.OrderedDict([
        ('module.fc.weight', wt), ('module.fc.bias', bias[1:3]), ('module.fc_t', wt.t()), ('module.idx', idx)]),
        'best_prec1': 0.9, 'arch': 'resnet20', 'args': obj2['args'], 'optimizer': obj2['optimizer'], 'neg': -(2 ** 40),
        'flags': (True, None, 1.5, 'x')}
    files['py2_cuda.th'] = check_and_record('py2_cuda.th', data2, intended2,
        'Python 2.7 + PyTorch 0.3 pickle (hand-assembled): SHORT_BINSTRING/BINSTRING, INT text, LONG1, '
        'OrderedDict([[k, v], ...]), torch.cuda.FloatStorage at cuda:0, a transposed view and an offset view')

    # 5. Storage views (PyTorch < 0.4): a persistent id whose view_metadata is (view_key,
    #    offset, size); _legacy_load makes the view `size` elements of the root from `offset`.
    root = torch.arange(10, dtype=torch.float32) * 1.25 - 3
    k_r = '94254508351000'
    view = ('94254508352000', 2, 5)
    t_a = OldTensor('torch', 'FloatStorage', k_r, 'cpu', 10, 1, (2, 2), (2, 1), view)  # view elements 1..4
    t_c = OldTensor('torch', 'FloatStorage', k_r, 'cpu', 10, 0, (5,), (1,), view)      # the whole view
    t_r = OldTensor('torch', 'FloatStorage', k_r, 'cpu', 10, 0, (10,), (1,))           # the root itself
    sd5 = collections.OrderedDict([('a', t_a), ('c', t_c), ('root', t_r)])
    data5 = py2_file(sd5, [(k_r, (10, root.numpy().tobytes()))],
                     {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 8}})
    intended5 = collections.OrderedDict([('a', root[3:7].view(2, 2)), ('c', root[2:7]), ('root', root)])
    check_and_record('storage_view.th', data5, intended5,
        'storage views of PyTorch < 0.4: persistent ids with view_metadata (view_key, offset, size)')

    # 6. torch.save(..., pickle_protocol=4) in the legacy format (PyTorch 1.x): PROTO 4 and
    #    FRAMEs in each of its pickles, SHORT_BINUNICODE, MEMOIZE; made by torch itself.
    p4 = collections.OrderedDict([('fc.weight', torch.tensor([[0.5, -1.0]])), ('fc.bias', torch.tensor([2.0]))])
    buf = io.BytesIO()
    torch.save({'state_dict': p4, 'best_acc1': 0.75}, buf, _use_new_zipfile_serialization=False, pickle_protocol=4)
    check_and_record('protocol4.th', buf.getvalue(), {'state_dict': p4, 'best_acc1': 0.75},
        'torch.save(pickle_protocol=4, _use_new_zipfile_serialization=False): protocol 4 pickles with FRAMEs')

    with open(os.path.join(OUT, 'README.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'made_by': 'scripts/make_legacy_fixtures.py',
                   'big_endian_sizes.th': {'same_tensors_as': 'big_endian.th', 'torch_load_refuses': files['big_endian_sizes.th']},
                   'files': sorted(set(os.listdir(OUT)) | {'README.json'})}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
