// Hostile output paths (issue 18): every case is run as a child process of the compiled CLI
// (`npm run build` first) under an address-space cap and a time limit, and asserts the exit
// status, a one-line stderr without a stack trace, what was written and what was left alone.
// Paths are made in a temp dir: FIFOs, sockets, a character device (root only), directories,
// symlinks (good, dangling, to a FIFO), missing and unwritable directories, a file in the
// way. Also: convert's float64 narrowing, the features pair check, the CLI's last-resort
// handler (internal error, exit 2) and EPIPE on stdout.

import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CheckpointError, DataError, OutputError } from '../src/errors.js';
import { checkOutputPath, writeFileAtomic } from '../src/io/atomic.js';
import { readFeatures } from '../src/infer/write_features.js';
import { createModel } from '../src/models/index.js';
import { CHECKPOINT_FORMAT, saveCheckpoint, type CheckpointMeta } from '../src/train/checkpoint.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'dist/cli/main.js');
const FIX = join(ROOT, 'test/fixtures/predict');
const NET = ['--arch', 'resnet18', '--width', '0.125', '--weights', join(FIX, 'resnet18_w8.safetensors')];
const IMAGE = join(FIX, 'images', 'f_150x100.jpg');
const IMAGE2 = join(FIX, 'images', 'sq_224.jpg');
/** Address-space cap of every child: V8 and oneDNN reserve address space, and 2 GB is too
 *  little for the native backend's threads here; 4 GB leaves room and still bounds a runaway. */
const AS_CAP = '--as=4000000000';
const ROOT_USER = process.getuid?.() === 0;

const tmp = mkdtempSync(join(tmpdir(), 'resnet-hostile-out-'));
chmodSync(tmp, 0o755); // the unwritable-directory case runs a child as nobody
after(() => rmSync(tmp, { recursive: true, force: true }));
let seq = 0;
/** A fresh directory for one case. */
function box(): string {
  const d = join(tmp, `c${seq++}`);
  mkdirSync(d, { mode: 0o755 });
  return d;
}

interface Run { status: number | null; signal: string | null; stdout: string; stderr: string }
function cli(args: string[], opts: SpawnSyncOptions = {}): Run {
  const r = spawnSync('prlimit', [AS_CAP, '--', process.execPath, BIN, ...args], {
    cwd: tmp, encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20, ...opts,
    env: { ...process.env, RESNET_NUM_THREADS: '1', ...(opts.env ?? {}) },
  });
  assert.equal(r.error, undefined, `spawn: ${r.error}`);
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Exit 1 with exactly one stderr line `resnet: ...` matching `re`, no stack. */
function failsCleanly(r: Run, re: RegExp): void {
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one stderr line expected:\n${r.stderr}`);
  assert.match(lines[0], /^resnet: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'a stack trace');
}

function kind(p: string): string {
  const s = lstatSync(p);
  return s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : s.isCharacterDevice() ? 'char' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'link' : s.isFile() ? 'file' : '?';
}

function mkfifo(p: string): string {
  const r = spawnSync('mkfifo', [p]);
  assert.equal(r.status, 0, 'mkfifo');
  return p;
}

/** A Unix socket file (python binds it and exits; the socket file stays). */
function mksock(p: string): string {
  const r = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', p]);
  assert.equal(r.status, 0, `socket: ${r.stderr}`);
  return p;
}

/** A safetensors file by hand: 8-byte little-endian header length, JSON header, data. */
function safetensors(path: string, tensors: Record<string, { dtype: string; shape: number[]; bytes: Buffer }>): string {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    parts.push(t.bytes);
    off += t.bytes.length;
  }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(h), ...parts]));
  return path;
}
function f64(...v: number[]): Buffer {
  const b = Buffer.alloc(8 * v.length);
  v.forEach((x, i) => b.writeDoubleLE(x, 8 * i));
  return b;
}
function f32(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return b;
}

const EXPORT = ['export', '--arch', 'resnet20', '--random-init'];

describe('export: non-regular outputs are refused before any work and left alone', () => {
  test('FIFO, socket, directory, character device: exit 1, one line naming what it is; the node is untouched', () => {
    const d = box();
    failsCleanly(cli([...EXPORT, mkfifo(join(d, 'fifo.onnx'))]), /cannot write .*fifo\.onnx: it is a FIFO \(named pipe\); resnet writes regular files only/);
    assert.equal(kind(join(d, 'fifo.onnx')), 'fifo');
    failsCleanly(cli([...EXPORT, mksock(join(d, 'sock.onnx'))]), /sock\.onnx: it is a socket/);
    assert.equal(kind(join(d, 'sock.onnx')), 'socket');
    mkdirSync(join(d, 'dir.onnx'));
    failsCleanly(cli([...EXPORT, join(d, 'dir.onnx')]), /dir\.onnx: it is a directory; give a file inside it/);
    assert.equal(kind(join(d, 'dir.onnx')), 'dir');
    assert.deepEqual(readdirSync(join(d, 'dir.onnx')), []);
    if (ROOT_USER) {
      // Our own device node (the numbers of /dev/null): a real device is never put at risk.
      assert.equal(spawnSync('mknod', [join(d, 'null'), 'c', '1', '3']).status, 0, 'mknod');
      failsCleanly(cli([...EXPORT, join(d, 'null')]), /null: it is a character device/);
      assert.equal(kind(join(d, 'null')), 'char');
    }
    // No temp file is left behind by any refusal.
    assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.tmp')), []);
  });

  test('a symlink is written through (the link stays a link, its target gets the bytes); dangling and FIFO targets are refused', () => {
    const d = box();
    writeFileSync(join(d, 'real.onnx'), 'old');
    symlinkSync('real.onnx', join(d, 'link.onnx'));
    const r = cli([...EXPORT, join(d, 'link.onnx'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(kind(join(d, 'link.onnx')), 'link');
    assert.equal(readlinkSync(join(d, 'link.onnx')), 'real.onnx');
    assert.equal(kind(join(d, 'real.onnx')), 'file');
    assert.ok(readFileSync(join(d, 'real.onnx')).length > 100_000, 'the target holds the model');

    symlinkSync('nowhere.onnx', join(d, 'dangling.onnx'));
    failsCleanly(cli([...EXPORT, join(d, 'dangling.onnx')]), /dangling\.onnx: it is a symlink whose target does not exist \(dangling\)/);
    assert.equal(kind(join(d, 'dangling.onnx')), 'link');
    assert.equal(existsSync(join(d, 'nowhere.onnx')), false);

    symlinkSync(mkfifo(join(d, 'fifo')), join(d, 'tofifo.onnx'));
    failsCleanly(cli([...EXPORT, join(d, 'tofifo.onnx')]), /tofifo\.onnx: its symlink target .*fifo is a FIFO/);
    assert.equal(kind(join(d, 'fifo')), 'fifo');

    symlinkSync('loop2.onnx', join(d, 'loop1.onnx'));
    symlinkSync('loop1.onnx', join(d, 'loop2.onnx'));
    failsCleanly(cli([...EXPORT, join(d, 'loop1.onnx')]), /loop1\.onnx: it is a symlink loop/);
  });

  test('missing directory, a file in the way (the cause, not a cleanup error), unwritable directory', () => {
    const d = box();
    failsCleanly(cli([...EXPORT, join(d, 'no', 'x.onnx')]), /cannot write .*no\/x\.onnx: no directory .*no \(ENOENT\)/);
    writeFileSync(join(d, 'file'), 'keep');
    failsCleanly(cli([...EXPORT, join(d, 'file', 'x.onnx')]), /cannot write .*file\/x\.onnx: .*file is a file, not a directory \(ENOTDIR\)/);
    failsCleanly(cli([...EXPORT, join(d, 'file', 'deeper', 'x.onnx')]), /file\/deeper\/x\.onnx: .*\/file is a file, not a directory \(ENOTDIR\)/);
    assert.equal(readFileSync(join(d, 'file'), 'utf8'), 'keep');
    const ro = join(d, 'ro');
    mkdirSync(ro, { mode: 0o555 });
    chmodSync(ro, 0o555);
    // Root ignores directory permissions: the child runs as nobody then.
    const asUser: SpawnSyncOptions = ROOT_USER ? { uid: 65534, gid: 65534 } : {};
    failsCleanly(cli([...EXPORT, join(ro, 'x.onnx')], asUser), /ro\/x\.onnx: directory .*ro is not writable: EACCES \(permission denied\)/);
    assert.deepEqual(readdirSync(ro), []);
  });

  test('an existing good output survives a failed run byte for byte', () => {
    const d = box();
    const out = join(d, 'good.onnx');
    assert.equal(cli([...EXPORT, out]).status, 0);
    const before = readFileSync(out);
    failsCleanly(cli(['export', '--arch', 'resnet20', '--weights', join(d, 'missing.safetensors'), out]), /missing\.safetensors: no such weights file/);
    assert.ok(readFileSync(out).equals(before));
  });
});

describe('convert', () => {
  test('float64 narrowing: said in the notes (count, largest change); overflow refused unless --allow-narrowing; a good output survives', () => {
    const d = box();
    const ok = safetensors(join(d, 'ok.safetensors'), { w: { dtype: 'F64', shape: [3], bytes: f64(0.1, 1e-50, 1) }, n: { dtype: 'I64', shape: [1], bytes: Buffer.alloc(8, 0) } });
    const big = safetensors(join(d, 'big.safetensors'), { w: { dtype: 'F64', shape: [2], bytes: f64(1e300, -2) }, b: { dtype: 'F32', shape: [1], bytes: f32(2) } });
    const out = join(d, 'out.safetensors');
    let r = cli(['convert', ok, out, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { notes: string[]; f32: number };
    assert.equal(j.f32, 1);
    assert.ok(j.notes.some((n) => /^narrowed 1 float64 tensor\(s\) to F32: 2 value\(s\) rounded, largest change .* absolute, 1\.00 relative, 1 became 0$/.test(n)), j.notes.join('; '));
    r = cli(['convert', ok, join(d, 'out.pth')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /narrowed 1 float64 tensor\(s\) to F32/);
    const before = readFileSync(out);

    failsCleanly(cli(['convert', big, out]), /convert: .*big\.safetensors: 1 float64 value\(s\) do not fit float32 and would become inf \(e\.g\. 1e\+300 in 'w'.*--allow-narrowing/);
    assert.ok(readFileSync(out).equals(before), 'the earlier output is byte-identical');

    r = cli(['convert', big, join(d, 'inf.safetensors'), '--allow-narrowing', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 became ±inf \(--allow-narrowing\)/);
    // A PyTorch-made .pth with a float64 tensor (torch.save of torch.float64 values) says so too.
    r = cli(['convert', join(ROOT, 'test/fixtures/pth/dtypes.pth'), join(d, 'dtypes.safetensors'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok((JSON.parse(r.stdout) as { notes: string[] }).notes.some((n) => /^narrowed 1 float64 tensor\(s\) to F32: \d+ value\(s\) rounded/.test(n)), r.stdout);
    // A float32-only input is bit-exact and says nothing about narrowing.
    const plain = safetensors(join(d, 'plain.safetensors'), { w: { dtype: 'F32', shape: [2], bytes: f32(0.1, 3) } });
    r = cli(['convert', plain, join(d, 'plain.pth'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { notes: string[] }).notes, []);
  });

  test('bad outputs are refused before the input is read: FIFO, symlink kept as a link, missing dir, ENOTDIR', () => {
    const d = box();
    const input = safetensors(join(d, 'in.safetensors'), { w: { dtype: 'F32', shape: [2], bytes: f32(1, 2) } });
    failsCleanly(cli(['convert', input, mkfifo(join(d, 'f.pth'))]), /convert: cannot write .*f\.pth: it is a FIFO/);
    assert.equal(kind(join(d, 'f.pth')), 'fifo');
    failsCleanly(cli(['convert', input, join(d, 'no', 'x.safetensors')]), /convert: cannot write .*no\/x\.safetensors: no directory .*\(ENOENT\)/);
    writeFileSync(join(d, 'file'), '');
    failsCleanly(cli(['convert', input, join(d, 'file', 'x.safetensors')]), /file is a file, not a directory \(ENOTDIR\)/);
    // The output is checked before the input: a missing input with a bad output names the output.
    failsCleanly(cli(['convert', join(d, 'absent.pth'), join(d, 'no', 'x.pth')]), /no\/x\.pth: no directory/);
    writeFileSync(join(d, 'target.safetensors'), 'old');
    symlinkSync('target.safetensors', join(d, 'link.safetensors'));
    assert.equal(cli(['convert', input, join(d, 'link.safetensors')]).status, 0);
    assert.equal(kind(join(d, 'link.safetensors')), 'link');
    assert.notEqual(readFileSync(join(d, 'target.safetensors'), 'utf8'), 'old');
  });
});

describe('features', () => {
  test('a bad --out is refused before the model loads (one stderr line), for the .npy and for its file list', () => {
    const d = box();
    failsCleanly(cli(['features', ...NET, '--out', join(d, 'no', 'e.npy'), IMAGE]), /features: --out: cannot write .*no\/e\.npy: no directory/);
    writeFileSync(join(d, 'file'), '');
    failsCleanly(cli(['features', ...NET, '--out', join(d, 'file', 'e.jsonl'), IMAGE]), /file is a file, not a directory \(ENOTDIR\)/);
    mkfifo(join(d, 'e.npy.files.txt'));
    failsCleanly(cli(['features', ...NET, '--out', join(d, 'e.npy'), IMAGE]), /e\.npy\.files\.txt: it is a FIFO/);
    assert.equal(kind(join(d, 'e.npy.files.txt')), 'fifo');
    assert.equal(existsSync(join(d, 'e.npy')), false, 'nothing written when the pair cannot be');
    mkdirSync(join(d, 'dir.npy'));
    failsCleanly(cli(['features', ...NET, '--out', join(d, 'dir.npy'), IMAGE]), /dir\.npy: it is a directory/);
    const ro = join(d, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    failsCleanly(cli(['features', ...NET, '--out', join(ro, 'e.npy'), IMAGE], ROOT_USER ? { uid: 65534, gid: 65534 } : {}), /ro is not writable: EACCES/);
  });

  test('the .npy and its list are a checked pair: a list from another run is a "mixed pair"; a failed run leaves both files as they were', () => {
    const d = box();
    const a = join(d, 'a.npy');
    const b = join(d, 'b.npy');
    let r = cli(['features', ...NET, '--out', a, IMAGE]);
    assert.equal(r.status, 0, r.stderr);
    r = cli(['features', ...NET, '--out', b, IMAGE, IMAGE2]);
    assert.equal(r.status, 0, r.stderr);
    const got = readFeatures(b);
    assert.deepEqual(got.files, [IMAGE, IMAGE2]);
    assert.equal(got.shape[0], 2);
    // A reader of the list alone: the image paths, then one '#' line (numpy.loadtxt skips it).
    const lines = readFileSync(`${b}.files.txt`, 'utf8').trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), [IMAGE, IMAGE2]);
    assert.match(lines[2], /^# resnet-ts: rows of b\.npy, sha256 [0-9a-f]{64}, 2 rows$/);

    // b.npy with a's list, as a crash between the two renames would leave it.
    const listB = readFileSync(`${b}.files.txt`);
    copyFileSync(`${a}.files.txt`, `${b}.files.txt`);
    assert.throws(() => readFeatures(b), (e: Error) => e instanceof DataError && /b\.npy and .*b\.npy\.files\.txt are a mixed pair/.test(e.message));
    writeFileSync(`${b}.files.txt`, `${IMAGE}\n${IMAGE2}\n`); // no pairing line (by hand)
    assert.throws(() => readFeatures(b), /no '# resnet-ts: rows of \.\.\., sha256 \.\.\.' last line/);
    writeFileSync(`${b}.files.txt`, listB);

    // A run that fails after the inference (no image decodes) leaves the old pair byte-identical.
    const npyBefore = readFileSync(b);
    const junk = join(d, 'junk.png');
    writeFileSync(junk, 'not a png');
    r = cli(['features', ...NET, '--out', b, junk]);
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.match(r.stderr.trimEnd().split('\n').at(-1)!, /^resnet: .*no features to write/);
    assert.ok(readFileSync(b).equals(npyBefore));
    assert.ok(readFileSync(`${b}.files.txt`).equals(listB));
    assert.deepEqual(readFeatures(b).files, [IMAGE, IMAGE2]);
  });
});

describe('the library writers', () => {
  test('writeFileAtomic and checkOutputPath: OutputError naming the path, nothing replaced', () => {
    const d = box();
    const fifo = mkfifo(join(d, 'f'));
    assert.throws(() => writeFileAtomic(fifo, [new Uint8Array([1])]), (e: Error) => e instanceof OutputError && e.errno === 'EINVAL' && /cannot write .*\/f: it is a FIFO/.test(e.message));
    assert.equal(kind(fifo), 'fifo');
    assert.throws(() => checkOutputPath(join(d, 'x', 'y'), 'what'), (e: Error) => e instanceof OutputError && e.errno === 'ENOENT' && e.message.startsWith('what: cannot write '));
    assert.throws(() => checkOutputPath(`${d}/`), /give a file name, not a directory/);
    writeFileSync(join(d, 'real'), 'a');
    symlinkSync('real', join(d, 'link'));
    assert.equal(writeFileAtomic(join(d, 'link'), [new TextEncoder().encode('b')]), join(d, 'real'));
    assert.equal(readFileSync(join(d, 'real'), 'utf8'), 'b');
    assert.equal(kind(join(d, 'link')), 'link');
  });

  test('saveCheckpoint onto a FIFO: a CheckpointError that says so; the FIFO stays', () => {
    const d = box();
    const model = createModel('resnet20', { inChannels: 1, numClasses: 2 });
    const meta = { format: CHECKPOINT_FORMAT, arch: 'resnet20', modelOptions: {}, epoch: 0, step: 0, loader: { seed: 0, epoch: 0, batch: 0 }, rng: { seed: 0 },
      partial: { lossSum: 0, wrong: 0, seen: 0, seconds: 0 }, best: null, plateau: null, norm: { mean: [0], std: [1] },
      input: { channels: 1, height: 8, width: 8, classes: [] }, lrs: [], config: {}, savedAt: '' } as CheckpointMeta;
    const fifo = mkfifo(join(d, 'last.safetensors'));
    try {
      assert.throws(() => saveCheckpoint(fifo, model, null, meta), (e: Error) => e instanceof CheckpointError && /cannot write the checkpoint \(EINVAL\); .*: it is a FIFO/.test(e.message));
      assert.equal(kind(fifo), 'fifo');
    } finally {
      model.dispose();
    }
  });
});

describe('the CLI last-resort handler', () => {
  /** Runs a module that installs the handler and then fails as `body` says. */
  function handler(body: string, env: Record<string, string> = {}): Run {
    const r = spawnSync('prlimit', [AS_CAP, '--', process.execPath, '--input-type=module', '-e',
      `import { installLastResort, failAndExit } from ${JSON.stringify(join(ROOT, 'dist/cli/last_resort.js'))};\ninstallLastResort();\n${body}`], {
      encoding: 'utf8', timeout: 30_000, env: { ...process.env, RESNET_DEBUG: '', ...env },
    });
    return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  test('an unexpected error (thrown, rejected, or caught by main) is "internal error", exit 2, no stack unless RESNET_DEBUG=1', () => {
    const want = /^resnet: internal error: TypeError: boom \(please report; RESNET_DEBUG=1 shows the stack\)\n$/;
    for (const body of ["throw new TypeError('boom');", "await Promise.reject(new TypeError('boom'));", "Promise.reject(new TypeError('boom'));",
      "setTimeout(() => { throw new TypeError('boom'); }, 1);", "failAndExit(new TypeError('boom'));"]) {
      const r = handler(body);
      assert.equal(r.status, 2, `${body}: ${r.stderr}`);
      assert.match(r.stderr, want, body);
    }
    const r = handler("throw new TypeError('boom\\nsecond line');", { RESNET_DEBUG: '1' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^resnet: internal error: TypeError: boom \(please report/);
    assert.match(r.stderr, /^\s+at /m, 'RESNET_DEBUG=1 prints the stack');
    assert.equal(handler("throw 'a string';").stderr, "resnet: internal error: a string (please report; RESNET_DEBUG=1 shows the stack)\n");
  });

  test('expected errors keep `resnet: MESSAGE` and exit 1 (ResnetError, and system errors naming their file)', () => {
    const errors = JSON.stringify(join(ROOT, 'dist/errors.js'));
    let r = handler(`const { DataError } = await import(${errors}); throw new DataError('x.png: not an image');`);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'resnet: x.png: not an image\n');
    r = handler("const fs = await import('node:fs'); fs.readFileSync('/nonexistent/resnet-ts-file');");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^resnet: ENOENT: no such file or directory, open '\/nonexistent\/resnet-ts-file'\n$/);
  });

  test('EPIPE on stdout (the reader went away) ends quietly with status 0', () => {
    for (const cmd of ['list', 'info']) {
      // `true` exits before node has started, so every write to the pipe fails with EPIPE.
      const r = spawnSync('bash', ['-c', `prlimit ${AS_CAP} -- "${process.execPath}" "${BIN}" ${cmd} | true; echo "status=\${PIPESTATUS[0]}"`], {
        encoding: 'utf8', timeout: 60_000, env: { ...process.env, RESNET_NUM_THREADS: '1' },
      });
      assert.equal(r.stdout, 'status=0\n', `${cmd}: ${r.stderr}`);
      assert.equal(r.stderr, '', cmd);
    }
  });
});
