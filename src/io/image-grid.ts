/**
 * Image grids as RGBA rasters: samples in [−1, 1] laid out in rows and columns, each row optionally
 * labelled in a left margin with the bitmap font of `bitmap-font.ts`. No Node API: the web page
 * draws the same raster on a canvas that `png.ts` encodes in Node, byte for byte.
 *
 * Pixel mapping: byte = round((v + 1)/2 · 255), clamped to [0, 255] (so −1 → 0, 0 → 128, 1 → 255).
 *
 * Wrapping: a row of more than `wrap` images (default {@link DEFAULT_WRAP}) is laid out over
 * ⌈columns / wrap⌉ lines of at most `wrap` cells, with one extra gap between rows, and its label on
 * its first line; so `--count 4096` gives a tall grid of a sane width instead of a 237 708 px strip.
 * @packageDocumentation
 */
import type { NumArray } from '../core/tensor.js';
import { drawText, GLYPH_HEIGHT, textWidth } from './bitmap-font.js';

/** Options of {@link imageGridRgba}. */
export interface ImageGridOptions {
  /** Shape of one image, `[channels, height, width]`, channels 1 (grey), 3 (RGB) or 4 (RGBA, composited over the background). */
  sampleShape: readonly number[];
  /** Images per row; the images fill the grid row by row. */
  columns: number;
  /** Most cells on one line of the raster: a longer row wraps onto further lines. Default {@link DEFAULT_WRAP}. */
  wrap?: number;
  /** Number of rows (default: enough for all images). */
  rows?: number;
  /** One label per row, drawn in a left margin. */
  rowLabels?: readonly string[];
  /** Integer upscaling of each image pixel (nearest neighbour). Default 2. */
  scale?: number;
  /** Pixels between cells and around the grid. Default 2. */
  gap?: number;
  /** Background grey level 0–255. Default 24. */
  background?: number;
}

/** An RGBA raster. */
export interface RgbaImage {
  width: number;
  height: number;
  /** width·height·4 bytes, row-major. */
  data: Uint8Array;
}

/** Default most cells per raster line (16 cells of 28 px at scale 2: about 1 000 px wide). */
export const DEFAULT_WRAP = 16;

/** Map a sample value in [−1, 1] to a byte: round((v+1)/2·255), clamped; NaN → 0. */
export function toByte(v: number): number {
  const b = Math.round(((v + 1) / 2) * 255);
  return b > 255 ? 255 : b >= 0 ? b : 0;
}

/** Geometry of a grid: where cell (row, col) starts, and the label margin. */
export interface GridLayout {
  width: number;
  height: number;
  /** Rows of `columns` images (each one label). */
  rows: number;
  columns: number;
  /** Cells on one raster line: min(columns, wrap). */
  cellsPerLine: number;
  /** Raster lines one row takes: ⌈columns / cellsPerLine⌉. */
  linesPerRow: number;
  cellWidth: number;
  cellHeight: number;
  marginLeft: number;
  gap: number;
  labelScale: number;
  /** Top-left pixel of a cell (row < rows, col < columns). */
  cellOrigin(row: number, col: number): [number, number];
}

/** Compute the layout of a grid without drawing it. */
export function gridLayout(count: number, opts: ImageGridOptions): GridLayout {
  const [channels, h, w] = opts.sampleShape;
  if (opts.sampleShape.length !== 3 || (channels !== 1 && channels !== 3 && channels !== 4)) {
    throw new Error(
      `an image grid needs samples shaped [1|3|4, height, width], got [${opts.sampleShape.join(',')}]; latent models need a decoder first (rediffuse txt2img --pipeline)`,
    );
  }
  const scale = opts.scale ?? 2;
  const gap = opts.gap ?? 2;
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`scale must be an integer ≥ 1, got ${scale}`);
  if (!Number.isInteger(gap) || gap < 0) throw new RangeError(`gap must be an integer ≥ 0, got ${gap}`);
  const columns = opts.columns;
  if (!Number.isInteger(columns) || columns < 1) throw new RangeError(`columns must be an integer ≥ 1, got ${columns}`);
  const rows = opts.rows ?? Math.max(1, Math.ceil(count / columns));
  if (count > rows * columns) throw new RangeError(`${count} images do not fit a grid of ${rows}×${columns}`);
  const wrap = opts.wrap ?? DEFAULT_WRAP;
  if (!Number.isInteger(wrap) || wrap < 1) throw new RangeError(`wrap must be an integer ≥ 1, got ${wrap}`);
  const cellsPerLine = Math.min(columns, wrap);
  const linesPerRow = Math.ceil(columns / cellsPerLine);
  // One extra gap between rows when they wrap, so a row's lines read as one group.
  const rowGap = linesPerRow > 1 ? gap : 0;
  const cellWidth = w! * scale;
  const cellHeight = h! * scale;
  // Labels as tall as fits the row: one font pixel per 12 image pixels, at least 1.
  const labelScale = Math.max(1, Math.floor(cellHeight / (GLYPH_HEIGHT * 4)));
  const labels = opts.rowLabels ?? [];
  if (labels.length > rows) throw new RangeError(`${labels.length} row labels for ${rows} rows`);
  const longest = labels.reduce((m, s) => Math.max(m, textWidth(s, labelScale)), 0);
  const marginLeft = longest > 0 ? longest + 3 * labelScale + gap : 0;
  const width = marginLeft + cellsPerLine * cellWidth + (cellsPerLine + 1) * gap;
  const lines = rows * linesPerRow;
  const height = lines * cellHeight + (lines + 1) * gap + (rows - 1) * rowGap;
  return {
    width,
    height,
    rows,
    columns,
    cellsPerLine,
    linesPerRow,
    cellWidth,
    cellHeight,
    marginLeft,
    gap,
    labelScale,
    cellOrigin: (row, col) => {
      const line = row * linesPerRow + Math.floor(col / cellsPerLine);
      return [marginLeft + gap + (col % cellsPerLine) * (cellWidth + gap), gap + line * (cellHeight + gap) + row * rowGap];
    },
  };
}

/** Draw images `[count, C, H, W]` (values in [−1, 1]) into a labelled RGBA grid. */
export function imageGridRgba(images: NumArray, opts: ImageGridOptions): RgbaImage {
  const [channels, h, w] = opts.sampleShape as [number, number, number];
  const per = channels * h * w;
  if (images.length % per !== 0) throw new RangeError(`${images.length} values are not a whole number of [${opts.sampleShape.join(',')}] images`);
  const count = images.length / per;
  const L = gridLayout(count, opts);
  const scale = opts.scale ?? 2;
  const bg = opts.background ?? 24;
  const data = new Uint8Array(L.width * L.height * 4);
  for (let i = 0; i < data.length; i += 4) {
    data[i] = bg;
    data[i + 1] = bg;
    data[i + 2] = bg;
    data[i + 3] = 255;
  }
  for (let k = 0; k < count; k++) {
    const [ox, oy] = L.cellOrigin(Math.floor(k / L.columns), k % L.columns);
    const base = k * per;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = (c: number) => toByte(images[base + c * h * w + y * w + x]!);
        let [r, g, b] = channels === 1 ? [at(0), at(0), at(0)] : [at(0), at(1), at(2)];
        if (channels === 4) {
          // RGBA: "over" the grid background, so the PNG stays opaque
          const a = at(3) / 255;
          [r, g, b] = [r, g, b].map((v) => Math.round(a * v + (1 - a) * bg)) as [number, number, number];
        }
        for (let sy = 0; sy < scale; sy++) {
          let o = ((oy + y * scale + sy) * L.width + ox + x * scale) * 4;
          for (let sx = 0; sx < scale; sx++, o += 4) {
            data[o] = r;
            data[o + 1] = g;
            data[o + 2] = b;
          }
        }
      }
    }
  }
  const labels = opts.rowLabels ?? [];
  const textHeight = GLYPH_HEIGHT * L.labelScale;
  labels.forEach((label, row) => {
    const [, oy] = L.cellOrigin(row, 0);
    const ty = oy + Math.floor((L.cellHeight - textHeight) / 2);
    drawText(data, L.width, label, L.gap + L.labelScale, ty, L.labelScale, [235, 235, 235]);
  });
  return { width: L.width, height: L.height, data };
}
