/**
 * `rediffuse` for Node.js (the `node` condition of the package's `.` export, and `rediffuse/node`):
 * everything of the browser entry (`src/index.ts`) plus what needs Node's file system or pngjs —
 * loading bundled models and cards from disk with onnxruntime-node, the Fashion-MNIST files and the
 * shipped reference statistics, PNG encoding, atomic file writes.
 * @packageDocumentation
 */
export * from '../index.js';
export {
  DEFAULT_MODEL_NAME,
  packageRoot,
  bundledModelPath,
  cardPathFor,
  loadModelCard,
  readModelBytes,
  loadOnnxModel,
  type LoadOnnxModelOptions,
  type LoadedOnnxModel,
} from './load-model.js';
export { nodePipelineReader } from './pipeline-folder.js';
export { FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
export { loadReferenceStatistics } from './reference-stats.js';
export { encodePng, decodePng, imageGridPng } from '../io/png.js';
export { writeFileAtomic, type AtomicWriteOptions } from '../io/atomic-write.js';
export { checkOutputPath, OutputPathError } from '../io/output-path.js';
export { packageVersion } from '../io/package-version.js';
