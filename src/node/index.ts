/**
 * `rediffuse` for Node.js (the `node` condition of the package's `.` export, and `rediffuse/node`):
 * everything of the browser entry (`src/index.ts`) plus what needs Node's file system or pngjs —
 * loading bundled models and cards from disk with onnxruntime-node, the Fashion-MNIST files and the
 * shipped reference statistics, PNG encoding, atomic file writes — and the autotuner (`tune`, the tuned-configuration file), which measures on ONNX models from disk.
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
export {
  tune,
  tuneOnnxModel,
  TuneError,
  objectiveOf,
  meetsObjective,
  pickBest,
  seedStreams,
  checkDisjointSeeds,
  candidatePlan,
  DEFAULT_CALIBRATION,
  DEFAULT_HELD_OUT_SEED,
  type TuneOptions,
  type TuneOnnxModelOptions,
  type TuneResult,
  type TuneEvaluation,
  type TuneEvent,
  type TuneSeeds,
} from '../bench/tune.js';
export { defaultSearchSpace, candidateLabel, type TuneCandidate, type SearchSpaceOptions } from '../bench/tune-space.js';
export {
  TUNED_CONFIG_FORMAT,
  readTunedConfig,
  writeTunedConfig,
  validateTunedConfig,
  validateTunedSampling,
  TunedConfigError,
  type TunedConfig,
  type TunedSampling,
  type TuneObjective,
  type TuneFigures,
  type TuneFrontEntry,
} from '../bench/tune-config.js';
export type { BenchSetup } from '../bench/setup.js';
