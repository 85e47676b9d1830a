/**
 * PFDiff's k_h setting as text: `2_1` is k = 2 (one call moves k + 1 base intervals) and h = 1 (the
 * springboard sits h intervals ahead), with 1 ≤ h ≤ k ≤ 3 (PFDiff §3.3; the six settings the paper
 * searches are {@link PFDIFF_CONFIGS}). The CLI, the bench grid and the web page all read it here.
 * @packageDocumentation
 */
import { PFDIFF_CONFIGS, type PfdiffKH } from './pfdiff.js';

const KH_TEXT = /^\s*(\d+)[_,:](\d+)\s*$/;

/** `k_h` as written in reports, grids and cell keys: `${k}_${h}`. */
export function formatKH(kh: PfdiffKH): string {
  return `${kh.k}_${kh.h}`;
}

/**
 * Parse `k_h` (`2_1`; `2,1` and `2:1` are read the same) into integers with 1 ≤ h ≤ k ≤ 3. Throws a
 * RangeError listing the valid settings.
 */
export function parseKH(text: string): PfdiffKH {
  const m = KH_TEXT.exec(text);
  const k = m ? Number(m[1]) : NaN;
  const h = m ? Number(m[2]) : NaN;
  if (!m || !PFDIFF_CONFIGS.some((c) => c.k === k && c.h === h)) {
    throw new RangeError(`expected k_h with 1 ≤ h ≤ k ≤ 3 (one of ${PFDIFF_CONFIGS.map(formatKH).join(', ')}), got "${text}"`);
  }
  return { k, h };
}
