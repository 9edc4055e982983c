#!/usr/bin/python3
"""PyTorch checkpoint fixtures for test/pth.test.ts and test/pickle.test.ts (Debian's
python3-torch; never a runtime dependency). Writes small files to test/fixtures/pth/:
a state dict saved the zip way and the legacy way, a wrapped DataParallel checkpoint, one
tensor per dtype plus strided views, a TorchScript archive, a whole pickled module and
pickles that ask for os.system / builtins.eval; expected values next to them as
safetensors (F32 for floats, I64 for integers, written here by hand).
Run: /usr/bin/python3 scripts/make_pth_fixtures.py
"""
import collections
import io
import json
import os
import pickle
import struct
import zipfile

import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pth')


def write_safetensors(path, tensors):
    """The safetensors format by hand (python3-safetensors is not in Debian 12)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.is_floating_point():
            t, dtype = t.to(torch.float32), 'F32'
        else:
            t, dtype = t.to(torch.int64), 'I64'
        b = t.numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


def small_state_dict():
    """A torchvision-shaped state dict of a tiny basic-block net (names as torchvision's)."""
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()

    def bn(prefix, c):
        sd[prefix + '.weight'] = torch.rand(c, generator=g) + 0.5
        sd[prefix + '.bias'] = torch.randn(c, generator=g)
        sd[prefix + '.running_mean'] = torch.randn(c, generator=g)
        sd[prefix + '.running_var'] = torch.rand(c, generator=g) + 0.5
        sd[prefix + '.num_batches_tracked'] = torch.tensor(123456789012)

    sd['conv1.weight'] = torch.randn(4, 3, 3, 3, generator=g)
    bn('bn1', 4)
    sd['layer1.0.conv1.weight'] = torch.randn(4, 4, 3, 3, generator=g)
    bn('layer1.0.bn1', 4)
    sd['layer1.0.downsample.0.weight'] = torch.randn(4, 4, 1, 1, generator=g)
    bn('layer1.0.downsample.1', 4)
    sd['fc.weight'] = torch.randn(3, 4, generator=g)
    sd['fc.bias'] = torch.tensor([0.0, -0.0, float('inf')])
    return sd


def dtypes_dict():
    g = torch.Generator().manual_seed(11)
    base = torch.randn(3, 5, generator=g)
    shared = torch.arange(24, dtype=torch.float32)
    d = collections.OrderedDict()
    d['f32'] = base.clone()
    d['f64'] = base.double() * 1.000000001
    d['f16'] = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-5, 5.96e-8, 3.0e-6, float('inf'), float('-inf')], dtype=torch.float16)
    d['bf16'] = (base * 100).to(torch.bfloat16)
    d['i64'] = torch.tensor([0, -1, 2 ** 40, -(2 ** 62), 2 ** 63 - 1], dtype=torch.int64)
    d['i32'] = torch.tensor([0, -1, 2 ** 31 - 1, -(2 ** 31)], dtype=torch.int32)
    d['u8'] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    d['bool'] = torch.tensor([True, False, True])
    d['transposed'] = base.t()  # stride (1, 5), non-contiguous
    d['view_offset'] = shared[5:17].view(3, 4)  # storage offset 5, shares storage with the next two
    d['view_strided'] = shared.view(4, 6)[1:, ::2]  # offset 6, stride (6, 2)
    d['whole'] = shared
    d['scalar'] = torch.tensor(3.25)
    d['empty'] = torch.zeros(0, 3)
    return d


def raw_zip(path, files):
    """A STORED zip with the given (name, bytes) entries (to wrap hand-made pickles)."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for name, data in files:
            z.writestr(name, data)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * 2


class Payload:
    def __reduce__(self):
        return (eval, ('1+1',))


def main():
    os.makedirs(OUT, exist_ok=True)
    p = lambda name: os.path.join(OUT, name)
    sd = small_state_dict()
    torch.save(sd, p('small.pth'))
    torch.save(sd, p('small_legacy.pth'), _use_new_zipfile_serialization=False)
    torch.save(sd, p('small_p4.pth'), pickle_protocol=4)  # FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL
    # A real module's state_dict carries _metadata: the pickle BUILDs the OrderedDict.
    torch.manual_seed(5)
    tiny = Tiny()
    torch.save(tiny.state_dict(), p('module_state_dict.pth'))
    write_safetensors(p('module_state_dict.expected.safetensors'), tiny.state_dict())
    write_safetensors(p('small.expected.safetensors'), sd)

    wrapped = {'epoch': 90, 'arch': 'resnet18', 'best_prec1': 69.758,
               'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in sd.items())}
    torch.save(wrapped, p('wrapped.pth'))
    torch.save(wrapped, p('wrapped_legacy.pth'), _use_new_zipfile_serialization=False)

    d = dtypes_dict()
    torch.save(d, p('dtypes.pth'))
    torch.save(d, p('dtypes_legacy.pth'), _use_new_zipfile_serialization=False)
    write_safetensors(p('dtypes.expected.safetensors'), d)

    torch.jit.save(torch.jit.script(Tiny()), p('torchscript.pt'))
    torch.save(Tiny(), p('whole_model.pth'))  # a pickled nn.Module: refused by name

    # Payloads: GLOBAL os.system + REDUCE (protocol 2), STACK_GLOBAL builtins.eval (protocol 4),
    # and a tensor pickled with plain pickle (torch.storage._load_from_bytes).
    evil_os = b'\x80\x02cos\nsystem\nX\x0c\x00\x00\x00touch /tmp/x\x85R.'
    evil_eval = pickle.dumps(Payload(), protocol=4)  # STACK_GLOBAL builtins eval
    with open(p('os_system.pkl'), 'wb') as f:
        f.write(evil_os)
    with open(p('builtins_eval.pkl'), 'wb') as f:
        f.write(evil_eval)
    with open(p('load_from_bytes.pkl'), 'wb') as f:
        f.write(pickle.dumps(torch.zeros(2), protocol=2))
    raw_zip(p('os_system.pth'), [('evil/data.pkl', evil_os), ('evil/version', b'3\n')])

    meta = {'torch': torch.__version__, 'files': sorted(os.listdir(OUT))}
    with open(p('README.json'), 'w') as f:
        json.dump(meta, f, indent=1)
    for name in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(p(name)):8d}  {name}')


if __name__ == '__main__':
    main()
