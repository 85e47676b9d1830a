/**
 * Fashion-MNIST (Xiao et al. 2017) in its IDX files, as Debian's `dataset-fashion-mnist` installs them
 * under /usr/share/datasets/fashion-mnist: the real images that FD-classifier, KID and precision/recall
 * compare samples against. Browser-safe: parsing only; `loadFashionMnist` in `src/node/` reads the files.
 *
 * IDX layout: a big-endian header (two zero bytes, the element-type code 0x08 = uint8, the number of
 * dimensions r), r big-endian uint32 sizes, then the row-major data.
 * @packageDocumentation
 */

/** Fashion-MNIST class names, label order. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

/** A uint8 IDX array. */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parse an (uncompressed) IDX file of uint8 elements. */
export function parseIdx(bytes: Uint8Array): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new RangeError('parseIdx: not an IDX file (bad magic); gunzip the .gz file first');
  }
  if (bytes[2] !== 0x08) {
    throw new RangeError(`parseIdx: element type 0x${bytes[2]!.toString(16)} is not uint8 (0x08); only uint8 IDX files are supported`);
  }
  const rank = bytes[3]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const offset = 4 + 4 * rank;
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - offset !== size) {
    throw new RangeError(
      `parseIdx: header says ${size} elements [${shape.join('×')}] but the file holds ${bytes.length - offset}; the file is truncated or corrupt`,
    );
  }
  return { shape, data: bytes.subarray(offset) };
}

/** uint8 pixels 0..255 → float32 in [−1, 1] (x/127.5 − 1), the models' input scale. */
export function pixelsToUnitRange(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! / 127.5 - 1;
  return out;
}

/** Images and labels of one split. */
export interface FashionMnistSplit {
  /** Number of images. */
  count: number;
  /** `[count, 1, 28, 28]` uint8 pixels. */
  pixels: Uint8Array;
  /** `count` labels 0..9. */
  labels: Uint8Array;
}
