/**
 * The txt2img request the pipeline tests share: the tiny SD fixture, the reference prompt, guidance
 * 7.5 and seed 0 (as `reference.json` was recorded), one image, no console output.
 * @packageDocumentation
 */
import type { Txt2ImgOptions } from '../../src/cli/commands/txt2img.js';

/** The tiny Optimum-layout SD 1.x pipeline shipped with the tests. */
export const SD_FIXTURE = 'test/fixtures/tiny-sd-pipeline';

/** The shared request writing `out`, with `rest` on top (solver, budget, feature reuse …). */
export function fixtureRequest(out: string, rest: Partial<Txt2ImgOptions> = {}): Txt2ImgOptions {
  return { pipeline: SD_FIXTURE, prompt: 'a photo of a cat', guidance: 7.5, guidanceRescale: 0, count: 1, seed: 0, out, quiet: true, ...rest };
}
