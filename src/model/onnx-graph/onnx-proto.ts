/**
 * ONNX protobuf (de)serialisation with protobufjs and a hand-written subset of `onnx.proto`.
 *
 * The schema below keeps the field numbers, wire types and `packed` options of the official
 * `onnx/onnx.proto` (proto2, IR version 10), so a decode → encode cycle reproduces the bytes the
 * C++ serializer wrote. Sub-messages rediffuse never looks into (functions, training info, sparse
 * tensors, sequence/map/optional types, quantization annotations, segments) are declared as opaque
 * `bytes`: a length-delimited field round-trips verbatim whatever its inner schema is. Fields of
 * future ONNX versions that are not declared here are kept too: decoding keeps protobufjs's unknown
 * fields (`$unknowns`, re-emitted after the known ones), and {@link withFields} carries them into
 * edited copies. The tests check byte equality on the bundled models and an unknown-field round trip.
 * @packageDocumentation
 */
import protobuf from 'protobufjs';

const ONNX_SUBSET_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; SPARSE_TENSOR = 11;
    TYPE_PROTO = 13; FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
    SPARSE_TENSORS = 12; TYPE_PROTOS = 14;
  }
  optional string name = 1;
  optional string ref_attr_name = 21;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  optional bytes sparse_tensor = 22;
  optional TypeProto tp = 14;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
  repeated bytes sparse_tensors = 23;
  repeated TypeProto type_protos = 15;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
  repeated StringStringEntryProto metadata_props = 4;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  optional string overload = 8;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  repeated StringStringEntryProto metadata_props = 9;
  repeated bytes device_configurations = 10;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
  repeated bytes training_info = 20;
  repeated bytes functions = 25;
  repeated bytes configuration = 26;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated bytes sparse_initializer = 15;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
  repeated bytes quantization_annotation = 14;
  repeated StringStringEntryProto metadata_props = 16;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional bytes segment = 3;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13;
  optional int32 data_location = 14;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;
}

message TensorShapeProto {
  message Dimension {
    optional int64 dim_value = 1;
    optional string dim_param = 2;
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  optional Tensor tensor_type = 1;
  optional bytes sequence_type = 4;
  optional bytes map_type = 5;
  optional bytes optional_type = 9;
  optional bytes sparse_tensor_type = 8;
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** An int64 as protobufjs decodes it: a number, or a `Long` when the `long` package is present. */
export type Int64 = number | { toNumber(): number };

/** `TensorShapeProto.Dimension`. */
export interface OnnxDimension {
  dimValue?: Int64 | null;
  dimParam?: string | null;
  denotation?: string | null;
}
/** `TypeProto` (only the tensor case is interpreted). */
export interface OnnxType {
  tensorType?: { elemType?: number | null; shape?: { dim?: OnnxDimension[] } | null } | null;
  [other: string]: unknown;
}
/** `ValueInfoProto`. */
export interface OnnxValueInfo {
  name?: string | null;
  type?: OnnxType | null;
  docString?: string | null;
  [other: string]: unknown;
}
/** `TensorProto` (initializers and tensor attributes). */
export interface OnnxTensor {
  dims?: Int64[];
  dataType?: number | null;
  name?: string | null;
  rawData?: Uint8Array | null;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Int64[];
  doubleData?: number[];
  [other: string]: unknown;
}
/** `AttributeProto`. */
export interface OnnxAttribute {
  name?: string | null;
  type?: number | null;
  f?: number | null;
  i?: Int64 | null;
  s?: Uint8Array | null;
  t?: OnnxTensor | null;
  g?: OnnxGraph | null;
  floats?: number[];
  ints?: Int64[];
  graphs?: OnnxGraph[];
  [other: string]: unknown;
}
/** `NodeProto`. */
export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  attribute?: OnnxAttribute[];
  [other: string]: unknown;
}
/** `GraphProto`. */
export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string | null;
  initializer?: OnnxTensor[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
  valueInfo?: OnnxValueInfo[];
  [other: string]: unknown;
}
/** `ModelProto`. */
export interface OnnxModel {
  irVersion?: Int64 | null;
  opsetImport?: { domain?: string | null; version?: Int64 | null }[];
  graph?: OnnxGraph | null;
  [other: string]: unknown;
}

/** ONNX `TensorProto.DataType` codes rediffuse names. */
export const ONNX_DTYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  BFLOAT16: 16,
} as const;

const DTYPE_NAMES: Record<number, { name: string; bytes: number }> = {
  1: { name: 'float32', bytes: 4 },
  2: { name: 'uint8', bytes: 1 },
  3: { name: 'int8', bytes: 1 },
  4: { name: 'uint16', bytes: 2 },
  5: { name: 'int16', bytes: 2 },
  6: { name: 'int32', bytes: 4 },
  7: { name: 'int64', bytes: 8 },
  9: { name: 'bool', bytes: 1 },
  10: { name: 'float16', bytes: 2 },
  11: { name: 'float64', bytes: 8 },
  12: { name: 'uint32', bytes: 4 },
  13: { name: 'uint64', bytes: 8 },
  16: { name: 'bfloat16', bytes: 2 },
};

/** onnxruntime's element-type name and byte size of an ONNX data-type code. */
export function dtypeInfo(code: number): { name: string; bytes: number } {
  const info = DTYPE_NAMES[code];
  if (!info)
    throw new Error(`ONNX data type ${code} is not supported by rediffuse's graph tools; supported codes: ${Object.keys(DTYPE_NAMES).join(', ')}`);
  return info;
}

/** The ONNX data-type code of an onnxruntime element-type name (inverse of {@link dtypeInfo}). */
export function dtypeCode(name: string): number {
  for (const [code, info] of Object.entries(DTYPE_NAMES)) if (info.name === name) return Number(code);
  throw new Error(
    `element type '${name}' has no ONNX code here; use one of ${Object.values(DTYPE_NAMES)
      .map((d) => d.name)
      .join(', ')}`,
  );
}

/** An int64 field as a JS number (exact below 2^53, which covers every shape and attribute we read). */
export function int64ToNumber(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

let cachedModelType: protobuf.Type | null = null;

/** The protobufjs `onnx.ModelProto` type, built once from the embedded schema. */
export function modelProtoType(): protobuf.Type {
  if (!cachedModelType) cachedModelType = protobuf.parse(ONNX_SUBSET_PROTO, { keepCase: false }).root.lookupType('onnx.ModelProto');
  return cachedModelType;
}

/** Decode ONNX model bytes (an `.onnx` file) into a mutable message tree. */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  let model: OnnxModel;
  try {
    const reader = protobuf.Reader.create(bytes);
    reader.discardUnknown = false;
    model = modelProtoType().decode(reader) as unknown as OnnxModel;
  } catch (err) {
    throw new Error(
      `cannot parse the ONNX model (${(err as Error).message}); pass the bytes of an .onnx file (ModelProto), not external data or a text dump`,
      { cause: err },
    );
  }
  if (!model.graph) throw new Error('the ONNX model has no graph; pass a complete ModelProto exported with torch.onnx.export or onnx.save');
  return model;
}

/**
 * A shallow copy of a decoded message with some fields replaced; unlike `{...msg}` it keeps the
 * message's class and its unknown fields, so they are encoded again.
 */
export function withFields<T extends object>(msg: T, changes: Partial<T>): T {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(msg)) as T, msg, changes);
  const unknowns = (msg as { $unknowns?: unknown }).$unknowns;
  if (unknowns) Object.defineProperty(copy, '$unknowns', { value: unknowns, writable: true, enumerable: false, configurable: true });
  return copy;
}

/** Encode a message tree (as returned by {@link decodeModel}, possibly edited) into ONNX bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const type = modelProtoType();
  const msg = type.fromObject(model as Record<string, unknown>);
  return type.encode(msg).finish();
}
