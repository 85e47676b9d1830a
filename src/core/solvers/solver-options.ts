/**
 * The options of every registered solver, keyed by registry name, so that `sample({ solver: 'ddim',
 * solverOptions: { eta: 0.5 } })` is type-checked against DDIM's options (the values are checked
 * at run time by each solver's rules either way).
 * @packageDocumentation
 */
import type { DdimOptions } from './ddim.js';
import type { DdpmOptions } from './ddpm.js';
import type { DeisOptions } from './deis.js';
import type { Dpm2AncestralOptions, Dpm2Options } from './kdpm2.js';
import type { IpndmOptions } from './ipndm.js';
import type { LcmOptions } from './lcm.js';
import type { TcdOptions } from './tcd.js';
import type { DpmppSdeOptions } from './dpmpp-sde.js';
import type { Dpmpp2sAncestralOptions } from './dpmpp-2s-ancestral.js';
import type { Dpmpp1Options } from './dpmpp-1.js';
import type { Dpmpp2mSdeOptions } from './dpmpp-2m-sde.js';
import type { Dpmpp3mOptions, DpmppMultistepOptions } from './dpmpp-multistep.js';
import type { EulerOptions } from './euler.js';
import type { EulerAncestralOptions } from './euler-ancestral.js';
import type { HeunOptions } from './heun.js';
import type { LmsOptions } from './lms.js';
import type { PlmsOptions } from './plms.js';
import type { SinglestepOptions } from './singlestep-plan.js';
import type { UniPcOptions } from './unipc.js';

/** Options type of each registry solver name. */
export interface SolverOptionsMap {
  ddim: DdimOptions;
  dpmpp_1: Dpmpp1Options;
  ddpm: DdpmOptions;
  plms: PlmsOptions;
  euler: EulerOptions;
  euler_a: EulerAncestralOptions;
  heun: HeunOptions;
  lms: LmsOptions;
  dpm_solver_1: SinglestepOptions;
  dpm_solver_2: SinglestepOptions;
  dpm_solver_3: SinglestepOptions;
  dpmpp_2s: SinglestepOptions;
  dpmpp_3s: SinglestepOptions;
  dpmpp_2m: DpmppMultistepOptions;
  dpmpp_3m: Dpmpp3mOptions;
  deis: DeisOptions;
  dpm_2: Dpm2Options;
  dpm_2_a: Dpm2AncestralOptions;
  ipndm: IpndmOptions;
  ipndm_v: IpndmOptions;
  lcm: LcmOptions;
  tcd: TcdOptions;
  dpmpp_sde: DpmppSdeOptions;
  dpmpp_2s_a: Dpmpp2sAncestralOptions;
  dpmpp_2m_sde: Dpmpp2mSdeOptions;
  unipc: UniPcOptions;
}

/** A registry solver name. */
export type SolverName = keyof SolverOptionsMap;

/** The options of solver `S` (any option object for a name that is not a registry literal). */
export type SolverOptionsOf<S extends string> = S extends SolverName ? Partial<SolverOptionsMap[S]> : Record<string, unknown>;
