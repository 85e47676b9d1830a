/**
 * The command line against bad input, run as a user runs it (a subprocess: node --import tsx
 * src/cli/main.ts): one table row per case of issue 10 and per case that already behaved, each
 * with the exit code, a pattern the message must match, and the files that must not exist (or
 * must be unchanged) afterwards. Bad models and cards are built here from bytes.
 *
 * Rows with `heavy` carry a run that would take minutes (`--nfe 300 --count 50`): the refusal must
 * come before the first model call, so the row fails by its time limit if it does not.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodePng, gridLayout } from '../src/io/png.js';
import { bundledModelPath, cardPathFor } from '../src/node/load-model.js';
import { encodeModel, type OnnxNode, type OnnxTensor } from '../src/model/onnx-graph/onnx-proto.js';
import { busyFor, spawnCli } from './helpers/cli.js';

const ROOT = join(import.meta.dirname, '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');
const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-fuzz-'));
after(() => {
  try {
    chmodSync(join(tmp, 'ro-dir'), 0o755);
  } catch {
    // not made
  }
  rmSync(tmp, { recursive: true, force: true });
});
const p = (name: string) => join(tmp, name);
const CORES = availableParallelism();

// ---------------------------------------------------------------------------------------------
// Fixtures, built from bytes.

const bundled = bundledModelPath();
const bundledCard = JSON.parse(readFileSync(cardPathFor(bundled), 'utf8')) as Record<string, unknown>;

function io(name: string, elemType: number, dims: (number | string)[]) {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

/** A model with the bundled U-Net's inputs (sample, float timestep, class labels) and the given body. */
function unetLike(nodes: OnnxNode[], initializer: OnnxTensor[], outDims: (number | string)[] = ['batch', 1, 28, 28], withLabels = true): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'fuzz',
      node: nodes,
      initializer,
      input: [io('sample', 1, ['batch', 1, 28, 28]), io('timestep', 1, ['batch']), ...(withLabels ? [io('class_labels', 7, ['batch'])] : [])],
      output: [io('out_sample', 1, outDims)],
    },
  });
}
const scalar = (name: string, v: number): OnnxTensor => ({ name, dims: [], dataType: 1, rawData: new Uint8Array(Float32Array.of(v).buffer) });

/** Write `name.onnx` and its card `name.json` (the bundled card, with `cardEdit` applied). */
function modelWithCard(name: string, bytes: Uint8Array, cardEdit: (c: Record<string, unknown>) => void = () => {}): string {
  writeFileSync(p(`${name}.onnx`), bytes);
  const card = structuredClone(bundledCard);
  cardEdit(card);
  writeFileSync(p(`${name}.json`), JSON.stringify(card));
  return p(`${name}.onnx`);
}

const bundledBytes = readFileSync(bundled);
let seed = 12345;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
modelWithCard('text', Buffer.from('this is not a protobuf at all '.repeat(40)));
modelWithCard('truncated', bundledBytes.subarray(0, Math.floor(bundledBytes.length * 0.4)));
modelWithCard('random', Uint8Array.from({ length: 64 * 1024 }, rnd));
// A valid ONNX model of another signature: y = Identity(x), x float [1, 3].
modelWithCard(
  'wrong',
  encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'wrong',
      node: [{ opType: 'Identity', input: ['x'], output: ['y'], name: 'id' }],
      input: [io('x', 1, [1, 3])],
      output: [io('y', 1, [1, 3])],
    },
  }),
);
// out_sample = sample · NaN.
modelWithCard('nan', unetLike([{ opType: 'Mul', input: ['sample', 'nan'], output: ['out_sample'], name: 'mul' }], [scalar('nan', NaN)]));
// out_sample = concat(sample, sample) along channels: [B, 2, 28, 28] (issue 10 item 2).
modelWithCard(
  'concat',
  unetLike(
    [{ opType: 'Concat', input: ['sample', 'sample'], output: ['out_sample'], name: 'cat', attribute: [{ name: 'axis', type: 2, i: 1 }] }],
    [],
    ['batch', 2, 28, 28],
  ),
);
// An unconditional model (ε = 0.1·x) with a card without classes (issue 10 item 7).
modelWithCard(
  'uncond',
  unetLike([{ opType: 'Mul', input: ['sample', 'k'], output: ['out_sample'], name: 'mul' }], [scalar('k', 0.1)], undefined, false),
  (c) => {
    for (const k of ['num_classes', 'null_label', 'class_names']) delete c[k];
    const inputs = c['inputs'] as Record<string, unknown>;
    delete inputs['class_labels'];
  },
);
// A model with no card next to it.
writeFileSync(p('nocard.onnx'), bundledBytes);
// Cards.
writeFileSync(p('card-broken.json'), '{ "name": "fashion-unet", ');
writeFileSync(p('card-nosched.json'), JSON.stringify({ ...bundledCard, scheduler_config: undefined }));
writeFileSync(p('card-warp9.json'), JSON.stringify({ ...bundledCard, default_solver: 'warp9' }));
// Policies.
writeFileSync(p('policy-broken.json'), '{ "format": "rediffuse-reuse-policy/1", "keyframes": [0, 1');
writeFileSync(
  p('policy-range.json'),
  JSON.stringify({ format: 'rediffuse-reuse-policy/1', calls: 4, keyframes: [0, 7], mixing: null, points: 'frdiff' }),
);
writeFileSync(
  p('policy-ddim.json'),
  JSON.stringify({
    format: 'rediffuse-reuse-policy/1',
    calls: 4,
    keyframes: [0, 2],
    mixing: null,
    points: 'deepcache',
    meta: { solver: 'ddim', nfe: 4 },
  }),
);
// Output targets.
mkdirSync(p('a-folder'));
mkdirSync(p('ro-dir'));
chmodSync(p('ro-dir'), 0o555);
writeFileSync(p('a-file'), 'plain file\n');
writeFileSync(p('readonly.png'), 'keep me\n');
chmodSync(p('readonly.png'), 0o444);
execFileSync('mkfifo', [p('fifo')]);
symlinkSync(p('missing-target.png'), p('dangling.png'));
symlinkSync('/dev/full', p('link-to-dev-full.png'));
writeFileSync(p('link-target.png'), 'old\n');
symlinkSync(p('link-target.png'), p('link.png'));

// ---------------------------------------------------------------------------------------------
// The runner.

interface Row {
  name: string;
  args: string[];
  /** Expected exit code. */
  code: number;
  /** stderr must match. */
  stderr?: RegExp;
  /** stdout must match. */
  stdout?: RegExp;
  /** stderr + stdout must not match. */
  not?: RegExp;
  /** Files (names in the shared tmp folder) that must not exist afterwards. */
  absent?: string[];
  /** Files whose bytes must be the same afterwards. */
  unchanged?: string[];
  /** The refusal must come before the first model call of an expensive run. */
  heavy?: boolean;
}

/** A run that takes minutes if it samples (so a refusal after sampling fails by the time limit). */
const HEAVY = ['--nfe', '300', '--count', '50', '--solver', 'ddim'];
/** The smallest real run: one class, one image, two calls. */
const TINY = ['--nfe', '2', '--count', '1', '--class', '0', '--solver', 'ddim', '--threads', '1'];

const rows: Row[] = [
  // Option values (already behaved).
  { name: 'unknown solver', args: ['sample', '--solver', 'warp9'], code: 1, stderr: /unknown solver "warp9": valid names are .*ddim/ },
  {
    name: 'unknown sampler name',
    args: ['sample', '--sampler', 'Warp 9'],
    code: 1,
    stderr: /--sampler: unknown sampler name "Warp 9": use one of .*dpm\+\+ 2m/,
  },
  {
    name: 'sampler name and solver together',
    args: ['sample', '--sampler', 'Euler a', '--solver', 'ddim'],
    code: 1,
    stderr: /'--sampler <name>' cannot be used with option '-s, --solver <name>'/,
  },
  { name: 'NFE 0', args: ['sample', '--nfe', '0'], code: 1, stderr: /--nfe.*expected an integer ≥ 1, got "0"/ },
  { name: 'NFE 1.5', args: ['sample', '--nfe', '1.5'], code: 1, stderr: /--nfe.*expected an integer ≥ 1, got "1\.5"/ },
  { name: 'NFE abc', args: ['sample', '--nfe', 'abc'], code: 1, stderr: /--nfe.*expected an integer ≥ 1, got "abc"/ },
  { name: 'k_h 4_1', args: ['sample', '--pfdiff', '4_1'], code: 1, stderr: /--pfdiff.*expected k_h with 1 ≤ h ≤ k ≤ 3.*got "4_1"/ },
  { name: 'k_h 2_3', args: ['sample', '--pfdiff', '2_3'], code: 1, stderr: /expected k_h with 1 ≤ h ≤ k ≤ 3.*got "2_3"/ },
  { name: 'k_h 0_0', args: ['sample', '--pfdiff', '0_0'], code: 1, stderr: /expected k_h.*got "0_0"/ },
  { name: 'k_h word', args: ['sample', '--pfdiff', 'two'], code: 1, stderr: /expected k_h.*got "two"/ },
  { name: 'unknown spacing', args: ['sample', '--spacing', 'cubic'], code: 1, stderr: /unknown spacing "cubic": use one of .*karras/ },
  { name: 'unknown class', args: ['sample', '--class', 'hat'], code: 1, stderr: /unknown class "hat": use an index or a name/ },
  { name: 'class out of range', args: ['sample', '--class', '12'], code: 1, stderr: /class 12 is out of range/ },
  { name: 'negative guidance', args: ['sample', '--guidance', '-3'], code: 1, stderr: /--guidance.*expected a number ≥ 0, got "-3"/ },
  { name: 'negative seed', args: ['sample', '--seed', '-5'], code: 1, stderr: /--seed.*expected an integer in 0\.\.4294967295, got "-5"/ },
  { name: 'count 0', args: ['sample', '--count', '0'], code: 1, stderr: /--count.*expected an integer in 1\.\.4096, got "0"/ },
  { name: 'count 5000', args: ['sample', '--count', '5000'], code: 1, stderr: /--count.*expected an integer in 1\.\.4096, got "5000"/ },
  { name: 'nfe and steps', args: ['sample', '--nfe', '3', '--steps', '4'], code: 1, stderr: /cannot be used with/ },
  { name: 'unknown option', args: ['sample', '--colour', 'red'], code: 1, stderr: /unknown option '--colour'/ },
  { name: 'pfdiff-quantity without pfdiff', args: ['sample', '--pfdiff-quantity', 'x0'], code: 1, stderr: /--pfdiff-quantity needs --pfdiff k_h/ },
  { name: 'FR interval 0', args: ['sample', '--fr-interval', '0'], code: 1, stderr: /--fr-interval.*expected an integer ≥ 1, got "0"/ },
  // --threads above the core count (item 14).
  { name: 'threads 0', args: ['sample', '--threads', '0'], code: 1, stderr: /--threads.*expected an integer in 1\.\.\d+/ },
  {
    name: 'threads 1000 (item 14)',
    args: ['sample', '--threads', '1000', ...HEAVY],
    code: 1,
    heavy: true,
    stderr: new RegExp(`1000 threads is more than the ${CORES} cores? .*pass at most --threads ${CORES}`),
  },
  {
    name: 'threads cores+1 (item 14)',
    args: ['sample', '--threads', String(CORES + 1)],
    code: 1,
    stderr: new RegExp(`${CORES + 1} threads is more than the ${CORES} core`),
  },
  { name: 'autofr threads 1000 (item 14)', args: ['autofr', '--threads', '1000'], code: 1, stderr: /1000 threads is more than/ },
  { name: 'bench threads 1000 (item 14)', args: ['bench', '--quick', '--threads', '1000'], code: 1, stderr: /1000 threads is more than/ },

  // Models (already behaved, except the output shape).
  { name: 'missing model', args: ['sample', '--model', p('missing.onnx')], code: 1, stderr: /missing\.onnx does not exist; pass --model/ },
  {
    name: 'corrupt ONNX (text)',
    args: ['sample', '--model', p('text.onnx'), ...TINY],
    code: 1,
    stderr: /text\.onnx is not a valid ONNX model.*re-export/,
  },
  { name: 'truncated ONNX', args: ['sample', '--model', p('truncated.onnx'), ...TINY], code: 1, stderr: /truncated\.onnx is not a valid ONNX model/ },
  { name: 'random-bytes ONNX', args: ['sample', '--model', p('random.onnx'), ...TINY], code: 1, stderr: /random\.onnx is not a valid ONNX model/ },
  { name: 'wrong ONNX (another signature)', args: ['sample', '--model', p('wrong.onnx'), ...TINY], code: 1, stderr: /wrong\.onnx.*(sample|input)/i },
  { name: 'NaN model', args: ['sample', '--model', p('nan.onnx'), ...TINY], code: 1, stderr: /nan\.onnx: the model returned NaN at timestep \d+/ },
  {
    name: 'model without a card',
    args: ['sample', '--model', p('nocard.onnx'), ...TINY],
    code: 1,
    stderr: /no model card for .*nocard\.onnx: pass --card/,
  },
  { name: 'output larger than the sample', args: ['sample', '--model', p('concat.onnx'), ...TINY], code: 1, stderr: /out_sample.*\[.*2, ?28, ?28\]/ },

  // Cards (already behaved, except naming the card for a bad default solver).
  { name: 'malformed card (broken JSON)', args: ['sample', '--card', p('card-broken.json'), ...TINY], code: 1, stderr: /card-broken\.json.*JSON/ },
  {
    name: 'card without scheduler_config',
    args: ['sample', '--card', p('card-nosched.json'), ...TINY],
    code: 1,
    stderr: /card-nosched\.json.*scheduler_config/,
  },
  {
    name: 'card with an unknown default solver',
    args: ['sample', '--card', p('card-warp9.json'), '--nfe', '2', '--count', '1', '--class', '0'],
    code: 1,
    stderr: /card.*default_solver.*warp9|warp9.*card/,
  },

  // Policies (already behaved).
  { name: 'missing policy', args: ['sample', '--fr-policy', p('nope.json'), ...TINY], code: 1, stderr: /nope\.json does not exist; pass --fr-policy/ },
  { name: 'malformed policy (broken JSON)', args: ['sample', '--fr-policy', p('policy-broken.json'), ...TINY], code: 1, stderr: /policy-broken\.json/ },
  {
    name: 'policy keyframe out of range',
    args: ['sample', '--fr-policy', p('policy-range.json'), ...TINY],
    code: 1,
    stderr: /invalid reuse policy|keyframe/,
  },

  // --out that cannot be written (items 3 and 10): refused before the model loads, nothing written.
  {
    name: '--out is a folder (item 10)',
    args: ['sample', ...HEAVY, '--out', p('a-folder')],
    code: 1,
    heavy: true,
    stderr: /cannot write --out .*a-folder: it is a folder; pass a file path inside it/,
  },
  {
    name: '--out in a read-only folder (item 10)',
    args: ['sample', ...HEAVY, '--out', p('ro-dir/x.png')],
    code: 1,
    heavy: true,
    stderr: /the folder .*ro-dir (is read-only|is not writable)/,
    absent: ['ro-dir/x.png'],
  },
  {
    name: '--out below a file (item 10)',
    args: ['sample', ...HEAVY, '--out', p('a-file/x.png')],
    code: 1,
    heavy: true,
    stderr: /would go inside .*a-file, which is a regular file, not a folder/,
    unchanged: ['a-file'],
  },
  {
    name: '--out names a folder (trailing slash)',
    args: ['sample', ...HEAVY, '--out', `${p('new-folder')}/`],
    code: 1,
    heavy: true,
    stderr: /names a folder, not a file/,
    absent: ['new-folder'],
  },
  {
    name: '--out read-only file (item 3)',
    args: ['sample', ...HEAVY, '--out', p('readonly.png')],
    code: 1,
    heavy: true,
    stderr: /readonly\.png: it (is read-only|is not writable).*chmod u\+w/,
    unchanged: ['readonly.png'],
  },
  {
    name: '--out FIFO (item 3)',
    args: ['sample', ...HEAVY, '--out', p('fifo')],
    code: 1,
    heavy: true,
    stderr: /fifo: it is a FIFO \(named pipe\), not a regular file/,
  },
  {
    name: '--out /dev/full (item 3)',
    args: ['sample', ...HEAVY, '--out', '/dev/full'],
    code: 1,
    heavy: true,
    stderr: /\/dev\/full: it is a character device, not a regular file.*choose another --out/,
  },
  {
    name: '--out /dev/stdout (item 3)',
    args: ['sample', ...HEAVY, '--out', '/dev/stdout'],
    code: 1,
    heavy: true,
    stderr: /\/dev\/stdout: it is a symbolic link to a (FIFO|character device|socket)/,
  },
  {
    name: '--out symlink to /dev/full (item 3)',
    args: ['sample', ...HEAVY, '--out', p('link-to-dev-full.png')],
    code: 1,
    heavy: true,
    stderr: /symbolic link to a character device/,
  },
  {
    name: '--out dangling symlink (item 3)',
    args: ['sample', ...HEAVY, '--out', p('dangling.png')],
    code: 1,
    heavy: true,
    stderr: /dangling\.png: it is a symbolic link to a missing file/,
    absent: ['missing-target.png'],
  },
  {
    name: 'autofr --out is a folder (item 10)',
    args: ['autofr', '--out', p('a-folder')],
    code: 1,
    stderr: /cannot write --out .*a-folder: it is a folder/,
  },
  { name: 'autofr --out /dev/full (item 3)', args: ['autofr', '--out', '/dev/full'], code: 1, stderr: /\/dev\/full: it is a character device/ },
  {
    name: 'bench --out is a file (item 10)',
    args: ['bench', '--quick', '--out', p('a-file')],
    code: 1,
    stderr: /a-file: it is a regular file, not a folder/,
    unchanged: ['a-file'],
  },
  {
    name: 'bench --out in a read-only folder (item 10)',
    args: ['bench', '--quick', '--out', p('ro-dir/out')],
    code: 1,
    stderr: /the folder .*ro-dir (is read-only|is not writable)/,
    absent: ['ro-dir/out'],
  },
  {
    name: 'bench --benchmarks-md is a folder (item 10)',
    args: ['bench', '--quick', '--out', p('bench-never'), '--benchmarks-md', p('a-folder')],
    code: 1,
    stderr: /--benchmarks-md .*a-folder: it is a folder/,
    absent: ['bench-never'],
  },

  // Fixed on other branches (enabled by the lead after merging).
  {
    name: 'bench checks solver names first',
    args: ['bench', '--solvers', 'ddim,warp9', '--nfe', '4', '--out', p('bench-warp9')],
    code: 1,
    heavy: true,
    stderr: /warp9/,
    absent: ['bench-warp9'],
  },
  {
    name: 'PFDiff rejects unknown solver options',
    args: ['sample', '--solver', 'unipc', '--pfdiff', '2_1', '-O', 'bogus=1', ...HEAVY.slice(0, 4)],
    code: 1,
    heavy: true,
    stderr: /bogus/,
  },
  {
    name: '--fr-points without --fr-interval',
    args: ['sample', '--fr-points', 'deepcache', ...HEAVY],
    code: 1,
    heavy: true,
    stderr: /--fr-points.*--fr-interval|--fr-interval.*--fr-points/,
  },
  {
    name: '--fr-policy searched for another solver warns',
    args: ['sample', '--fr-policy', p('policy-ddim.json'), '--nfe', '4', '--count', '1', '--class', '0', '--out', p('policy-other-solver.png')],
    code: 0,
    stderr: /warning: the reuse policy was searched for solver ddim, and this run uses dpmpp_2m/,
  },
  {
    name: '--pfdiff with the default multistep solver says so',
    args: ['sample', '--pfdiff', '2_1', ...TINY.filter((a, i, all) => a !== '--solver' && all[i - 1] !== '--solver')],
    code: 0,
    stderr: /experimental|multistep/,
  },
  {
    name: 'autofr on an unconditional model with guidance 2',
    args: ['autofr', '--model', p('uncond.onnx'), '--out', p('uncond-policy.json')],
    code: 1,
    heavy: true,
    stderr: /guidance/,
    absent: ['uncond-policy.json'],
  },
  {
    name: '--fr-points with one tensor name',
    args: ['sample', '--fr-interval', '2', '--fr-points', '/mid1/conv2/Conv_output_0', ...TINY, '--out', p('one-tensor.png')],
    code: 0,
    stdout: /wrote .*one-tensor\.png/,
  },
  // The bundled card's trailing grid holds up to 1000 integer times (999 … 0), so 1001 is the first budget refused.
  { name: '--nfe 1001 names the largest NFE', args: ['sample', '--nfe', '1001'], code: 1, stderr: /largest budget on this grid is nfe = 1000/ },
  {
    name: '--nfe 100000 --spacing karras refused at once',
    args: ['sample', '--nfe', '100000', '--spacing', 'karras'],
    code: 1,
    heavy: true,
    stderr: /at most|largest/,
  },
  {
    name: '--guidance 1e308 blames the guidance scale',
    args: ['sample', '--guidance', '1e308', ...TINY],
    code: 1,
    stderr: /guidance/,
    not: /check the model file/,
  },
  {
    name: 'bench --dry-run writes nothing',
    args: ['bench', '--grid', join(ROOT, 'bench/full.json'), '--import', join(ROOT, 'bench/results/full.json'), '--dry-run', '--out', p('dry-run-out')],
    code: 0,
    absent: ['dry-run-out'],
  },
  {
    name: '"1 model call", singular',
    args: ['sample', '--nfe', '1', '--count', '1', '--class', '0', '--solver', 'ddim', '--out', p('one-call.png')],
    code: 0,
    stdout: /1 model call[^s]/,
  },
  {
    name: 'UniPC --order 4 refused with the range',
    args: ['sample', '--solver', 'unipc', '--order', '4'],
    code: 1,
    stderr: /option "order" of solver "unipc" must be an integer in \[1, 3\], got 4/,
  },
  {
    name: 'bench on a user model does not point at models/STATUS.txt',
    args: ['bench', '--model', p('text.onnx'), '--solvers', 'ddim', '--nfe', '2', '--out', p('bench-user')],
    code: 1,
    stderr: /text\.onnx/,
    not: /STATUS\.txt/,
  },
];

/** Names the row's command line gives as --out (so a sample row without --out gets its own). */
function withOut(row: Row): { args: string[]; out: string | undefined } {
  if (row.args[0] !== 'sample' || row.args.includes('--out') || row.args.includes('--help')) return { args: row.args, out: undefined };
  const out = `${row.name.replace(/\W+/g, '-')}.png`;
  return { args: [...row.args, '--out', p(out)], out };
}

describe('rediffuse against bad input (subprocess, table)', { concurrency: 3 }, () => {
  for (const row of rows) {
    it(`${row.name} → exit ${row.code}`, async () => {
      const { args, out } = withOut(row);
      const before = new Map((row.unchanged ?? []).map((f) => [f, readFileSync(p(f))]));
      const r = await spawnCli(args, { cwd: tmp, timeoutMs: row.heavy ? 90_000 : 120_000 }); // a heavy run that samples takes 20+ min
      const all = `${r.stdout}\n${r.stderr}`;
      assert.equal(r.signal, null, `killed by ${r.signal} after ${r.ms.toFixed(0)} ms (a heavy row must be refused before sampling): ${all}`);
      assert.equal(r.code, row.code, all);
      if (row.stderr) assert.match(r.stderr, row.stderr);
      if (row.stdout) assert.match(r.stdout, row.stdout);
      if (row.not) assert.doesNotMatch(all, row.not);
      if (row.code !== 0) {
        assert.equal(r.stdout, '', 'a refusal prints nothing on stdout');
        assert.match(r.stderr, /^rediffuse: |error: /m);
      }
      for (const f of [...(row.absent ?? []), ...(out && row.code !== 0 ? [out] : [])]) assert.equal(existsSync(p(f)), false, `${f} must not exist`);
      for (const [f, bytes] of before) assert.deepEqual(readFileSync(p(f)), bytes, `${f} must be unchanged`);
    });
  }
});

describe('rediffuse outputs and interruptions (subprocess)', { concurrency: 2 }, () => {
  it('--out a symbolic link: the file it points to is replaced, the link stays (item 3)', async () => {
    const r = await spawnCli(['sample', ...TINY, '--out', p('link.png')], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*link-target\.png/);
    assert.ok(lstatSync(p('link.png')).isSymbolicLink());
    assert.equal(readlinkSync(p('link.png')), p('link-target.png'));
    const png = decodePng(readFileSync(p('link-target.png')));
    assert.deepEqual([png.width, png.height], [decodePng(readFileSync(p('link.png'))).width, 28 * 2 + 2 * 2]);
  });

  it('--count 40 --class 0 wraps the row at 16 images (item 13)', async () => {
    const r = await spawnCli(['sample', '--nfe', '1', '--count', '40', '--class', '0', '--solver', 'ddim', '--threads', '1', '--out', p('wrapped.png')], {
      cwd: tmp,
    });
    assert.equal(r.code, 0, r.stderr);
    const png = decodePng(readFileSync(p('wrapped.png')));
    const L = gridLayout(40, { sampleShape: [1, 28, 28], columns: 40, rowLabels: ['T-shirt/top'] });
    assert.deepEqual([L.cellsPerLine, L.linesPerRow], [16, 3]);
    assert.deepEqual([png.width, png.height], [138 + 16 * 56 + 17 * 2, 3 * 56 + 4 * 2]); // 1068 × 176, not 2 400 × 60
    assert.deepEqual([png.width, png.height], [L.width, L.height]);
  });

  it('Ctrl-C mid-run exits 130 and leaves no file, no temporary', async () => {
    const dir = join(tmp, 'ctrl-c');
    mkdirSync(dir);
    const r = await spawnCli(['sample', ...HEAVY, '--out', join(dir, 'never.png')], {
      cwd: tmp,
      onSpawn: (child) => {
        void busyFor(child.pid!).then(() => child.kill('SIGINT'));
      },
    });
    assert.equal(r.code, 130, `code ${r.code} signal ${r.signal} ${r.stderr}`);
    assert.match(r.stderr, /interrupted: no image was written/);
    assert.equal(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }), '');
  });

  it('stops promptly when its parent process is killed (npx killed without forwarding; item 17)', async () => {
    const dir = join(tmp, 'orphan');
    mkdirSync(dir);
    // The parent starts the CLI with inherited stdio, prints the child's pid, and is then SIGKILLed.
    const parentJs = `const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ${JSON.stringify(['--import', TSX, MAIN, 'sample', ...HEAVY, '--out', join(dir, 'never.png')])}, { stdio: 'inherit', cwd: ${JSON.stringify(tmp)} });
      process.stdout.write('child ' + c.pid + '\\n');
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', parentJs], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    parent.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    parent.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<void>((resolve) => parent.on('close', () => resolve()));
    while (!/child \d+/.test(stdout)) await new Promise((r) => setTimeout(r, 50));
    const childPid = Number(/child (\d+)/.exec(stdout)![1]);
    await busyFor(childPid);
    parent.kill('SIGKILL');
    const killedAt = performance.now();
    // Alive and not a zombie (a container's init may not reap the orphan at once).
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
      } catch {
        return false;
      }
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return true;
      }
    };
    while (alive(childPid) && performance.now() - killedAt < 15_000) await new Promise((r) => setTimeout(r, 100));
    const took = performance.now() - killedAt;
    if (alive(childPid)) process.kill(childPid, 'SIGKILL');
    await closed; // the pipes close when the last holder (the child) is gone
    assert.ok(took < 12_000, `the orphaned CLI ran on for ${took.toFixed(0)} ms after its parent was killed`);
    assert.match(stderr, /the parent process \(pid \d+\) is gone; stopping/);
    assert.match(stderr, /interrupted: no image was written/);
    assert.equal(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }), '');
  });
});
