/**
 * rediffuse for Node.js: the sampling core, the model layer, metrics, PNG output and Node file
 * loading. Browsers import `rediffuse/core` and `rediffuse/model` (no Node API) instead.
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './model/index.js';
export * from './model/load-node.js';
export * from './metrics/index.js';
export * from './io/png.js';
export * from './io/atomic-write.js';
