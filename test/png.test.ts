/** PNG grids: pixel mapping, layout geometry, labels, and atomic writes. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeFileAtomic } from '../src/io/atomic-write.js';
import { GLYPH_ADVANCE, GLYPH_HEIGHT, textWidth } from '../src/io/bitmap-font.js';
import { decodePng, gridLayout, imageGridPng, imageGridRgba, toByte } from '../src/io/png.js';

const tmp = mkdtempSync(join(tmpdir(), 'rediffuse-png-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const px = (img: { width: number; data: Uint8Array }, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4));

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
    assert.throws(() => gridLayout(1, { sampleShape: [4, 8, 8], columns: 1 }), /\[1\|3, height, width\].*decoder/);
    assert.throws(() => gridLayout(7, { sampleShape: [1, 2, 2], columns: 2, rows: 3 }), /7 images do not fit a grid of 3×2/);
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
      for (const [dx, dy] of [[0, 0], [5, 5], [2, 4]] as const) assert.deepEqual(px(img, ox + dx, oy + dy), [b, b, b, 255]);
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
    const bytes = imageGridPng(Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => (i % 28) / 14 - 1), {
      sampleShape: [1, 28, 28],
      columns: 1,
      rowLabels: ['Row 0', 'Row 1'],
    });
    const back = decodePng(bytes);
    const again = imageGridRgba(Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => (i % 28) / 14 - 1), {
      sampleShape: [1, 28, 28],
      columns: 1,
      rowLabels: ['Row 0', 'Row 1'],
    });
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
    assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('.tmp')), []);
    assert.ok(existsSync(join(dir, 'x')));
  });
});
