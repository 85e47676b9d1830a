/**
 * Read-only index of an ONNX graph for structural analysis: producers, consumers, topological
 * positions, constant-ness, and data-flow ancestry (which ignores edges that only carry a shape).
 * @packageDocumentation
 */
import { int64ToNumber, type OnnxAttribute, type OnnxGraph, type OnnxNode } from './onnx-proto.js';

/** Ops whose output is a shape or size: the value they read from their input is not its data. */
const SHAPE_ONLY_OPS = new Set(['Shape', 'Size']);

/** Indexed view of a {@link OnnxGraph}. Node indices are positions in `graph.node` (topological in valid ONNX). */
export class GraphIndex {
  /** The nodes, in file (topological) order. */
  readonly nodes: readonly OnnxNode[];
  /** Tensor name → index of the node producing it. */
  readonly producer = new Map<string, number>();
  /** Tensor name → indices of nodes reading it (subgraph reads included). */
  readonly consumers = new Map<string, number[]>();
  /** Names of the graph's runtime inputs (inputs that are not initializers). */
  readonly inputNames: readonly string[];
  /** Names of the graph outputs. */
  readonly outputNames: readonly string[];
  /** Initializer names. */
  readonly initializerNames: ReadonlySet<string>;
  /** Per node: the tensors it reads, including names captured by its subgraph attributes. */
  readonly nodeInputs: readonly string[][];
  private readonly constCache = new Map<string, boolean>();

  constructor(readonly graph: OnnxGraph) {
    this.nodes = graph.node ?? [];
    this.initializerNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
    this.inputNames = (graph.input ?? []).map((v) => v.name ?? '').filter((n) => !this.initializerNames.has(n));
    this.outputNames = (graph.output ?? []).map((v) => v.name ?? '');
    const inputs: string[][] = [];
    this.nodes.forEach((node, i) => {
      for (const out of node.output ?? []) if (out) this.producer.set(out, i);
      const reads = nodeReads(node);
      inputs.push(reads);
      for (const name of reads) {
        const list = this.consumers.get(name);
        if (list) list.push(i);
        else this.consumers.set(name, [i]);
      }
    });
    this.nodeInputs = inputs;
  }

  /** The op type of node `i`. */
  op(i: number): string {
    return this.nodes[i].opType ?? '';
  }

  /** Integer attribute `name` of node `i`, or `fallback`. */
  intAttr(i: number, name: string, fallback: number): number {
    const a = findAttr(this.nodes[i], name);
    return a && a.i !== undefined && a.i !== null ? int64ToNumber(a.i) : fallback;
  }

  /** Integer-list attribute `name` of node `i`, or `undefined`. */
  intsAttr(i: number, name: string): number[] | undefined {
    const a = findAttr(this.nodes[i], name);
    return a?.ints && a.ints.length ? a.ints.map(int64ToNumber) : undefined;
  }

  /** Whether `name` is produced by a node (i.e. an intermediate or output tensor, not an input or weight). */
  isComputed(name: string): boolean {
    return this.producer.has(name);
  }

  /** True when `name` does not depend on any runtime graph input (weights, constants, folded subgraphs). */
  isConstant(name: string): boolean {
    const hit = this.constCache.get(name);
    if (hit !== undefined) return hit;
    let result: boolean;
    if (this.initializerNames.has(name) || name === '') result = true;
    else if (this.inputNames.includes(name)) result = false;
    else {
      const p = this.producer.get(name);
      result = p === undefined ? true : this.nodeInputs[p].every((n) => this.isConstant(n));
    }
    this.constCache.set(name, result);
    return result;
  }

  /**
   * Indices of the nodes `tensor` depends on through data (not through Shape/Size), stopping at
   * the tensors in `stopAt` (their producers are not entered).
   */
  dataAncestors(tensor: string, stopAt?: ReadonlySet<string>): Set<number> {
    const seen = new Set<number>();
    const stack = [tensor];
    while (stack.length) {
      const name = stack.pop()!;
      if (stopAt?.has(name)) continue;
      const p = this.producer.get(name);
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      if (SHAPE_ONLY_OPS.has(this.op(p))) continue;
      for (const inp of this.nodeInputs[p]) if (inp) stack.push(inp);
    }
    return seen;
  }

  /** Indices of the nodes that read `tensor` through data, transitively (Shape/Size outputs not followed). */
  dataDescendants(tensor: string): Set<number> {
    const seen = new Set<number>();
    const stack = [tensor];
    while (stack.length) {
      const name = stack.pop()!;
      for (const c of this.consumers.get(name) ?? []) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (SHAPE_ONLY_OPS.has(this.op(c))) continue;
        for (const out of this.nodes[c].output ?? []) if (out) stack.push(out);
      }
    }
    return seen;
  }

  /** Whether `tensor` depends through data on `ancestor` (a tensor name). */
  dependsOn(tensor: string, ancestor: string): boolean {
    if (tensor === ancestor) return true;
    const p = this.producer.get(ancestor);
    if (p === undefined) {
      // a graph input: look for a reader of it among the ancestors
      const anc = this.dataAncestors(tensor);
      for (const i of anc) if (this.nodeInputs[i].includes(ancestor) && !SHAPE_ONLY_OPS.has(this.op(i))) return true;
      return false;
    }
    return this.dataAncestors(tensor).has(p);
  }

  /**
   * Nodes needed to compute `outputs` when the tensors in `sources` are given (dead-code
   * elimination from the outputs), in topological order.
   */
  liveNodes(outputs: readonly string[], sources: ReadonlySet<string>): number[] {
    const live = new Set<number>();
    const stack = [...outputs];
    while (stack.length) {
      const name = stack.pop()!;
      if (!name || sources.has(name)) continue;
      const p = this.producer.get(name);
      if (p === undefined || live.has(p)) continue;
      live.add(p);
      for (const inp of this.nodeInputs[p]) stack.push(inp);
    }
    return [...live].sort((a, b) => a - b);
  }
}

/** Attribute `name` of `node`, if set. */
export function findAttr(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

/** Tensors a node reads: its inputs plus outer-scope names used inside its subgraphs (If/Loop/Scan). */
function nodeReads(node: OnnxNode): string[] {
  const reads = (node.input ?? []).filter((n) => n !== '');
  for (const attr of node.attribute ?? []) {
    const graphs = [...(attr.g ? [attr.g] : []), ...(attr.graphs ?? [])];
    for (const g of graphs) reads.push(...outerScopeReads(g));
  }
  return [...new Set(reads)];
}

/** Names a subgraph reads that it neither defines nor receives as inputs/initializers. */
function outerScopeReads(g: OnnxGraph): string[] {
  const local = new Set<string>([...(g.input ?? []).map((v) => v.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? '')]);
  const reads: string[] = [];
  for (const node of g.node ?? []) {
    for (const r of nodeReads(node)) if (!local.has(r)) reads.push(r);
    for (const o of node.output ?? []) local.add(o);
  }
  for (const o of g.output ?? []) if (o.name && !local.has(o.name)) reads.push(o.name);
  return reads;
}
