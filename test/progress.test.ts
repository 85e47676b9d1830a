/**
 * The progress bar: shown at once ("loading model", then "sampling", then steps) with an ETA from
 * the mean step time (issue 10 item 19); on a fake terminal stream, and the real CLI on a
 * pseudo-terminal (util-linux `script`).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createProgress, etaMs, formatDuration } from '../src/cli/progress.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-progress-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A terminal-like stream that records what is written. */
function fakeTty(): NodeJS.WriteStream & { text: () => string } {
  let out = '';
  const s = {
    isTTY: true,
    columns: 120,
    rows: 40,
    write(chunk: string | Uint8Array) {
      out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    },
    on() {
      return s;
    },
    once() {
      return s;
    },
    removeListener() {
      return s;
    },
    text: () => out,
  };
  return s as unknown as NodeJS.WriteStream & { text: () => string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('progress bar', () => {
  it('formats durations and the mean-rate ETA', () => {
    assert.equal(formatDuration(0), '0:00');
    assert.equal(formatDuration(61_400), '1:01');
    assert.equal(formatDuration(3_725_000), '1:02:05');
    assert.equal(etaMs(2000, 1, 10), 18_000);
    assert.equal(etaMs(6000, 3, 4), 2000);
    assert.equal(etaMs(1000, 0, 10), undefined);
  });

  it('draws the phase at once, then steps with the ETA counted from the phase start', async (t) => {
    const tty = fakeTty();
    let clock = 1000;
    const bar = createProgress(true, tty, () => clock);
    t.after(() => bar.stop()); // a failed assertion must not leave the redraw timer holding the process
    bar.phase('loading model');
    assert.match(tty.text(), /loading model … \| 0:00 elapsed/, 'the first frame is drawn synchronously');
    clock += 3000;
    bar.phase('sampling');
    // drawn at once, though the last frame is younger than the redraw throttle
    assert.match(tty.text(), /sampling … \| 0:03 elapsed/, 'a phase change is drawn synchronously');
    clock += 2000; // the first step took 2 s
    bar.start(10, 'sampling');
    bar.update(1);
    await sleep(250); // the bar redraws on its timer
    // elapsed since creation 5 s; ETA = 2 s per step · 9 steps
    assert.match(tty.text(), /sampling \[[^\]]*\] 1\/10 steps \| 0:05 elapsed, eta 0:18/);
    bar.stop();
  });

  it('is silent when the stream is not a terminal or the bar is off', () => {
    const pipe = { ...fakeTty(), isTTY: false } as unknown as NodeJS.WriteStream & { text: () => string };
    const p = createProgress(true, pipe);
    p.phase('loading model');
    p.stop();
    const tty = fakeTty();
    const q = createProgress(false, tty);
    q.phase('loading model');
    q.stop();
    assert.equal(tty.text(), '');
  });

  const hasScript = spawnSync('script', ['--version']).status === 0;
  it(
    'rediffuse sample on a terminal shows "loading model" before the first model call',
    { skip: hasScript ? false : 'util-linux `script` is not installed (apt-get install bsdutils)' },
    async () => {
      const cli = [
        'node',
        '--import',
        import.meta.resolve('tsx'),
        join(ROOT, 'src', 'cli', 'main.ts'),
        'sample',
        '--solver',
        'ddim',
        '--nfe',
        '4',
        '--count',
        '1',
        '--class',
        '0',
        '--threads',
        '1',
        '--out',
        join(tmp, 'p.png'),
      ];
      const quoted = cli.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      const text = await new Promise<string>((resolve, reject) => {
        const child = spawn('script', ['-qfec', quoted, '/dev/null'], {
          cwd: tmp,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NODE_OPTIONS: '', COLUMNS: '160' },
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`))));
      });
      const loading = text.indexOf('loading model');
      const sampling = text.indexOf('sampling …');
      const firstStep = text.search(/sampling \[[^\]]*\] [1-4]\/4 steps/);
      assert.ok(loading >= 0, `no "loading model" frame in ${JSON.stringify(text.slice(0, 400))}`);
      assert.ok(sampling > loading, 'then the sampling phase, before any step is done');
      assert.ok(firstStep > sampling, 'then the steps');
      assert.match(text, /wrote .*p\.png/);
    },
  );
});
