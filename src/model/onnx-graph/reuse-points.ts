/**
 * Finding FRDiff / DeepCache reuse points in an ONNX graph from its structure alone (no node names).
 *
 * Residual add: an `Add(u, v)` of two computed tensors with identical shapes where the skip `u` is
 * the block input `x` itself (an ancestor of `v`) or one cheap op of it (a 1×1 shortcut conv), and
 * the branch `v` depends on `x` through at least one Conv/MatMul/Gemm. The branch's nodes are
 * ancestors(v) ∩ descendants(x); data flow through Shape/Size is not counted as dependence.
 *
 * Policies (FRDiff §3, the official code's choice of tensors; DeepCache for `deepcache`):
 * - `frdiff`: per ResNet block (branch with ≥ 2 convs, no softmax) the first conv's output, i.e.
 *   before the time embedding is added; per attention/transformer block (branch containing a
 *   Softmax) the whole residual branch, or, when the branch ends in a multiplication by a gate that
 *   does not depend on `x` (DiT's adaLN-Zero `x + g ⊙ Attn(…)`), the branch before the gate, so the
 *   current gate is applied at reuse steps. Blocks nested inside a chosen block are not chosen;
 *   an add around ResNet or gated blocks is a model-level skip (EDM's c_skip·x + c_out·F), not a block.
 * - `dit`: for transformers (DiT, SD3's MMDiT joint blocks): every outermost residual branch of a
 *   transformer block, attention (a Softmax in the branch) and MLP / feed-forward (MatMul/Gemm, no
 *   Softmax, no Conv) alike, in every stream (SD3: the image and the context stream), each before
 *   its adaLN-Zero gate when it has one (x + g ⊙ F(…): F is cached, the current g applied at reuse
 *   steps). A reuse step then runs only the embeddings, the gates and the output layer.
 * - `residual`: the branch input `v` of every outermost residual add.
 * - `deepcache`: the deep input `d` of a U-Net skip concatenation `Concat(d, s)` (where `d` is
 *   computed from the encoder feature `s`); branch 0 is the shallowest skip, which skips the most.
 * - explicit tensor names.
 * @packageDocumentation
 */
import type { GraphIndex } from './graph-index.js';
import type { TensorInfo } from './shape-probe.js';

/** What a cached tensor is. */
export type ReusePointKind =
  'resnet-conv1' | 'attention-branch' | 'gated-attention' | 'mlp-branch' | 'gated-mlp' | 'residual-branch' | 'deep-feature' | 'explicit';

/** A tensor to cache at keyframes and feed at reuse steps. */
export interface ReusePoint {
  /** Tensor name in the graph. */
  name: string;
  /** Shape at batch 1 (the batch dimension, when there is one, is the first with `symbolic[k] === 'batch'`). */
  shape: number[];
  /** Per dimension: `batch` / another symbolic name, or null when fixed. */
  symbolic: (string | null)[];
  /** onnxruntime element type (e.g. `float32`). */
  dtype: string;
  kind: ReusePointKind;
  /** The block it belongs to: its residual Add / Concat node (name or `node #i`). */
  block: string;
}

/** Which tensors a keyframe caches (the reuse points): a preset name, DeepCache with a chosen skip branch, or explicit tensor names. */
export type ReusePointSelection =
  | 'frdiff'
  | 'residual'
  | 'deepcache'
  | 'dit'
  | { preset: 'frdiff' | 'residual' | 'dit' }
  | { preset: 'deepcache'; branch?: number }
  | { preset: 'tensors'; tensors: string[] };

/** Names accepted by {@link normalizePointSelection}. */
export const REUSE_POINT_PRESETS = ['frdiff', 'residual', 'deepcache', 'dit'] as const;

/** The selection as an object; throws on an unknown preset. */
export function normalizePointSelection(selection: ReusePointSelection | string[]): Exclude<ReusePointSelection, string> {
  if (Array.isArray(selection)) return { preset: 'tensors', tensors: selection };
  if (typeof selection === 'string') {
    if (!(REUSE_POINT_PRESETS as readonly string[]).includes(selection)) {
      throw new Error(`unknown reuse points '${selection}'; use one of ${REUSE_POINT_PRESETS.join(', ')}, or a list of tensor names`);
    }
    return { preset: selection } as Exclude<ReusePointSelection, string>;
  }
  if (!selection || ![...REUSE_POINT_PRESETS, 'tensors'].includes((selection as { preset: string }).preset)) {
    throw new Error(
      `malformed reuse points ${JSON.stringify(selection)}; use {preset: 'frdiff' | 'residual' | 'deepcache' | 'dit', branch?} or {preset: 'tensors', tensors: [...]}`,
    );
  }
  return selection;
}

/** A residual addition found in the graph. */
export interface ResidualAdd {
  /** Index of the Add node. */
  add: number;
  /** Block input `x`. */
  blockInput: string;
  /** Skip operand `u` (x or its shortcut). */
  skip: string;
  /** Branch operand `v`. */
  branch: string;
  /** Nodes of the branch: ancestors(v) ∩ descendants(x). */
  branchNodes: Set<number>;
}

/** A U-Net skip concatenation. */
export interface SkipConcat {
  concat: number;
  /** The encoder feature carried by the skip connection. */
  skip: string;
  /** The deeper feature computed from it. */
  deep: string;
}

const EXPENSIVE = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);

/** Class of a dimension for shape comparison: fixed, batch, or another symbolic dimension. */
const dimClass = (s: string | null) => (s === null ? 'fixed' : s === 'batch' ? 'batch' : 'dynamic');
const sameShape = (a?: TensorInfo, b?: TensorInfo) =>
  !!a && !!b && a.shape.length === b.shape.length && a.shape.every((d, k) => d === b.shape[k] && dimClass(a.symbolic[k]) === dimClass(b.symbolic[k]));

/** Every residual Add of the graph, in topological order. */
export function findResidualAdds(index: GraphIndex, shapes: ReadonlyMap<string, TensorInfo>): ResidualAdd[] {
  const found: ResidualAdd[] = [];
  index.nodes.forEach((node, i) => {
    if (index.op(i) !== 'Add' || (node.input ?? []).length !== 2) return;
    const [a, b] = node.input!;
    if (a === b || index.isConstant(a) || index.isConstant(b)) return;
    if (!sameShape(shapes.get(a), shapes.get(b))) return;
    for (const [u, v] of [
      [a, b],
      [b, a],
    ]) {
      let x: string | null = null;
      if (index.dependsOn(v, u)) x = u;
      else {
        // shortcut: u = op(x) with a single computed data input x that v depends on
        const p = index.producer.get(u);
        const dataIn = p === undefined ? [] : (index.nodes[p].input ?? []).filter((n) => n && !index.isConstant(n));
        if (dataIn.length === 1 && index.dependsOn(v, dataIn[0])) x = dataIn[0];
      }
      if (x === null) continue;
      const anc = index.dataAncestors(v);
      const desc = index.dataDescendants(x);
      const branchNodes = new Set([...anc].filter((n) => desc.has(n)));
      if (![...branchNodes].some((n) => EXPENSIVE.has(index.op(n)))) continue;
      found.push({ add: i, blockInput: x, skip: u, branch: v, branchNodes });
      return;
    }
  });
  return found;
}

/** U-Net skip concatenations, shallowest skip first. */
export function findSkipConcats(index: GraphIndex, shapes: ReadonlyMap<string, TensorInfo>): SkipConcat[] {
  const found: SkipConcat[] = [];
  index.nodes.forEach((node, i) => {
    if (index.op(i) !== 'Concat') return;
    const ins = (node.input ?? []).filter((n) => n && !index.isConstant(n) && shapes.get(n)?.dtype.startsWith('float'));
    if (ins.length < 2) return;
    for (const d of ins)
      for (const s of ins) {
        if (d !== s && index.dependsOn(d, s) && index.isComputed(s) && index.isComputed(d)) {
          const expensive = [...index.dataAncestors(d)].some((n) => EXPENSIVE.has(index.op(n)) && index.dataDescendants(s).has(n));
          if (expensive && !found.some((f) => f.concat === i)) found.push({ concat: i, skip: s, deep: d });
        }
      }
  });
  return found.sort((p, q) => index.producer.get(p.skip)! - index.producer.get(q.skip)! || q.concat - p.concat);
}

/** Label of node `i` for reports. */
function label(index: GraphIndex, i: number): string {
  return index.nodes[i].name || `node #${i} (${index.op(i)})`;
}

/** Drop the residual adds that lie inside another one's branch (keep the outermost blocks). */
function outermost<T extends ResidualAdd>(adds: T[]): T[] {
  return adds.filter((r) => !adds.some((o) => o !== r && o.branchNodes.has(r.add)));
}

/** A ResNet-type block: its branch holds ≥ 2 convs and no softmax. */
function isResnetLike(index: GraphIndex, r: ResidualAdd): boolean {
  const ops = [...r.branchNodes].map((n) => index.op(n));
  return !ops.includes('Softmax') && ops.filter((o) => o === 'Conv').length >= 2;
}

/**
 * Drop model-level wrappers: a residual add whose branch contains a ResNet-type block or a gated
 * (adaLN-Zero) block is a skip around the whole network (e.g. EDM's c_skip·x + c_out·F(x)), not a block.
 */
function dropWrappers(index: GraphIndex, adds: ResidualAdd[]): ResidualAdd[] {
  const inner = adds.filter((r) => isResnetLike(index, r) || peelGate(index, r.branch, r.blockInput) !== null);
  return adds.filter((r) => !inner.some((o) => o !== r && r.branchNodes.has(o.add)));
}

/** If `v = g ⊙ h` with `h` depending on `x` and `g` a non-constant gate independent of `x`, return `h`. */
function peelGate(index: GraphIndex, v: string, x: string): string | null {
  const p = index.producer.get(v);
  if (p === undefined || index.op(p) !== 'Mul') return null;
  const [a, b] = index.nodes[p].input ?? [];
  if (!a || !b) return null;
  const da = index.dependsOn(a, x);
  const db = index.dependsOn(b, x);
  if (da && !db && !index.isConstant(b)) return a;
  if (db && !da && !index.isConstant(a)) return b;
  return null;
}

/** The reuse points `selection` selects (before shape annotation): tensor, kind and block label. */
export function selectReusePoints(
  index: GraphIndex,
  shapes: ReadonlyMap<string, TensorInfo>,
  selection: Exclude<ReusePointSelection, string>,
): Omit<ReusePoint, 'shape' | 'symbolic' | 'dtype'>[] {
  if (selection.preset === 'tensors') return explicitPoints(index, shapes, selection.tensors);
  if (selection.preset === 'deepcache') {
    const skips = findSkipConcats(index, shapes);
    if (!skips.length) {
      throw new Error(
        'reuse points deepcache: needs a U-Net: this graph has no skip concatenation (a Concat joining an encoder feature with a deeper feature computed from it); use reuse points frdiff or residual',
      );
    }
    const branch = selection.branch ?? 0;
    if (!Number.isInteger(branch) || branch < 0 || branch >= skips.length) {
      throw new Error(
        `deepcache branch ${branch} does not exist; this U-Net has ${skips.length} skip branches: use 0 (shallowest, skips the most) … ${skips.length - 1} (deepest)`,
      );
    }
    const s = skips[branch];
    return [{ name: s.deep, kind: 'deep-feature', block: label(index, s.concat) }];
  }
  const adds = dropWrappers(index, findResidualAdds(index, shapes));
  const noPoints = (what: string) =>
    new Error(
      `reuse points ${selection.preset}: no reuse points found: the graph has no ${what}, so it does not look like a diffusion U-Net/DiT backbone; check the model file, or pass explicit tensor names as reuse points (names as rediffuse inspect prints them, comma-separated)`,
    );
  if (selection.preset === 'residual') {
    const chosen = outermost(adds);
    if (!chosen.length) throw noPoints('residual Add whose branch contains a Conv/MatMul/Gemm');
    return chosen.map((r) => ({ name: r.branch, kind: 'residual-branch', block: label(index, r.add) }));
  }
  type Candidate = ResidualAdd & { name: string; kind: ReusePointKind };
  const candidates: Candidate[] = [];
  for (const r of adds) {
    const ops = [...r.branchNodes].map((n) => index.op(n));
    if (ops.includes('Softmax')) {
      const inner = peelGate(index, r.branch, r.blockInput);
      candidates.push({ ...r, name: inner ?? r.branch, kind: inner ? 'gated-attention' : 'attention-branch' });
    } else if (selection.preset === 'dit') {
      // an MLP (feed-forward) branch: matrix products, no convolution
      if (ops.includes('Conv') || !ops.some((o) => o === 'MatMul' || o === 'Gemm')) continue;
      const inner = peelGate(index, r.branch, r.blockInput);
      candidates.push({ ...r, name: inner ?? r.branch, kind: inner ? 'gated-mlp' : 'mlp-branch' });
    } else if (isResnetLike(index, r)) {
      const firstConv = Math.min(...[...r.branchNodes].filter((n) => index.op(n) === 'Conv'));
      candidates.push({ ...r, name: index.nodes[firstConv].output![0], kind: 'resnet-conv1' });
    }
  }
  const chosen = outermost(candidates);
  if (!chosen.length && selection.preset === 'dit') {
    throw noPoints('transformer block (residual Add over a Softmax, or over MatMul/Gemm without convs)');
  }
  if (!chosen.length) throw noPoints('ResNet block (residual Add over ≥ 2 convs) nor attention block (residual Add over a Softmax)');
  return chosen.map((c) => ({ name: c.name, kind: c.kind, block: label(index, c.add) }));
}

/** Validate explicit tensor names. */
function explicitPoints(index: GraphIndex, shapes: ReadonlyMap<string, TensorInfo>, names: string[]): Omit<ReusePoint, 'shape' | 'symbolic' | 'dtype'>[] {
  if (!names.length) throw new Error('reuse points as tensor names need at least one name; run `rediffuse inspect MODEL.onnx` to list candidates');
  return names.map((name) => {
    if (!index.isComputed(name) || !shapes.has(name)) {
      const why = index.inputNames.includes(name)
        ? 'is a graph input'
        : index.initializerNames.has(name)
          ? 'is a weight (initializer)'
          : 'is not a tensor of this graph';
      throw new Error(`cannot cache tensor '${name}': it ${why}; pick a tensor computed by a node, e.g. ${closestNames(index, shapes, name).join(', ')}`);
    }
    if (index.isConstant(name)) throw new Error(`cannot cache tensor '${name}': it does not depend on the model inputs (a constant); pick an activation`);
    const p = index.producer.get(name)!;
    return { name, kind: 'explicit' as const, block: label(index, p) };
  });
}

/** Up to 12 computed float tensors whose names share the longest substrings with `name`. */
function closestNames(index: GraphIndex, shapes: ReadonlyMap<string, TensorInfo>, name: string): string[] {
  const lcs = (a: string, b: string) => {
    let best = 0;
    const prev = new Array(b.length + 1).fill(0);
    for (let i = 1; i <= a.length; i++) {
      let diag = 0;
      for (let j = 1; j <= b.length; j++) {
        const tmp = prev[j];
        prev[j] = a[i - 1] === b[j - 1] ? diag + 1 : 0;
        if (prev[j] > best) best = prev[j];
        diag = tmp;
      }
    }
    return best;
  };
  const cands = [...shapes.entries()]
    .filter(([n, info]) => info.dtype.startsWith('float') && index.isComputed(n) && !index.isConstant(n))
    .map(([n]) => n);
  return cands
    .map((n) => ({ n, s: lcs(name.toLowerCase(), n.toLowerCase()) }))
    .sort((p, q) => q.s - p.s || index.producer.get(p.n)! - index.producer.get(q.n)!)
    .slice(0, 12)
    .map((c) => `'${c.n}'`);
}
