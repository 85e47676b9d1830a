/**
 * Feature reuse on ONNX graphs: protobuf I/O, structural reuse-point detection, keyframe/reuse graph
 * surgery, FLOP accounting and the two-session runtime.
 * @packageDocumentation
 */
export { decodeModel, encodeModel, type OnnxModel } from './onnx-proto.js';
export { GraphIndex } from './graph-index.js';
export { probeTensorShapes, type TensorInfo, type ShapeProbeOptions } from './shape-probe.js';
export { nodeOpCount, totalOpCount, type OpCount } from './flops.js';
export {
  findResidualAdds,
  findSkipConcats,
  normalizePointSelection,
  selectReusePoints,
  REUSE_POINT_PRESETS,
  type ReusePointSelection,
  type ReusePoint,
  type ReusePointKind,
  type ResidualAdd,
  type SkipConcat,
} from './reuse-points.js';
export {
  analyzeOnnxModel,
  buildFeatureReuseGraphs,
  type AnalyzedOnnxModel,
  type FeatureReuseBuildOptions,
  type FeatureReuseGraphs,
  type ReuseFlops,
} from './feature-reuse-graphs.js';
export { FeatureReuseSession, selectCacheRows, type FeatureCache, type KeyframeResult } from './feature-reuse-session.js';
