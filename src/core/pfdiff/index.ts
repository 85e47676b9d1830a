/**
 * PFDiff (Wang et al., ICLR 2025): timestep skipping with past and future model outputs — the
 * first-order method, the past-only variant for singlestep higher-order solvers, our experimental
 * multistep and Adams (ipndm_v) variants, and a (k, h) picker.
 * @packageDocumentation
 */
export * from './first-order-step.js';
export * from './pfdiff.js';
export * from './pfdiff-higher-order.js';
export * from './pfdiff-multistep.js';
export * from './pfdiff-adams.js';
export * from './pfdiff-spec.js';
export * from './pick-kh.js';
export * from './kh.js';
