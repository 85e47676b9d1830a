/**
 * The model layer: an ONNX backend over an injected onnxruntime module (node or web), model cards,
 * and the graph surgery that makes any ONNX diffusion network feature-reuse capable.
 * Browser-safe: nothing here imports a Node API (see `load-node.ts` for loading files in Node).
 * @packageDocumentation
 */
export * from './ort-types.js';
export * from './float16.js';
export * from './model-card.js';
export * from './card-sample-options.js';
export * from './feature-reuse-setup.js';
export * from './onnx-backend.js';
export * from './feature-reuse-onnx-model.js';
export * from './onnx-graph/index.js';
