// Every TSDoc @example of the public API compiles: the examples of every export of
// src/index.ts (and of the members of exported classes) are pasted, each into its own async
// function, into one strict TypeScript program that imports the whole API from 'resnet-ts'
// (mapped to src/index.ts), with a short prelude declaring the free names examples use
// (`model`, `x`, `train` ...). A type error is reported as the example's export and file, so
// an example that goes stale fails here, and so does an export without an example.

import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const INDEX = join(ROOT, 'src/index.ts');
const VIRTUAL = join(ROOT, 'test/__api_examples__.ts');

// The free names examples may use, as a reader would assume them.
const PRELUDE = `
declare const model: ResNet;
declare const net: ResNet;
declare const x: Tensor;
declare const features: Tensor;
declare const logits: Tensor;
declare const train: ArrayDataset;
declare const test: ArrayDataset;
declare const ds: ArrayDataset;
declare const files: string[];
declare const loader: DataLoader;
declare const sd: StateDict;
declare const stats: DatasetStats;
declare const epochs: number;
declare const epoch: number;
declare const seed: number;
declare const i: number;
declare const img: ImageRecord;
declare const meta: CheckpointMeta;
declare const optimizer: SGD;
declare const tensors: Map<string, NamedArray>;
declare const results: PredictResult[];
declare const rows: FeatureResult[];
declare const y: Tensor;
declare const labels: Tensor;
declare const w: Tensor;
declare const b: Tensor;
declare const bytes: Uint8Array;
declare const embeddings: Float32Array;
declare const n: number;
declare const std: number[];
declare const rng: Random;
declare const ort: { InferenceSession: { create(model: Uint8Array): Promise<unknown> } };
declare function step(x: Float32Array, y: Int32Array, shape: [number, number, number, number]): void;
`;

interface Example { name: string; file: string; code: string }

function configOptions(): ts.CompilerOptions {
  const cfg = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, ROOT);
  return {
    ...parsed.options, strict: true, noEmit: true, declaration: false, sourceMap: false, rootDir: undefined, outDir: undefined,
    paths: { 'resnet-ts': ['./src/index.ts'] }, baseUrl: ROOT,
  };
}

function exampleTexts(node: ts.Node): string[] {
  return ts.getJSDocTags(node)
    .filter((t) => t.tagName.text === 'example')
    .map((t) => (typeof t.comment === 'string' ? t.comment : ts.getTextOfJSDocComment(t.comment) ?? ''))
    .map((s) => s.split('\n').filter((l) => !/^\s*import\s.*from\s+['"]resnet-ts['"];?\s*$/.test(l)).join('\n'))
    .filter((s) => s.trim() !== '');
}

/** The public exports (name -> declarations) and their examples, from the source program. */
function collect(program: ts.Program): { exports: Map<string, ts.Declaration[]>; examples: Example[] } {
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(INDEX)!)!;
  const exports = new Map<string, ts.Declaration[]>();
  const examples: Example[] = [];
  for (const exp of checker.getExportsOfModule(mod)) {
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    const decls = sym.declarations ?? [];
    exports.set(exp.name, decls);
    for (const d of decls) {
      const file = relative(ROOT, d.getSourceFile().fileName);
      // A variable's TSDoc sits on its statement; getJSDocTags finds it from the declaration.
      for (const code of exampleTexts(d)) examples.push({ name: exp.name, file, code });
      if (ts.isClassDeclaration(d) || ts.isInterfaceDeclaration(d)) {
        for (const m of d.members) {
          const member = m.name && ts.isIdentifier(m.name) ? m.name.text : ts.isConstructorDeclaration(m) ? 'constructor' : '?';
          for (const code of exampleTexts(m)) examples.push({ name: `${exp.name}.${member}`, file, code });
        }
      }
    }
  }
  return { exports, examples };
}

test('every @example of the public API compiles against resnet-ts (strict)', () => {
  const options = configOptions();
  const base = ts.createProgram([INDEX], options);
  const { exports, examples } = collect(base);
  assert.ok(examples.length > 80, `found only ${examples.length} examples`);

  const names = [...exports.keys()].filter((n) => n !== 'default');
  const lines: string[] = [`import { ${names.join(', ')} } from 'resnet-ts';`, ...PRELUDE.split('\n')];
  const spans: { start: number; end: number; ex: Example }[] = [];
  examples.forEach((ex, k) => {
    lines.push(`export async function __example${k}(): Promise<void> {`);
    const start = lines.length;
    lines.push(...ex.code.split('\n'));
    spans.push({ start, end: lines.length, ex });
    lines.push('}');
  });
  const text = lines.join('\n');
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (f === VIRTUAL ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (f) => f === VIRTUAL || fileExists(f);
  const program = ts.createProgram({ rootNames: [VIRTUAL], options, host, oldProgram: base });
  const sf = program.getSourceFile(VIRTUAL)!;
  const problems = ts.getPreEmitDiagnostics(program).map((d) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n')[0];
    if (d.file !== sf || d.start === undefined) return `${d.file ? relative(ROOT, d.file.fileName) : '?'}: TS${d.code} ${msg}`;
    const line = sf.getLineAndCharacterOfPosition(d.start).line;
    const span = spans.find((s) => line >= s.start && line < s.end);
    if (!span) return `(prelude, line ${line + 1}): TS${d.code} ${msg}`;
    return `${span.ex.file}: @example of ${span.ex.name}, line ${line - span.start + 1} (\`${lines[line].trim()}\`): TS${d.code} ${msg}`;
  });
  assert.deepEqual(problems, [], `${problems.length} stale example(s):\n${problems.join('\n')}`);
});

test('every public export has an @example', () => {
  const { exports } = collect(ts.createProgram([INDEX], configOptions()));
  const missing = [...exports].filter(([, decls]) => !decls.some((d) => exampleTexts(d).length > 0)).map(([name]) => name);
  assert.deepEqual(missing, [], `exports without a TSDoc @example (add one): ${missing.join(', ')}`);
});
