// Minimal ONNX ModelProto writer (protobuf by hand: only the fields these graphs use) and the
// normalization graphs that `npm run bench` runs on onnxruntime-node: each case's best graph on
// the CPU (../shared/anchors/PERFORMANCE.md): BatchNormalization training_mode=1 (opset 15),
// LayerNormalization (opset 17), InstanceNormalization, GroupNorm as PyTorch exports it
// (Reshape + InstanceNormalization + Reshape + Mul + Add), RMSNorm composed of elementwise ops.

function varint(out, v) {
  v = BigInt(v);
  if (v < 0n) v += 1n << 64n;
  while (v > 127n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
}
const key = (out, field, wire) => varint(out, (field << 3) | wire);
function fVarint(out, field, v) {
  key(out, field, 0);
  varint(out, v);
}
function fBytes(out, field, bytes) {
  key(out, field, 2);
  varint(out, bytes.length);
  for (const b of bytes) out.push(b);
}
const fStr = (out, field, s) => fBytes(out, field, new TextEncoder().encode(s));
function fMsg(out, field, build) {
  const inner = [];
  build(inner);
  fBytes(out, field, inner);
}
function fFloat(out, field, f) {
  key(out, field, 5);
  const b = new Uint8Array(new Float32Array([f]).buffer);
  for (const x of b) out.push(x);
}

const FLOAT = 1, INT64 = 7;
// AttributeProto types
const AT_FLOAT = 1, AT_INT = 2, AT_INTS = 7;

function node(op, inputs, outputs, attrs = {}) {
  return { op, inputs, outputs, attrs };
}
function tensorInit(name, dims, values, type = FLOAT) {
  return { name, dims, values, type };
}

function writeModel({ nodes, inits, input, inputShape, output, opset }) {
  const out = [];
  fVarint(out, 1, 8); // ir_version
  fMsg(out, 8, (o) => {
    fStr(o, 1, "");
    fVarint(o, 2, opset);
  });
  fMsg(out, 7, (g) => {
    for (const n of nodes) {
      fMsg(g, 1, (m) => {
        for (const i of n.inputs) fStr(m, 1, i);
        for (const o of n.outputs) fStr(m, 2, o);
        fStr(m, 4, n.op);
        for (const [k, v] of Object.entries(n.attrs)) {
          fMsg(m, 5, (a) => {
            fStr(a, 1, k);
            if (Array.isArray(v)) {
              for (const x of v) fVarint(a, 8, x);
              fVarint(a, 20, AT_INTS);
            } else if (Number.isInteger(v) && !(k === "epsilon" || k === "momentum")) {
              fVarint(a, 3, v);
              fVarint(a, 20, AT_INT);
            } else {
              fFloat(a, 2, v);
              fVarint(a, 20, AT_FLOAT);
            }
          });
        }
      });
    }
    fStr(g, 2, "normkit_bench");
    for (const t of inits) {
      fMsg(g, 5, (m) => {
        for (const d of t.dims) fVarint(m, 1, d);
        fVarint(m, 2, t.type);
        fStr(m, 8, t.name);
        const raw = t.type === INT64 ? new Uint8Array(new BigInt64Array(t.values.map(BigInt)).buffer) : new Uint8Array(new Float32Array(t.values).buffer);
        fBytes(m, 9, raw);
      });
    }
    const vi = (field, name, shape) =>
      fMsg(g, field, (v) => {
        fStr(v, 1, name);
        fMsg(v, 2, (tp) =>
          fMsg(tp, 1, (tt) => {
            fVarint(tt, 1, FLOAT);
            fMsg(tt, 2, (sh) => {
              for (const d of shape) fMsg(sh, 1, (dm) => fVarint(dm, 1, d));
            });
          }),
        );
      });
    vi(11, input, inputShape);
    vi(12, output, inputShape);
  });
  return new Uint8Array(out);
}

const fill = (n, v) => new Array(n).fill(v);

/** The ONNX model bytes for a bench case, or null where no graph is written for it. */
export function onnxModel(caseName, shape, eps = 1e-5) {
  const [N, C] = shape;
  const spatial = shape.slice(2);
  const ones = (n) => fill(n, 1), zeros = (n) => fill(n, 0);
  switch (caseName) {
    case "batch_norm":
      return writeModel({
        opset: 15, input: "x", inputShape: shape, output: "y",
        inits: [tensorInit("s", [C], ones(C)), tensorInit("b", [C], zeros(C)), tensorInit("m", [C], zeros(C)), tensorInit("v", [C], ones(C))],
        nodes: [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], { epsilon: eps, momentum: 0.9, training_mode: 1 })],
      });
    case "layer_norm":
    case "instance_norm": {
      if (caseName === "layer_norm") {
        const K = shape.at(-1);
        return writeModel({
          opset: 17, input: "x", inputShape: shape, output: "y",
          inits: [tensorInit("s", [K], ones(K)), tensorInit("b", [K], zeros(K))],
          nodes: [node("LayerNormalization", ["x", "s", "b"], ["y"], { axis: -1, epsilon: eps })],
        });
      }
      return writeModel({
        opset: 17, input: "x", inputShape: shape, output: "y",
        inits: [tensorInit("s", [C], ones(C)), tensorInit("b", [C], zeros(C))],
        nodes: [node("InstanceNormalization", ["x", "s", "b"], ["y"], { epsilon: eps })],
      });
    }
    case "group_norm":
    case "group_norm_small": {
      const G = 32;
      const bshape = [C, ...spatial.map(() => 1)];
      return writeModel({
        opset: 17, input: "x", inputShape: shape, output: "y",
        inits: [
          tensorInit("shape_g", [3], [N, G, -1], INT64), tensorInit("shape_x", [shape.length], shape, INT64),
          tensorInit("s1", [G], ones(G)), tensorInit("b0", [G], zeros(G)),
          tensorInit("w", bshape, ones(C)), tensorInit("b", bshape, zeros(C)),
        ],
        nodes: [
          node("Reshape", ["x", "shape_g"], ["xg"]),
          node("InstanceNormalization", ["xg", "s1", "b0"], ["ng"], { epsilon: eps }),
          node("Reshape", ["ng", "shape_x"], ["n"]),
          node("Mul", ["n", "w"], ["nw"]),
          node("Add", ["nw", "b"], ["y"]),
        ],
      });
    }
    case "rms_norm": {
      const K = shape.at(-1);
      return writeModel({
        opset: 17, input: "x", inputShape: shape, output: "y",
        inits: [tensorInit("eps", [], [2 ** -23]), tensorInit("w", [K], ones(K))],
        nodes: [
          node("Mul", ["x", "x"], ["x2"]),
          node("ReduceMean", ["x2"], ["ms"], { axes: [-1], keepdims: 1 }),
          node("Add", ["ms", "eps"], ["mse"]),
          node("Sqrt", ["mse"], ["rms"]),
          node("Div", ["x", "rms"], ["n"]),
          node("Mul", ["n", "w"], ["y"]),
        ],
      });
    }
    default:
      return null;
  }
}
