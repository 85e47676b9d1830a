/**
 * `rediffuse/model`: an ONNX backend over an injected onnxruntime module (`onnxruntime-node` or
 * `onnxruntime-web`), model cards, and the graph surgery that makes a stock ONNX diffusion network
 * feature-reuse capable. Browser-safe: nothing here imports a Node API (loading files from disk is
 * `src/node/load-model.ts`, in the Node entry).
 *
 * The list below is the public surface (docs/api.md); the rest of `src/model/` is internal.
 * @packageDocumentation
 */
export type {
  OrtElementType,
  OrtModuleLike,
  OrtSessionLike,
  OrtSessionOptionsLike,
  OrtTensorData,
  OrtTensorLike,
  OrtValueMetadataLike,
} from './ort-types.js';
export {
  parseModelCard,
  resolveClassLabel,
  cardSamplingSetup,
  solverSettingsFor,
  MODEL_INPUT_ROLES,
  type ModelCard,
  type ModelCardInput,
  type ModelInputRole,
  type TimestepValue,
  type ImageRange,
  type CardSamplingSetup,
  type CardSolverSettings,
} from './model-card.js';
export { OnnxDiffusionModel, type OnnxModelOptions, type OnnxInputBinding, type OnnxSignature, type OnnxModelStats } from './onnx-backend.js';
export { createOnnxSession, onnxSessionOptions, type OnnxSessionSettings } from './onnx-session.js';
export type { OnnxExtraInput, OnnxTimestepEncoding } from './onnx-signature.js';
export {
  StableDiffusionPipeline,
  toImages,
  type StableDiffusionLoadOptions,
  type PromptEmbedding,
  type SdxlSizeConditioning,
  type TextToImageRequest,
  type TextToImageResult,
  type ImageToImageRequest,
  type PipelineSampleRun,
} from './pipeline/sd-pipeline.js';
export { ClipTokenizer } from './pipeline/clip-tokenizer.js';
export { fitLatentRgbProjection, previewLatents, type LatentRgbProjection } from './pipeline/latent-preview.js';
export { parseNpy, type NpyArray } from './pipeline/npy.js';
export {
  readPipelineConfigs,
  checkPipelineParts,
  checkSdxlConditioning,
  SDXL_UNET_INPUTS,
  PipelineFolderError,
  type PipelineConfigs,
  type DenoiserKind,
} from './pipeline/pipeline-config.js';
export { checkSd3Transformer, SD3_TRANSFORMER_INPUTS, SD3_CARD_INPUTS } from './pipeline/sd3-transformer.js';
export { fetchPipelineReader, memoryPipelineReader, type PipelineFileReader, type FetchLike } from './pipeline/pipeline-files.js';
export { starterCard, parseSchedulerConfigText, type StarterCard, type StarterCardOptions } from './card-init.js';
export {
  FeatureReuseOnnxModel,
  parseReusePoints,
  reusePointsName,
  type ReusePointsSpec,
  type FeatureReuseOnnxOptions,
  type FeatureReuseOnnxStats,
  type KindStats,
} from './feature-reuse-onnx-model.js';
export {
  sampleOptionsFromCard,
  cardConditioning,
  SampleRequestError,
  DEFAULT_GUIDANCE_SCALE,
  type CardSampleRequest,
  type CardConditioning,
} from './card-sample-options.js';
export {
  createFeatureReuseSetup,
  createFeatureReuseNets,
  featureReuseFor,
  normalizeReusePoints,
  type FeatureReuseChoice,
  type FeatureReuseRunSetup,
  type FeatureReuseSetupOptions,
  type FeatureReuseNets,
  type FeatureReuseNetsOptions,
} from './feature-reuse-setup.js';
export {
  decodeModel,
  encodeModel,
  analyzeOnnxModel,
  buildFeatureReuseGraphs,
  findResidualAdds,
  findSkipConcats,
  selectReusePoints,
  normalizePointSelection,
  REUSE_POINT_PRESETS,
  nodeOpCount,
  totalOpCount,
  type OnnxModel,
  type AnalyzedOnnxModel,
  type FeatureReuseBuildOptions,
  type FeatureReuseGraphs,
  type ReuseFlops,
  type ReusePointSelection,
  type ReusePoint,
  type ReusePointKind,
  type ResidualAdd,
  type SkipConcat,
  type OpCount,
} from './onnx-graph/index.js';
export { buildProbeGraph, firstBlockSignal, type ProbeGraph } from './onnx-graph/probe-graph.js';
