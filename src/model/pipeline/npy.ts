/**
 * Reading NumPy `.npy` arrays (format versions 1–3): little-endian float32 / float64 in C order, the
 * form `numpy.save` writes for `initial_latents.npy`. Browser-safe.
 * @packageDocumentation
 */

/** A parsed `.npy` array. */
export interface NpyArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Parse `.npy` bytes into float32 values; throws naming what is unsupported. */
export function parseNpy(bytes: Uint8Array, label = '.npy file'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new Error(`${label} is not a NumPy .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*True/.test(header);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${label}: malformed .npy header ${JSON.stringify(header)}`);
  if (fortran) throw new Error(`${label}: Fortran-order arrays are not supported; save it with numpy.ascontiguousarray`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const data = new Float32Array(count);
  if (descr === '<f4') {
    if (bytes.length - offset < count * 4) throw new Error(`${label}: truncated (${bytes.length - offset} data bytes for ${count} float32)`);
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(offset + 4 * i, true);
  } else if (descr === '<f8') {
    if (bytes.length - offset < count * 8) throw new Error(`${label}: truncated (${bytes.length - offset} data bytes for ${count} float64)`);
    for (let i = 0; i < count; i++) data[i] = view.getFloat64(offset + 8 * i, true);
  } else {
    throw new Error(`${label}: dtype ${descr} is not supported; save float32 (<f4) or float64 (<f8) values`);
  }
  return { shape, data };
}
