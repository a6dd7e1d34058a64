/**
 * normkit/onnx — ONNX export of a normkit model for inference (`exportOnnx`). A separate entry
 * point: it depends on protobufjs, which the core (`normkit`) does not import.
 */
export { exportOnnx, buildOnnxModel, UnsupportedModuleError, SUPPORTED_OPSETS, DEFAULT_OPSET, EXPORTABLE_MODULES } from "./export.js";
export type { ExportOnnxOptions } from "./export.js";
export { encodeModel, decodeModel, ONNX_PROTO_JSON } from "./proto.js";
export type { ModelProto, GraphProto, NodeProto, TensorProto, AttributeProto, ValueInfoProto } from "./proto.js";
