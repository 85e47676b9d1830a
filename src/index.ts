/**
 * `rediffuse` for browsers (and any bundler without the `node` condition): the sampling core, the
 * model layer, the metrics and the image-grid raster. No Node API. In Node, `rediffuse` resolves to
 * `src/node/index.ts` instead, which adds file loading, PNG output and atomic writes.
 *
 * The public surface is the union of the lists in `core/index.ts`, `model/index.ts` and
 * `metrics/index.ts` plus the image grid (docs/api.md).
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './model/index.js';
export * from './metrics/index.js';
export { imageGridRgba, type ImageGridOptions, type RgbaImage } from './io/image-grid.js';
