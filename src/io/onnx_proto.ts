// The ONNX messages resnet-ts writes, as a protobufjs reflection descriptor: the subset of
// onnx/onnx.proto3 (IR version 8) a convolutional classifier needs, with its field numbers
// and types exactly as there (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto(.Tensor), TensorShapeProto(.Dimension),
// OperatorSetIdProto, StringStringEntryProto). Not here: sparse tensors, training info,
// functions, sequence / map / optional types (fields left out are skipped when decoding).
// NOTE: not the npm `onnx-proto` package (stale, IR 4); this descriptor is ours.

import { createRequire } from 'node:module';
import type * as protobuf from 'protobufjs';

/** TensorProto.DataType values used here (onnx.proto3). */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values (onnx.proto3). */
export const AttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, TENSORS: 9, GRAPHS: 10,
} as const;

type Fields = Record<string, { type: string; id: number; rule?: 'repeated' }>;
const msg = (fields: Fields, extra: Record<string, unknown> = {}) => ({ edition: 'proto3', fields, ...extra });
const rep = (type: string, id: number) => ({ type, id, rule: 'repeated' as const });

/** The descriptor in protobufjs JSON form (package `onnx`). */
export const ONNX_DESCRIPTOR = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: msg({ key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } }),
        OperatorSetIdProto: msg({ domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } }),
        TensorShapeProto: msg({ dim: rep('Dimension', 1) }, {
          nested: {
            Dimension: msg(
              { dim_value: { type: 'int64', id: 1 }, dim_param: { type: 'string', id: 2 }, denotation: { type: 'string', id: 3 } },
              { oneofs: { value: { oneof: ['dim_value', 'dim_param'] } } },
            ),
          },
        }),
        TypeProto: msg({ tensor_type: { type: 'Tensor', id: 1 }, denotation: { type: 'string', id: 6 } }, {
          oneofs: { value: { oneof: ['tensor_type'] } },
          nested: { Tensor: msg({ elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } }) },
        }),
        ValueInfoProto: msg({ name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 }, doc_string: { type: 'string', id: 3 } }),
        TensorProto: msg({
          dims: rep('int64', 1),
          data_type: { type: 'int32', id: 2 },
          float_data: rep('float', 4),
          int32_data: rep('int32', 5),
          string_data: rep('bytes', 6),
          int64_data: rep('int64', 7),
          name: { type: 'string', id: 8 },
          raw_data: { type: 'bytes', id: 9 },
          double_data: rep('double', 10),
          uint64_data: rep('uint64', 11),
          doc_string: { type: 'string', id: 12 },
          external_data: rep('StringStringEntryProto', 13),
          data_location: { type: 'int32', id: 14 },
        }),
        AttributeProto: msg({
          name: { type: 'string', id: 1 },
          f: { type: 'float', id: 2 },
          i: { type: 'int64', id: 3 },
          s: { type: 'bytes', id: 4 },
          t: { type: 'TensorProto', id: 5 },
          g: { type: 'GraphProto', id: 6 },
          floats: rep('float', 7),
          ints: rep('int64', 8),
          strings: rep('bytes', 9),
          tensors: rep('TensorProto', 10),
          graphs: rep('GraphProto', 11),
          doc_string: { type: 'string', id: 13 },
          type: { type: 'int32', id: 20 },
          ref_attr_name: { type: 'string', id: 21 },
        }),
        NodeProto: msg({
          input: rep('string', 1),
          output: rep('string', 2),
          name: { type: 'string', id: 3 },
          op_type: { type: 'string', id: 4 },
          attribute: rep('AttributeProto', 5),
          doc_string: { type: 'string', id: 6 },
          domain: { type: 'string', id: 7 },
        }),
        GraphProto: msg({
          node: rep('NodeProto', 1),
          name: { type: 'string', id: 2 },
          initializer: rep('TensorProto', 5),
          doc_string: { type: 'string', id: 10 },
          input: rep('ValueInfoProto', 11),
          output: rep('ValueInfoProto', 12),
          value_info: rep('ValueInfoProto', 13),
        }),
        ModelProto: msg({
          ir_version: { type: 'int64', id: 1 },
          producer_name: { type: 'string', id: 2 },
          producer_version: { type: 'string', id: 3 },
          domain: { type: 'string', id: 4 },
          model_version: { type: 'int64', id: 5 },
          doc_string: { type: 'string', id: 6 },
          graph: { type: 'GraphProto', id: 7 },
          opset_import: rep('OperatorSetIdProto', 8),
          metadata_props: rep('StringStringEntryProto', 14),
        }),
      },
    },
  },
};

let root: protobuf.Root | null = null;

/** The resolved protobufjs type of an ONNX message, e.g. onnxType('ModelProto'). */
export function onnxType(name: 'ModelProto' | 'GraphProto' | 'NodeProto' | 'AttributeProto' | 'TensorProto' | 'ValueInfoProto' | 'TypeProto' | 'TensorShapeProto' | 'OperatorSetIdProto' | 'StringStringEntryProto'): protobuf.Type {
  // protobufjs (CommonJS, 14 modules) is loaded on the first ONNX read or write, not at import.
  root ??= (createRequire(import.meta.url)('protobufjs') as typeof protobuf).Root.fromJSON(ONNX_DESCRIPTOR as protobuf.INamespace);
  return root.lookupType(`onnx.${name}`);
}
