/**
 * The messages between the page and its sampling worker (web/worker.ts). The page posts one
 * {@link WorkerRequest} per run; the worker answers with progress after every solver step (a grid
 * preview at most every {@link PREVIEW_INTERVAL_MS}, and always on the first and last step) and then
 * one result or one error.
 * @packageDocumentation
 */
import type { WebRunResult, WebRunSettings } from './web-sampler.js';

/** Least time between two previews the worker sends (ms): a preview is a whole grid raster. */
export const PREVIEW_INTERVAL_MS = 50;

/** Page → worker: run these settings. */
export interface WorkerRequest {
  id: number;
  type: 'run';
  settings: WebRunSettings;
}

/** Worker → page: one solver step done. */
export interface WorkerProgress {
  id: number;
  type: 'progress';
  step: number;
  steps: number;
  calls: number;
  fullCalls: number;
  reuseCalls: number;
  skippedCalls: number;
  /** The step's x̂0 (or x) as the result's grid, RGBA; absent on throttled steps. */
  preview?: { width: number; height: number; data: Uint8Array };
}

/**
 * A run's result as the worker sends it: the arrays as typed arrays, moved to the page (transferred,
 * not copied), so receiving a large grid does not hold up the page's main thread.
 */
export type WorkerResult = Omit<WebRunResult, 'samples' | 'rgba'> & { samples: Float64Array; rgba: { width: number; height: number; data: Uint8Array } };

/** Worker → page: the run ended. */
export type WorkerDone = { id: number; type: 'result'; result: WorkerResult } | { id: number; type: 'error'; message: string };

export type WorkerMessage = WorkerProgress | WorkerDone;
