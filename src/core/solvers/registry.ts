/**
 * The solver registry: every solver by its registry name, looked up by name or alias (e.g. a
 * diffusers scheduler class name). Unknown names throw an error that lists the valid ones.
 * @packageDocumentation
 */
import type { AnySolverSpec } from './types.js';
import { ddimSpec } from './ddim.js';
import { ddpmSpec } from './ddpm.js';
import { dpmpp1Spec } from './dpmpp-1.js';
import { eulerSpec } from './euler.js';
import { eulerAncestralSpec } from './euler-ancestral.js';
import { heunSpec } from './heun.js';
import { lmsSpec } from './lms.js';
import { plmsSpec } from './plms.js';
import { dpmSolver1Spec, dpmSolver2Spec, dpmSolver3Spec } from './dpm-solver.js';
import { dpmpp2sSpec, dpmpp3sSpec } from './dpmpp-singlestep.js';
import { dpmpp2mSpec, dpmpp3mSpec } from './dpmpp-multistep.js';
import { dpmpp2mSdeSpec } from './dpmpp-2m-sde.js';
import { unipcSpec } from './unipc.js';
import { deisSpec } from './deis.js';
import { dpm2AncestralSpec, dpm2Spec } from './kdpm2.js';
import { ipndmSpec } from './ipndm.js';
import { ipndmVSpec } from './ipndm-v.js';
import { lcmSpec } from './lcm.js';
import { tcdSpec } from './tcd.js';
import { dpmppSdeSpec } from './dpmpp-sde.js';
import { dpmpp2sAncestralSpec } from './dpmpp-2s-ancestral.js';

const ALL_SPECS: readonly AnySolverSpec[] = [
  // classic solvers
  ddimSpec,
  dpmpp1Spec,
  ddpmSpec,
  plmsSpec,
  eulerSpec,
  eulerAncestralSpec,
  heunSpec,
  lmsSpec,
  // higher-order solvers (DPM-Solver, DPM-Solver++, UniPC)
  dpmSolver1Spec,
  dpmSolver2Spec,
  dpmSolver3Spec,
  dpmpp2sSpec,
  dpmpp3sSpec,
  dpmpp2mSpec,
  dpmpp3mSpec,
  dpmpp2mSdeSpec,
  unipcSpec,
  deisSpec,
  dpm2Spec,
  dpm2AncestralSpec,
  ipndmSpec,
  ipndmVSpec,
  lcmSpec,
  tcdSpec,
  dpmppSdeSpec,
  dpmpp2sAncestralSpec,
];

/** Every solver by registry name. */
export const solverRegistry: Map<string, AnySolverSpec> = new Map(ALL_SPECS.map((s) => [s.name, s]));

const byAlias = new Map<string, AnySolverSpec>();
for (const spec of ALL_SPECS) {
  for (const key of [spec.name, ...(spec.aliases ?? [])]) {
    const k = key.toLowerCase();
    const prev = byAlias.get(k);
    if (prev && prev !== spec) throw new Error(`solver name/alias "${key}" is used by both ${prev.name} and ${spec.name}`);
    byAlias.set(k, spec);
  }
}

/** The solver named `name` (registry name or alias, case-insensitive). */
export function getSolver(name: string): AnySolverSpec {
  const spec = typeof name === 'string' ? byAlias.get(name.toLowerCase()) : undefined;
  if (!spec) {
    throw new Error(`unknown solver "${String(name)}": valid names are ${[...solverRegistry.keys()].join(', ')}`);
  }
  return spec;
}

/** All registered solvers, in registry order. */
export function listSolvers(): AnySolverSpec[] {
  return [...solverRegistry.values()];
}
