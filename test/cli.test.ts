/**
 * The command line end to end: `rediffuse sample` on the bundled model (spawned as users run it),
 * its JSON report and PNG, Ctrl-C, and the error exits (run in-process, output captured).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { main } from '../src/cli/main.js';
import { inspectModel } from '../src/cli/commands/inspect.js';
import type { SampleReport } from '../src/cli/commands/sample.js';
import { decodePng, gridLayout } from '../src/io/png.js';
import { bundledModelPath, cardPathFor, loadModelCard } from '../src/node/load-model.js';
import { busyFor, spawnCli } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Extra arguments selecting the model under test (the bundled one unless overridden for development). */
const MODEL_ARGS = process.env['REDIFFUSE_CLI_MODEL'] ? ['--model', process.env['REDIFFUSE_CLI_MODEL']] : [];
const modelPath = process.env['REDIFFUSE_CLI_MODEL'] ?? bundledModelPath();

/** Run in-process with captured output. */
async function runInProcess(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'rediffuse', ...args], { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

describe('rediffuse sample (spawned)', () => {
  it('writes the class grid and prints only a JSON report with --json', async () => {
    const out = join(tmp, 'grid.png');
    const r = await spawnCli(
      ['sample', ...MODEL_ARGS, '--nfe', '4', '--count', '2', '--solver', 'ddim', '--batch-size', '16', '--threads', '1', '--out', 'grid.png', '--json'],
      { cwd: tmp },
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as SampleReport; // nothing but JSON on stdout
    const card = loadModelCard(cardPathFor(modelPath));
    const classes = card.numClasses!;
    assert.equal(report.output, out);
    assert.equal(report.calls, 4);
    assert.equal(report.steps, 4);
    assert.equal(report.timesteps.length, 5);
    assert.equal(report.callMs.length, 4);
    assert.ok(Math.abs(report.msPerCall - report.callMs.reduce((a, b) => a + b, 0) / 4) < 1e-9);
    assert.ok(report.wallMs >= report.modelMs && report.modelMs > 0);
    assert.equal(report.settings.samples, 2 * classes);
    assert.equal(report.settings.solver, 'ddim');
    assert.deepEqual(report.settings.guidance, { scale: 2, rescale: 0 }); // default for a class-conditional model
    // guided: each call pushes 2·(2·classes) images in chunks of 16
    assert.equal(report.modelRuns, 4 * Math.ceil((4 * classes) / 16));
    assert.deepEqual(
      report.settings.classes?.map((c) => c.name),
      card.classNames,
    );
    const png = decodePng(readFileSync(out));
    const layout = gridLayout(2 * classes, { sampleShape: card.sampleShape, columns: 2, rowLabels: card.classNames! });
    assert.deepEqual([png.width, png.height], [layout.width, layout.height]);
    // every cell holds an image: not all background
    const [ox, oy] = layout.cellOrigin(classes - 1, 1);
    const distinct = new Set<number>();
    for (let y = 0; y < layout.cellHeight; y++) for (let x = 0; x < layout.cellWidth; x++) distinct.add(png.data[((oy + y) * png.width + ox + x) * 4]!);
    assert.ok(distinct.size > 8, 'the last cell should hold an image');
  });

  it('with PFDiff on one class prints where the PNG went', async () => {
    const r = await spawnCli(
      [
        'sample',
        ...MODEL_ARGS,
        '--solver',
        'ddim',
        '--pfdiff',
        '2_1',
        '--nfe',
        '3',
        '--class',
        '9',
        '--count',
        '3',
        '--guidance',
        '1',
        '--out',
        'one.png',
      ],
      { cwd: tmp },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote .*one\.png \(1 class × 3; ddim \+ PFDiff-2_1, 3 model calls/);
    assert.equal(r.stderr, ''); // no progress bar when stderr is not a terminal
    const png = decodePng(readFileSync(join(tmp, 'one.png')));
    assert.equal(png.height, 28 * 2 + 2 * 2);
  });

  it('exits 130 on Ctrl-C and leaves no file behind', async () => {
    const dir = mkdtempSync(join(tmp, 'int-'));
    // SIGINT once the CLI has used 4 s of CPU (past start-up, where its handlers are installed), not after a fixed wait
    const r = await spawnCli(['sample', ...MODEL_ARGS, '--solver', 'ddim', '--nfe', '500', '--count', '50', '--out', join(dir, 'never.png')], {
      cwd: tmp,
      onSpawn: (child) => void busyFor(child.pid!).then(() => child.kill('SIGINT')),
    });
    assert.equal(r.code, 130, `code ${r.code} signal ${r.signal} ${r.stderr}`);
    assert.match(r.stderr, /interrupted/);
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('rediffuse errors (in-process)', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown solver', ['--solver', 'magic'], /unknown solver "magic": valid names are .*ddim/],
    ['bad k_h', ['--pfdiff', '4_1'], /--pfdiff.*expected k_h with 1 ≤ h ≤ k ≤ 3/],
    ['bad k_h form', ['--pfdiff', 'two'], /expected k_h/],
    ['missing model', ['--model', join(tmp, 'missing.onnx')], /missing\.onnx does not exist; pass --model/],
    ['bad class', ['--class', 'hat'], /unknown class "hat": use an index or a name/],
    ['class out of range', ['--class', '12'], /class 12 is out of range/],
    ['bad nfe', ['--nfe', '0'], /--nfe.*expected an integer ≥ 1, got "0"/],
    ['bad spacing', ['--spacing', 'cubic'], /unknown spacing "cubic"/],
    ['nfe and steps', ['--nfe', '3', '--steps', '4'], /cannot be used with/],
    ['unknown option', ['--colour', 'red'], /unknown option '--colour'/],
    [
      'reuse points without feature reuse',
      ['--fr-points', 'deepcache'],
      /--fr-points applies to feature reuse only: add --fr-interval M \(a keyframe every M calls\), --fr-policy FILE or --fr-adaptive δ, or drop --fr-points/,
    ],
    ['mixing without feature reuse', ['--mix-bias', '0.3', '--no-mixing'], /--no-mixing, --mix-bias apply to feature reuse only: add --fr-interval M/],
    ['guidance without a class', ['--class', 'none', '--guidance', '3'], /classifier-free guidance needs class labels: .* \(--guidance\)/],
  ];
  for (const [name, args, pattern] of cases) {
    it(`${name} → exit 1 with a clear message`, async () => {
      const out = join(tmp, `${name.replace(/\W+/g, '-')}.png`);
      const r = await runInProcess(['sample', ...MODEL_ARGS, ...args, '--out', out]);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, pattern);
      assert.equal(r.out, '');
      assert.equal(existsSync(out), false);
    });
  }

  it('rejects a corrupt model file', async () => {
    const bad = join(tmp, 'bad.onnx');
    writeFileSync(bad, Buffer.from('this is not a protobuf at all'.repeat(20)));
    writeFileSync(cardPathFor(bad), readFileSync(cardPathFor(modelPath)));
    const r = await runInProcess(['sample', '--model', bad, '--out', join(tmp, 'x.png')]);
    assert.equal(r.code, 1);
    assert.match(r.err, /bad\.onnx is not a valid ONNX model.*re-export/);
  });

  it('documents every option in --help', async () => {
    const r = await runInProcess(['sample', '--help']);
    assert.equal(r.code, 0);
    for (const flag of [
      '--solver',
      '--eta',
      '--order',
      '--nfe',
      '--steps',
      '--spacing',
      '--pfdiff',
      '--pfdiff-quantity',
      '--guidance',
      '--guidance-rescale',
      '--class',
      '--seed',
      '--count',
      '--batch-size',
      '--threads',
      '--model',
      '--card',
      '--out',
      '--json',
      '--quiet',
    ]) {
      assert.ok(r.out.includes(flag), `--help lacks ${flag}`);
    }
    const top = await runInProcess(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.out, /sample \[options\]/);
  });
});

describe('what a user is told', () => {
  const small = ['--class', '0', '--count', '1', '--guidance', '1', '--threads', '1', ...MODEL_ARGS];

  it('guidance 0 is the unconditional model at batch B (null labels, one network run per call)', async () => {
    const r = await spawnCli(
      [
        'sample',
        ...MODEL_ARGS,
        '--solver',
        'ddim',
        '--guidance',
        '0',
        '--class',
        '0',
        '--count',
        '2',
        '--nfe',
        '2',
        '--batch-size',
        '2',
        '--json',
        '--out',
        join(tmp, 'g0.png'),
      ],
      { cwd: tmp },
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as SampleReport;
    assert.equal(report.settings.guidance, null);
    assert.equal(report.calls, 2);
    assert.equal(report.modelRuns, 2); // a 2B guided batch would have made 4 runs of 2
  });

  it('one call is "1 model call"', async () => {
    const r = await spawnCli(['sample', ...small, '--solver', 'ddim', '--nfe', '1', '--out', join(tmp, 'one-call.png')], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ddim, 1 model call, /);
  });

  it("--pfdiff with the default multistep solver warns that the experimental variant runs, and how to get the paper's", async () => {
    const r = await spawnCli(['sample', ...small, '--pfdiff', '2_1', '--nfe', '3', '--out', join(tmp, 'pf-2m.png')], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    // (with --solver ddim stderr stays empty: the spawned PFDiff test above)
    assert.equal(
      r.stderr,
      "rediffuse: warning: PFDiff around dpmpp_2m uses our experimental multistep variant, not the paper's; for the paper's PFDiff choose a first-order solver (--solver ddim)\n",
    );
    assert.match(r.stdout, /dpmpp_2m \+ PFDiff-2_1, 3 model calls/);
  });

  it('--pfdiff with --solver ipndm_v warns that the experimental Adams variant runs', async () => {
    const r = await spawnCli(['sample', ...small, '--solver', 'ipndm_v', '--pfdiff', '2_1', '--nfe', '3', '--out', join(tmp, 'pf-ipndm-v.png')], {
      cwd: tmp,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      "rediffuse: warning: PFDiff around ipndm_v uses our experimental Adams variant, not the paper's; for the paper's PFDiff choose a first-order solver (--solver ddim)\n",
    );
    assert.match(r.stdout, /ipndm_v \+ PFDiff-2_1, 3 model calls/);
  });

  it('--fr-policy searched for another solver warns, naming both solvers and the fix', async () => {
    const policy = join(tmp, 'ddim-policy.json');
    writeFileSync(
      policy,
      JSON.stringify({
        format: 'rediffuse-reuse-policy/1',
        calls: 4,
        keyframes: [0, 2],
        mixing: null,
        points: 'deepcache',
        meta: { tool: 'rediffuse autofr', solver: 'ddim' },
      }),
    );
    const r = await spawnCli(['sample', ...small, '--nfe', '4', '--fr-policy', policy, '--out', join(tmp, 'frp.png')], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: the reuse policy was searched for solver ddim, and this run uses dpmpp_2m: .*\(run with solver ddim, or search a policy for dpmpp_2m with rediffuse autofr --solver dpmpp_2m\)/,
    );
    assert.match(r.stdout, /FRDiff \(deepcache\): 2 full \+ 2 reuse calls/);
  });

  it('--fr-points takes one tensor name as inspect prints it', async () => {
    const name = (await inspectModel(modelPath, ['deepcache'])).presets[0]!.points![0]!.name;
    const r = await spawnCli(
      ['sample', ...small, '--solver', 'ddim', '--nfe', '4', '--fr-interval', '2', '--fr-points', name, '--json', '--out', join(tmp, 'frt.png')],
      { cwd: tmp },
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as SampleReport;
    assert.deepEqual(
      report.featureReuse!.points.map((p) => p.name),
      [name],
    );
    assert.deepEqual(report.featureReuse!.policy.points, [name]);
    // keyframes 0, 2; default mixing (T = 30, b = 0.5): λ(1/4) = 0 skips call 1, λ(3/4) = 1 makes call 3 a reuse call
    assert.deepEqual([report.featureReuse!.fullCalls, report.featureReuse!.reuseCalls, report.featureReuse!.skippedSteps], [2, 1, 1]);
  });

  it('a card whose default_solver is no solver is blamed, with its file', async () => {
    const card = join(tmp, 'warp9.json');
    writeFileSync(card, JSON.stringify({ ...JSON.parse(readFileSync(cardPathFor(modelPath), 'utf8')), default_solver: 'warp9' }));
    const r = await runInProcess(['sample', ...small, '--card', card, '--out', join(tmp, 'warp9.png')]);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /model card .*warp9\.json: field "default_solver" names no solver \(unknown solver "warp9".*\); fix the card, or choose a solver \(--solver\)/,
    );
    assert.equal(existsSync(join(tmp, 'warp9.png')), false);
  });

  it('help texts: inspect says MACs, --order matches the solvers, autofr states its steps and time, bench has --card', async () => {
    const flat = (t: string) => t.replace(/\s+/g, ' '); // commander wraps long descriptions
    const inspect = await runInProcess(['inspect', '--help']);
    assert.match(inspect.out, /MACs/);
    assert.doesNotMatch(inspect.out, /FLOP/);
    const sampleHelp = await runInProcess(['sample', '--help']);
    assert.match(flat(sampleHelp.out), /--order <n> +solver option: order \(unipc and dpm_solver 1–3, lms 1–4\)/);
    const autofr = await runInProcess(['autofr', '--help']);
    assert.match(flat(autofr.out), /default 50 calls/);
    assert.match(flat(autofr.out), /Without --steps\/--nfe a run makes 50 model calls/);
    assert.match(flat(autofr.out), /takes about 6 minutes/);
    const bench = await runInProcess(['bench', '--help']);
    assert.match(bench.out, /--card <path>/);
  });

  it("bench on a user model that cannot load names --card, not the bundled models' STATUS.txt", async () => {
    const r = await runInProcess([
      'bench',
      '--model',
      join(tmp, 'mine.onnx'),
      '--solvers',
      'ddim',
      '--nfe',
      '2',
      '--out',
      join(tmp, 'bench-mine'),
      '--quiet',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot load model ".*mine\.onnx" .*; check the path, pass --card FILE for its JSON card, or --model reference/);
    assert.doesNotMatch(r.err, /STATUS\.txt/);
  });
});
