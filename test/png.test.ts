/** PNG grids: pixel mapping, layout geometry, labels, wrapping, and atomic writes with the output-path policy. */
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { removeStaleTemporaries, writeFileAtomic } from '../src/io/atomic-write.js';
import { checkOutputPath, OutputPathError } from '../src/io/output-path.js';
import { GLYPH_ADVANCE, GLYPH_HEIGHT, textWidth } from '../src/io/bitmap-font.js';
import { decodePng, gridLayout, imageGridPng, imageGridRgba, toByte } from '../src/io/png.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-png-'));
after(() => {
  for (const d of ['ro-dir']) if (existsSync(join(tmp, d))) chmodSync(join(tmp, d), 0o755);
  rmSync(tmp, { recursive: true, force: true });
});

const px = (img: { width: number; data: Uint8Array }, x: number, y: number) =>
  Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));

describe('pixel mapping', () => {
  it('maps [-1, 1] to [0, 255] and clamps', () => {
    assert.equal(toByte(-1), 0);
    assert.equal(toByte(1), 255);
    assert.equal(toByte(0), 128); // 127.5 rounds up
    assert.equal(toByte(-0.5), 64); // 63.75
    assert.equal(toByte(3), 255);
    assert.equal(toByte(-7), 0);
    assert.equal(toByte(NaN), 0);
  });
});

describe('grid layout', () => {
  it('places cells after the label margin with the given gap and scale', () => {
    const L = gridLayout(6, { sampleShape: [1, 28, 28], columns: 3, rowLabels: ['Bag', 'Ankle boot'], scale: 2, gap: 2 });
    assert.equal(L.rows, 2);
    assert.equal(L.cellWidth, 56);
    assert.equal(L.labelScale, 2);
    // margin = widest label (10 glyphs: (10·6 − 1)·2 = 118) + 3·labelScale + gap = 126
    assert.equal(textWidth('Ankle boot', 2), (10 * GLYPH_ADVANCE - 1) * 2);
    assert.equal(L.marginLeft, 118 + 6 + 2);
    assert.equal(L.width, 126 + 3 * 56 + 4 * 2);
    assert.equal(L.height, 2 * 56 + 3 * 2);
    assert.deepEqual(L.cellOrigin(1, 2), [126 + 2 + 2 * 58, 2 + 58]);
  });

  it('has no margin without labels and rejects bad shapes', () => {
    const L = gridLayout(5, { sampleShape: [3, 4, 5], columns: 2, scale: 1, gap: 0 });
    assert.equal(L.marginLeft, 0);
    assert.deepEqual([L.width, L.height, L.rows], [10, 12, 3]);
    assert.throws(() => gridLayout(1, { sampleShape: [16, 8, 8], columns: 1 }), /\[1\|3\|4, height, width\].*decoder/);
    assert.throws(() => gridLayout(7, { sampleShape: [1, 2, 2], columns: 2, rows: 3 }), /7 images do not fit a grid of 3×2/);
  });
});

describe('grid wrapping', () => {
  it('wraps a long row onto lines of at most 16 cells, with one extra gap between rows (issue 10 item 13)', () => {
    // --count 4096 --class 0: was one line 4096 cells wide (237 708 px)
    const L = gridLayout(4096, { sampleShape: [1, 28, 28], columns: 4096, rowLabels: ['T-shirt/top'] });
    assert.equal(L.cellsPerLine, 16);
    assert.equal(L.linesPerRow, 256);
    // label 'T-shirt/top' (11 glyphs): (11·6 − 1)·2 = 130, + 3·2 + 2 → margin 138
    assert.equal(L.marginLeft, 138);
    assert.equal(L.width, 138 + 16 * 56 + 17 * 2); // 1068
    assert.equal(L.height, 256 * 56 + 257 * 2); // 14 850
    assert.deepEqual(L.cellOrigin(0, 17), [138 + 2 + 1 * 58, 2 + 1 * 58]);
    // two rows of 20: 2 lines each, a gap more between the rows
    const T = gridLayout(40, { sampleShape: [1, 28, 28], columns: 20, rowLabels: ['A', 'B'] });
    assert.deepEqual([T.cellsPerLine, T.linesPerRow], [16, 2]);
    assert.equal(T.height, 4 * 56 + 5 * 2 + 2);
    assert.deepEqual(T.cellOrigin(1, 0), [T.marginLeft + 2, 2 + 2 * 58 + 2]);
    assert.deepEqual(T.cellOrigin(1, 19), [T.marginLeft + 2 + 3 * 58, 2 + 3 * 58 + 2]);
    // rows that fit are laid out as before
    const S = gridLayout(16, { sampleShape: [1, 28, 28], columns: 16 });
    assert.deepEqual([S.width, S.height, S.linesPerRow], [16 * 56 + 17 * 2, 56 + 4, 1]);
    assert.throws(() => gridLayout(4, { sampleShape: [1, 2, 2], columns: 4, wrap: 0 }), /wrap must be an integer ≥ 1, got 0/);
  });

  it('draws a wrapped row with its label on the first line only', () => {
    // one row of 3 one-pixel images, wrap 2: cells (0,0),(0,1) on line 0, (0,2) on line 1
    const images = Float32Array.of(1, -1, 0.5);
    const opts = { sampleShape: [1, 1, 1], columns: 3, wrap: 2, rowLabels: ['A'], scale: 8, gap: 1, background: 7 };
    const img = imageGridRgba(images, opts);
    const L = gridLayout(3, opts);
    assert.deepEqual([L.cellsPerLine, L.linesPerRow, img.width, img.height], [2, 2, L.marginLeft + 2 * 8 + 3, 2 * 8 + 3]);
    const [x2, y2] = L.cellOrigin(0, 2);
    assert.deepEqual([x2, y2], [L.marginLeft + 1, 1 + 9]);
    assert.deepEqual(px(img, x2 + 4, y2 + 4), [toByte(0.5), toByte(0.5), toByte(0.5), 255]);
    assert.deepEqual(px(img, L.cellOrigin(0, 1)[0] + 3, 3), [0, 0, 0, 255]);
    // the empty cell (line 1, col 1) is background
    assert.deepEqual(px(img, x2 + 9 + 4, y2 + 4), [7, 7, 7, 255]);
    // label ink only beside line 0 (label scale 1: a cell of 8 px is under 4 glyph heights)
    let inkLine0 = 0;
    let inkLine1 = 0;
    for (let y = 0; y < img.height; y++)
      for (let x = 0; x < L.marginLeft; x++)
        if (px(img, x, y)[0] === 235) {
          if (y < y2) inkLine0++;
          else inkLine1++;
        }
    assert.equal(inkLine0, 18); // 'A' has 18 inked font pixels
    assert.equal(inkLine1, 0);
  });
});

describe('grid drawing', () => {
  it('draws each image upscaled in its cell, row by row, and labels in the margin', () => {
    // 4 one-pixel-wide images 1×2×2: constant values −1, −0.5, 0.5, 1.
    const vals = [-1, -0.5, 0.5, 1];
    const images = Float32Array.from(vals.flatMap((v) => [v, v, v, v]));
    const opts = { sampleShape: [1, 2, 2], columns: 2, rowLabels: ['A', 'B'], scale: 3, gap: 1, background: 7 };
    const img = imageGridRgba(images, opts);
    const L = gridLayout(4, opts);
    assert.equal(img.width, L.width);
    vals.forEach((v, k) => {
      const [ox, oy] = L.cellOrigin(Math.floor(k / 2), k % 2);
      const b = toByte(v);
      for (const [dx, dy] of [
        [0, 0],
        [5, 5],
        [2, 4],
      ] as const)
        assert.deepEqual(px(img, ox + dx, oy + dy), [b, b, b, 255]);
    });
    // the gap between cells is background
    const [ox0, oy0] = L.cellOrigin(0, 1);
    assert.deepEqual(px(img, ox0 - 1, oy0), [7, 7, 7, 255]);
    // label "A": some ink inside the margin of row 0, none of row 1's label spills into row 0's band
    let ink = 0;
    for (let y = 0; y < L.cellHeight + L.gap; y++) for (let x = 0; x < L.marginLeft; x++) if (px(img, x, y)[0] === 235) ink++;
    // 'A' has 18 inked font pixels (scale 1 here: cell height 6 < 28)
    assert.equal(L.labelScale, 1);
    assert.equal(ink, 18);
    assert.ok(GLYPH_HEIGHT <= L.cellHeight + L.gap);
  });

  it('writes RGB images and a PNG that decodes to the same pixels', () => {
    const single = Float32Array.from([1, -1, 0]); // one RGB pixel, channel-major
    const img = imageGridRgba(single, { sampleShape: [3, 1, 1], columns: 1, scale: 1, gap: 0 });
    assert.deepEqual(px(img, 0, 0), [255, 0, 128, 255]);
    const bytes = imageGridPng(
      Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => (i % 28) / 14 - 1),
      {
        sampleShape: [1, 28, 28],
        columns: 1,
        rowLabels: ['Row 0', 'Row 1'],
      },
    );
    const back = decodePng(bytes);
    const again = imageGridRgba(
      Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => (i % 28) / 14 - 1),
      {
        sampleShape: [1, 28, 28],
        columns: 1,
        rowLabels: ['Row 0', 'Row 1'],
      },
    );
    assert.deepEqual([back.width, back.height], [again.width, again.height]);
    assert.deepEqual(Buffer.from(back.data), Buffer.from(again.data));
  });
});

describe('atomic write', () => {
  it('writes the whole file, replaces an old one, and leaves no temporaries', () => {
    const p = join(tmp, 'sub', 'out.png');
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    writeFileAtomic(p, 'hello');
    assert.equal(readFileSync(p, 'utf8'), 'hello');
    assert.deepEqual(readdirSync(join(tmp, 'sub')), ['out.png']);
  });

  it('fails with a clear message and leaves nothing when the target cannot be written', () => {
    const dir = join(tmp, 'blocker');
    writeFileAtomic(join(dir, 'x'), 'x');
    // a folder where the file should go: rename fails
    assert.throws(() => writeFileAtomic(dir, 'data'), /cannot write .*blocker.*choose another --out/);
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.includes('.tmp')),
      [],
    );
    assert.ok(existsSync(join(dir, 'x')));
  });
});

const isRoot = process.getuid?.() === 0;

describe('output-path policy (issue 10 item 3)', () => {
  const refused = (path: string, pattern: RegExp, opts?: Parameters<typeof checkOutputPath>[1]) => {
    assert.throws(
      () => checkOutputPath(path, opts),
      (e: unknown) => e instanceof OutputPathError && pattern.test(e.message),
    );
    if (!opts) assert.throws(() => writeFileAtomic(path, 'x'), pattern);
  };

  it('refuses folders, FIFOs, devices and links to them, and writes nothing', () => {
    mkdirSync(join(tmp, 'pol'));
    refused(
      join(tmp, 'pol'),
      /cannot write --out .*pol: it is a folder; pass a file path inside it \(e\.g\. .*pol\/rediffuse-samples\.png\), or choose another --out/,
    );
    execFileSync('mkfifo', [join(tmp, 'pol', 'fifo')]);
    refused(join(tmp, 'pol', 'fifo'), /fifo: it is a FIFO \(named pipe\), not a regular file; rediffuse writes only regular files/);
    refused('/dev/full', /\/dev\/full: it is a character device, not a regular file/);
    refused('/dev/null', /\/dev\/null: it is a character device/);
    symlinkSync('/dev/full', join(tmp, 'pol', 'full.png'));
    refused(join(tmp, 'pol', 'full.png'), /full\.png: it is a symbolic link to a character device/);
    symlinkSync(join(tmp, 'pol', 'nowhere.png'), join(tmp, 'pol', 'dangling.png'));
    refused(join(tmp, 'pol', 'dangling.png'), /dangling\.png: it is a symbolic link to a missing file; remove the link or point it at a file/);
    refused(`${join(tmp, 'pol', 'sub')}/`, /names a folder, not a file/);
    assert.ok(statSync('/dev/full').isCharacterDevice() && statSync('/dev/null').isCharacterDevice());
    assert.deepEqual(readdirSync(join(tmp, 'pol')).sort(), ['dangling.png', 'fifo', 'full.png']);
    assert.ok(lstatSync(join(tmp, 'pol', 'full.png')).isSymbolicLink());
  });

  it('refuses a read-only file and a read-only folder, as root by the mode bits', () => {
    const ro = join(tmp, 'readonly.png');
    writeFileSync(ro, 'keep');
    chmodSync(ro, 0o444);
    refused(
      ro,
      isRoot
        ? /readonly\.png: it is read-only \(mode 444; rediffuse does not override that even as root\); make it writable \(chmod u\+w\)/
        : /readonly\.png: it is not writable by this user \(EACCES\)/,
    );
    assert.equal(readFileSync(ro, 'utf8'), 'keep');
    chmodSync(ro, 0o644);
    mkdirSync(join(tmp, 'ro-dir'));
    chmodSync(join(tmp, 'ro-dir'), 0o555);
    refused(join(tmp, 'ro-dir', 'a', 'x.png'), /the folder .*ro-dir (is read-only \(mode 555|is not writable by this user)/);
    refused(join(tmp, 'ro-dir'), /ro-dir: it (is read-only|is not writable)/, { kind: 'folder', flag: '--out' });
    assert.deepEqual(readdirSync(join(tmp, 'ro-dir')), []);
  });

  it('refuses a path below a file, and a file where a folder is wanted', () => {
    writeFileSync(join(tmp, 'plain'), 'p');
    refused(join(tmp, 'plain', 'deeper', 'x.png'), /would go inside .*plain, which is a regular file, not a folder/);
    assert.throws(
      () => checkOutputPath(join(tmp, 'plain'), { kind: 'folder', flag: '--assets' }),
      /cannot write --assets .*plain: it is a regular file, not a folder; pass a folder/,
    );
    assert.equal(checkOutputPath(join(tmp, 'new', 'folder'), { kind: 'folder' }), join(tmp, 'new', 'folder'));
    assert.equal(existsSync(join(tmp, 'new')), false, 'a check creates nothing');
  });

  it('follows a symbolic link to a regular file: the target is replaced, the link stays', () => {
    writeFileSync(join(tmp, 'target.png'), 'old');
    chmodSync(join(tmp, 'target.png'), 0o640);
    symlinkSync(join(tmp, 'target.png'), join(tmp, 'latest.png'));
    assert.equal(writeFileAtomic(join(tmp, 'latest.png'), 'new'), join(tmp, 'target.png'));
    assert.ok(lstatSync(join(tmp, 'latest.png')).isSymbolicLink());
    assert.equal(readFileSync(join(tmp, 'target.png'), 'utf8'), 'new');
    assert.equal(statSync(join(tmp, 'target.png')).mode & 0o777, 0o640, 'a replaced file keeps its permission bits');
  });
});

describe('stale temporaries (issue 10 item 16)', () => {
  it('removes the temporaries of dead processes and its own on the next write, keeps live ones', () => {
    const dir = join(tmp, 'stale');
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid is free
    const liveOther = process.ppid; // alive (the test runner's parent)
    const names = {
      dead: `.x.png.${dead}.abc123.tmp`,
      own: `.x.png.${process.pid}.def456.tmp`,
      live: `.x.png.${liveOther}.ghi789.tmp`,
      old: `.x.png.${liveOther}.jkl012.tmp`,
      other: `.y.png.${dead}.abc123.tmp`,
      unrelated: 'notes.txt',
    };
    for (const n of Object.values(names)) writeFileSync(join(dir, n), 'partial');
    const twoDaysAgo = (Date.now() - 48 * 3600 * 1000) / 1000;
    utimesSync(join(dir, names.old), twoDaysAgo, twoDaysAgo);
    writeFileAtomic(join(dir, 'x.png'), 'done');
    assert.deepEqual(readdirSync(dir).sort(), [names.live, names.other, names.unrelated, 'x.png'].sort());
    assert.equal(readFileSync(join(dir, 'x.png'), 'utf8'), 'done');
    // the y.png temporary goes on y.png's next write
    assert.deepEqual(removeStaleTemporaries(join(dir, 'y.png')), [names.other]);
  });
});

describe('image grid channels', () => {
  it('3 channels are RGB; 4 are RGBA composited over the background; 2 are refused', () => {
    // one 1×1 image per call, scale 1, no gap: pixel (0, 0) of the grid is the image
    const opts = (c: number) => ({ sampleShape: [c, 1, 1], columns: 1, scale: 1, gap: 0, background: 24 });
    const px = (img: { data: Uint8Array; width: number }, x = 0, y = 0) =>
      Array.from(img.data.slice((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));
    assert.deepEqual(px(imageGridRgba(Float32Array.of(1, -1, 0), opts(3))), [255, 0, toByte(0), 255]);
    // α = 1 is the colour itself, α = 0 the background, α = 0 in [−1, 1] is half way
    assert.deepEqual(px(imageGridRgba(Float32Array.of(1, -1, 1, 1), opts(4))), [255, 0, 255, 255]);
    assert.deepEqual(px(imageGridRgba(Float32Array.of(1, -1, 1, -1), opts(4))), [24, 24, 24, 255]);
    const a = toByte(0) / 255;
    assert.deepEqual(px(imageGridRgba(Float32Array.of(1, 1, 1, 0), opts(4))), [0, 1, 2].map(() => Math.round(a * 255 + (1 - a) * 24)).concat(255));
    assert.throws(() => imageGridRgba(Float32Array.of(0, 0), opts(2)), /\[1\|3\|4, height, width\]/);
  });
});
