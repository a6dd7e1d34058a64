/**
 * Runs a fixture case of a statistics-based norm (batch, instance, layer, group, rms, switchable)
 * the way FORMAT.md describes PyTorch's run: build from config, load parameters and running
 * buffers, one training forward + backward, then (with x_eval) one eval forward.
 */
import { ConfigError, ShapeError } from "../errors.js";
import type { Module } from "../nn/module.js";
import {
  BatchNorm, BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm,
  RMSNorm,
} from "../nn/normalization.js";
import type { BatchNormOptions, InstanceNormOptions } from "../nn/normalization.js";
import { SwitchableNorm, SwitchableNorm1d, SwitchableNorm2d, SwitchableNorm3d } from "../nn/switchable_norm.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu } from "../kernels/cpu.js";
import { DType, Tensor } from "../tensor.js";
import { FixtureCase, toTensor } from "./fixture.js";

type Cfg = Record<string, unknown>;

/** config value or undefined (so that the layer applies its PyTorch default) */
function opt<T>(cfg: Cfg, key: string): T | undefined {
  return cfg[key] === undefined ? undefined : (cfg[key] as T);
}
function req<T>(cfg: Cfg, key: string, op: string): T {
  if (cfg[key] === undefined) throw new ConfigError(`config.${key}`, `a value (required by ${op})`, "nothing");
  return cfg[key] as T;
}

function input(c: FixtureCase, name: string, dtype: DType): Tensor {
  const t = c.inputs[name];
  if (!t) throw new ShapeError(`inputs.${name}`, "a tensor", "nothing");
  return toTensor(t, dtype);
}

/**
 * `config.module` (FORMAT.md): the PyTorch class a case was built with, which fixes the input ranks
 * it accepts (InstanceNorm1d takes (C, L) unbatched). Without it the runner builds the op's general
 * class (BatchNorm: ranks 2-5, InstanceNorm: batched ranks 3-5, Switchable Norm by rank).
 */
const MODULES: Readonly<Record<string, { op: string; cls?: new (o: never) => Module }>> = {
  BatchNorm1d: { op: "batch_norm", cls: BatchNorm1d as never },
  BatchNorm2d: { op: "batch_norm", cls: BatchNorm2d as never },
  BatchNorm3d: { op: "batch_norm", cls: BatchNorm3d as never },
  InstanceNorm1d: { op: "instance_norm", cls: InstanceNorm1d as never },
  InstanceNorm2d: { op: "instance_norm", cls: InstanceNorm2d as never },
  InstanceNorm3d: { op: "instance_norm", cls: InstanceNorm3d as never },
  LayerNorm: { op: "layer_norm" },
  GroupNorm: { op: "group_norm" },
  RMSNorm: { op: "rms_norm" },
  SwitchNorm1d: { op: "switchable_norm", cls: SwitchableNorm1d as never },
  SwitchNorm2d: { op: "switchable_norm", cls: SwitchableNorm2d as never },
  SwitchNorm3d: { op: "switchable_norm", cls: SwitchableNorm3d as never },
};

/** The class `config.module` names (checked against the op), or undefined without the key. */
function moduleClass(c: FixtureCase): (new (o: never) => Module) | undefined {
  const name = c.config["module"];
  if (name === undefined) return undefined;
  const m = typeof name === "string" ? MODULES[name] : undefined;
  if (!m) throw new ConfigError("config.module", `one of ${Object.keys(MODULES).join(", ")}`, JSON.stringify(name));
  if (m.op !== c.op) throw new ConfigError("config.module", `a module of op ${c.op}`, `${name as string} (op ${m.op})`);
  return m.cls;
}

export function buildNormLayer(c: FixtureCase, dtype: DType): Module {
  const cfg = c.config;
  const rank = input(c, "x", dtype).rank;
  const Cls = moduleClass(c);
  const make = <O>(General: new (o: O) => Module, o: O): Module => new ((Cls as unknown as new (o: O) => Module) ?? General)(o);
  switch (c.op) {
    case "batch_norm":
      return make<BatchNormOptions>(BatchNorm, {
        numFeatures: req(cfg, "num_features", c.op), eps: opt(cfg, "eps"), momentum: opt(cfg, "momentum"),
        affine: opt(cfg, "affine"), trackRunningStats: opt(cfg, "track_running_stats"), dtype,
      });
    case "instance_norm":
      return make<InstanceNormOptions>(InstanceNorm, {
        numFeatures: req(cfg, "num_features", c.op), eps: opt(cfg, "eps"), momentum: opt(cfg, "momentum"),
        affine: opt(cfg, "affine"), trackRunningStats: opt(cfg, "track_running_stats"), dtype,
      });
    case "layer_norm":
      return new LayerNorm({
        normalizedShape: req(cfg, "normalized_shape", c.op), eps: opt(cfg, "eps"),
        elementwiseAffine: opt(cfg, "elementwise_affine"), bias: opt(cfg, "bias"), dtype,
      });
    case "group_norm":
      return new GroupNorm({
        numGroups: req(cfg, "num_groups", c.op), numChannels: req(cfg, "num_channels", c.op), eps: opt(cfg, "eps"),
        affine: opt(cfg, "affine"), dtype,
      });
    case "rms_norm":
      return new RMSNorm({ normalizedShape: req(cfg, "normalized_shape", c.op), eps: opt(cfg, "eps"), elementwiseAffine: opt(cfg, "elementwise_affine"), dtype });
    case "switchable_norm": {
      const o = {
        numFeatures: req<number>(cfg, "num_features", c.op), eps: opt<number>(cfg, "eps"), momentum: opt<number>(cfg, "momentum"),
        usingMovingAverage: opt<boolean>(cfg, "using_moving_average"), usingBN: opt<boolean>(cfg, "using_bn"),
        lastGamma: opt<boolean>(cfg, "last_gamma"), variance: opt<"reference" | "paper">(cfg, "variance"), dtype,
      };
      if (Cls) return make(SwitchableNorm2d, o);
      if (rank === 2) return new SwitchableNorm1d(o);
      if (rank === 4) return new SwitchableNorm2d(o);
      if (rank === 5) return new SwitchableNorm3d(o);
      throw new ShapeError("inputs.x", "rank 2, 4 or 5 for switchable_norm", `rank ${rank}`);
    }
    default:
      throw new ConfigError("op", "a known op", JSON.stringify(c.op));
  }
}

const PARAM_INPUTS = ["weight", "bias", "mean_weight", "var_weight"];

/** The layer of a case built from its config, with the case's parameters and running buffers loaded. */
export function loadNormCase(c: FixtureCase, dtype: DType): Module {
  const layer = buildNormLayer(c, dtype);
  // Start from the layer's own state, overwrite what the case gives, then load (shape-checked).
  const state: Record<string, Tensor> = layer.stateDict();
  for (const k of PARAM_INPUTS) if (c.inputs[k]) state[k] = input(c, k, dtype);
  if (c.inputs["running_mean_before"]) state["running_mean"] = input(c, "running_mean_before", dtype);
  if (c.inputs["running_var_before"]) state["running_var"] = input(c, "running_var_before", dtype);
  for (const k of PARAM_INPUTS) {
    if (c.inputs[k] && !(k in layer.namedParameters())) throw new ConfigError(`inputs.${k}`, "no such parameter for this config", "a tensor");
  }
  layer.loadStateDict(state);
  return layer;
}

/** The ops {@link buildNormLayer} builds. */
export const NORM_OPS: readonly string[] = Object.freeze(["batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm", "switchable_norm"]);

/**
 * Runs a case the way FORMAT.md says PyTorch did, with the case's layer moved to `device` (default
 * the host): one training forward + backward, the running buffers, then (with x_eval) one eval
 * forward. Every output comes back to the host.
 */
export async function runNormCase(c: FixtureCase, dtype: DType, device: Device = cpu): Promise<Record<string, Tensor>> {
  const layer = await loadNormCase(c, dtype).to(device);
  const on = (name: string) => device.upload(input(c, name, dtype), dtype);
  const host = (t: Tensor) => (t.isHost ? t.clone(dtype) : device.download(t, dtype));
  const out: Record<string, Tensor> = {};
  layer.train();
  layer.zeroGrad();
  out["y"] = await host(layer.forward(on("x")));
  if (c.inputs["dy"]) {
    out["dx"] = await host(layer.backward(on("dy")));
    for (const [k, p] of Object.entries(layer.namedParameters())) out["d" + k] = await host(p.grad);
  }
  for (const [k, b] of Object.entries(layer.namedBuffers())) out[k] = b.isHost ? b.clone() : await host(b);
  if (c.inputs["x_eval"]) {
    layer.eval();
    out["y_eval"] = await host(layer.forward(on("x_eval")));
  }
  return out;
}

export function isSwitchable(m: Module): m is SwitchableNorm {
  return m instanceof SwitchableNorm;
}
