/**
 * Image grids as PNG files: the RGBA raster of `image-grid.ts`, encoded with pngjs.
 * @packageDocumentation
 */
import { PNG } from 'pngjs';
import type { NumArray } from '../core/tensor.js';
import { imageGridRgba, type ImageGridOptions, type RgbaImage } from './image-grid.js';

export * from './image-grid.js';

/**
 * Encode an RGBA raster as PNG bytes; `grey: true` writes an 8-bit greyscale PNG (colour type 0,
 * the mean of R, G, B: exact for grey rasters with R = G = B).
 */
export function encodePng(image: RgbaImage, opts: { grey?: boolean } = {}): Uint8Array {
  const png = new PNG({ width: image.width, height: image.height });
  png.data.set(image.data);
  return PNG.sync.write(png, opts.grey ? { colorType: 0 } : undefined);
}

/** Decode PNG bytes to RGBA (for tests and tools). */
export function decodePng(bytes: Uint8Array): RgbaImage {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

/** Images `[count, C, H, W]` in [−1, 1] → PNG bytes of a labelled grid. */
export function imageGridPng(images: NumArray, opts: ImageGridOptions): Uint8Array {
  return encodePng(imageGridRgba(images, opts));
}
