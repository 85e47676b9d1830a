/**
 * Node.js-only: read Fashion-MNIST's gzipped IDX files from disk (Debian's `dataset-fashion-mnist`
 * installs them under /usr/share/datasets/fashion-mnist). The format itself is parsed by the
 * browser-safe `parseIdx` of `src/metrics/fashion-mnist.ts`.
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { parseIdx, type FashionMnistSplit, type IdxArray } from '../metrics/fashion-mnist.js';

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Load a split (`t10k` test or `train`) from the gzipped IDX files in `dir`. Throws an error that
 * names the Debian package when the files are missing.
 */
export async function loadFashionMnist(split: 't10k' | 'train', dir: string = FASHION_MNIST_DIR): Promise<FashionMnistSplit> {
  const read = async (name: string): Promise<IdxArray> => {
    const path = `${dir}/${name}`;
    let raw: Uint8Array;
    try {
      raw = await readFile(path);
    } catch {
      throw new Error(`loadFashionMnist: ${path} not found; install Debian's dataset-fashion-mnist package or pass the folder holding the IDX files`);
    }
    return parseIdx(path.endsWith('.gz') ? gunzipSync(raw) : raw);
  };
  const images = await read(`${split}-images-idx3-ubyte.gz`);
  const labels = await read(`${split}-labels-idx1-ubyte.gz`);
  if (images.shape.length !== 3 || images.shape[1] !== 28 || images.shape[2] !== 28 || labels.shape[0] !== images.shape[0]) {
    throw new RangeError(`loadFashionMnist: unexpected shapes [${images.shape.join('×')}] and [${labels.shape.join('×')}]; expected [N×28×28] and [N]`);
  }
  return { count: images.shape[0]!, pixels: images.data, labels: labels.data };
}
