/**
 * The layer contract shared by every normkit layer.
 *
 * - `forward(x)` computes y and caches what backward needs (statistics, not copies of x where avoidable).
 * - `backward(dy)` returns dx for the most recent forward and **accumulates** (`+=`) parameter
 *   gradients into `param.grad`, as PyTorch's autograd does; call `zeroGrad()` between steps.
 * - `training` is explicit: `train()` / `eval()` switch it; nothing is global.
 * - `stateDict()` / `loadStateDict()` use PyTorch's key names, so weights move both ways.
 * - Every public method validates all its input before it mutates anything.
 * - A module lives on one device (`cpu` by default); `await module.to(device)` moves its
 *   parameters, gradients and buffers there (see src/kernels/contract/device.ts). Its inputs must
 *   be tensors of that device; a tensor of another gets a DeviceError naming both.
 */
import { DeviceError, ShapeError, StateDictError, StateError, fmtShape } from "../errors.js";
import type { Device } from "../kernels/contract/device.js";
import { cpu, deviceOf } from "../kernels/cpu.js";
import { DType, Tensor, sameShape } from "../tensor.js";

export interface Parameter {
  readonly value: Tensor;
  readonly grad: Tensor;
}

/**
 * The parameters normkit's layers make. `zeroGrad()` does not write their gradient: it marks it zero,
 * and the next backward that computes it overwrites it (=) instead of adding to it (+=) — PyTorch's
 * `zero_grad(set_to_none=True)`, without the None: whoever reads `grad` before that finds it filled
 * with 0, so the values seen are the same either way. (A pass over every gradient per step is what it
 * saves; at small batches it was a sixth of an MLP's step.) A plain `{ value, grad }` object is a
 * Parameter too, zeroed by filling.
 */
export class LayerParameter implements Parameter {
  value: Tensor;
  private g: Tensor;
  private pending = false;

  constructor(value: Tensor, grad: Tensor) {
    this.value = value;
    this.g = grad;
  }

  /** The gradient; one marked zero is filled with 0 first. */
  get grad(): Tensor {
    if (this.pending) {
      deviceOf(this.g, "Parameter.grad").fill(this.g, 0);
      this.pending = false;
    }
    return this.g;
  }
  set grad(g: Tensor) {
    this.g = g;
    this.pending = false;
  }

  /** Marks the gradient zero without writing it (see the class comment). */
  markZero(): void {
    this.pending = true;
  }
  /** Whether zeroGrad marked the gradient and nothing has written or read it since. */
  get zeroPending(): boolean {
    return this.pending;
  }
  /** Says that a kernel has just written every element of the gradient (clears the mark). */
  written(): void {
    this.pending = false;
  }
  /** The gradient tensor as it is, marked or not (for a kernel about to overwrite all of it). */
  get rawGrad(): Tensor {
    return this.g;
  }
}

export function makeParameter(shape: readonly number[], dtype: DType, fill: number): LayerParameter {
  // host storage from the host device: float32 in the WebAssembly memory, where its kernels use it in place
  const value = cpu.zeros(shape, dtype);
  if (fill !== 0) value.data.fill(fill);
  return new LayerParameter(value, cpu.zeros(shape, dtype));
}

/** Sets p's gradient to 0: marks a LayerParameter's (see there), fills any other's. */
export function zeroGradOf(p: Parameter, ctx: string): void {
  if (p instanceof LayerParameter) p.markZero();
  else deviceOf(p.grad, ctx).fill(p.grad, 0);
}

/**
 * Runs a backward kernel that writes the gradients of `params` (nulls skipped), telling it whether to
 * add to them (accumulate true) or overwrite them: overwrite when zeroGrad left every one marked zero;
 * otherwise the marked ones are filled with 0 first (reading `grad` does) and the kernel adds.
 */
export function writeGrads(params: readonly (Parameter | null)[], run: (grads: (Tensor | null)[], accumulate: boolean) => void): void {
  const ps = params.filter((p): p is Parameter => p !== null);
  const overwrite = ps.length > 0 && ps.every((p) => p instanceof LayerParameter && p.zeroPending);
  if (!overwrite) {
    run(params.map((p) => (p === null ? null : p.grad)), true);
    return;
  }
  run(params.map((p) => (p === null ? null : (p as LayerParameter).rawGrad)), false);
  for (const p of ps) (p as LayerParameter).written();
}

/** A parameter whose tensors a module replaces when it moves to another device. */
type MovableParameter = { value: Tensor; grad: Tensor };

export abstract class Module {
  training = true;
  readonly dtype: DType;
  private currentDevice: Device = cpu;
  /** Buffers registered by the module (registerBuffer): they move with it. */
  private readonly registered: Record<string, Tensor> = {};

  constructor(dtype: DType) {
    this.dtype = dtype;
  }

  /** Where this module's tensors live and its kernels run (`cpu` until `to()` moves it). */
  get device(): Device {
    return this.currentDevice;
  }

  /** The modules this one contains (containers override it); `to()` moves them too. */
  children(): Module[] {
    return [];
  }

  /**
   * Puts `replacement` where `child` is among this module's children, in place (its keys stay);
   * true when done. Containers implement it (Sequential, ReuseOutputs); the default holds no
   * replaceable child and returns false. Used by convertSyncBatchNorm.
   */
  replaceChild(_child: Module, _replacement: Module): boolean {
    return false;
  }

  /**
   * Why this module cannot live on `device`, or null when it can. The default: host only.
   * Layers with kernels for another device override it.
   */
  protected deviceProblem(device: Device): string | null {
    return device.type === "cpu" ? null : `${this.constructor.name} has no ${device.type} kernels yet`;
  }

  /**
   * Moves this module and its children to `device` — parameters, gradients and buffers — and
   * returns it (the same object, as PyTorch's `module.to(device)`). Every module is checked first
   * and every tensor copied before any is swapped in, so a refusal or a failed transfer changes
   * nothing. Host → GPU uploads; GPU → host reads back, hence a Promise. Host-side counters
   * (num_batches_tracked) stay on the host. The Parameter objects stay the same (their `value` and
   * `grad` are replaced), so whatever holds them sees the moved tensors. The tensors moved from are
   * not destroyed (others may hold them); on a GPU their memory goes with garbage collection.
   */
  async to(device: Device): Promise<this> {
    const all = this.modules();
    for (const m of all) {
      const why = m.deviceProblem(device);
      if (why) throw new DeviceError("device", `a device ${m.constructor.name} supports`, `${device.label} (${why})`, `${m.constructor.name}.to`);
      if (!device.dtypes.includes(m.dtype)) {
        throw new DeviceError("dtype", `one of ${device.dtypes.join(", ")} on ${device.label}`, `${m.dtype} (build the module with dtype "${device.dtypes[0]}")`, `${m.constructor.name}.to`);
      }
    }
    // Every transfer of every module first, the swap after: a transfer that fails (a GPU limit, a
    // lost device, a failed read-back) leaves the whole tree where it was. A tensor shared by several
    // parameters or modules moves once.
    const moving = all.filter((m) => m.currentDevice !== device);
    const copies = new Map<Tensor, Tensor>();
    const move = async (m: Module, t: Tensor): Promise<Tensor> => {
      if (device.holds(t)) return t;
      let c = copies.get(t);
      if (!c) {
        const host = m.currentDevice.type === "cpu" ? t : await m.currentDevice.download(t, m.dtype);
        c = device.type === "cpu" ? (host === t ? t.clone(m.dtype) : host) : device.upload(host, m.dtype);
        copies.set(t, c);
      }
      return c;
    };
    const plan: { m: Module; params: [MovableParameter, Tensor, Tensor][]; buffers: [string, Tensor][] }[] = [];
    for (const m of moving) {
      const params: [MovableParameter, Tensor, Tensor][] = [];
      for (const p of Object.values(m.ownParameters())) params.push([p as MovableParameter, await move(m, p.value), await move(m, p.grad)]);
      const buffers: [string, Tensor][] = [];
      for (const [k, b] of Object.entries(m.registered)) buffers.push([k, await move(m, b)]);
      plan.push({ m, params, buffers });
    }
    for (const { m, params, buffers } of plan) {
      for (const [p, v, g] of params) {
        p.value = v;
        p.grad = g;
      }
      for (const [k, b] of buffers) m.registered[k] = b;
      m.currentDevice = device;
      m.movedTo(device);
    }
    return this;
  }

  /** This module and every descendant, each once. */
  modules(): Module[] {
    const out: Module[] = [];
    const seen = new Set<Module>();
    const visit = (m: Module) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push(m);
      for (const c of m.children()) visit(c);
    };
    visit(this);
    return out;
  }

  /** The parameters this module holds itself (not its children's); by default all of namedParameters(). */
  protected ownParameters(): Record<string, Parameter> {
    return this.children().length ? {} : this.namedParameters();
  }

  /** Called after a move (layers drop device-specific caches here). */
  protected movedTo(_device: Device): void {}

  /** "Class.method", for error messages (built only when an error is thrown). */
  protected errorContext(method: string): string {
    return `${this.constructor.name}.${method}`;
  }

  /** Throws a DeviceError unless `t` lives on this module's device. */
  protected checkDevice(t: Tensor, name: string, method: string): void {
    if (!this.currentDevice.holds(t)) {
      const got = t.device === this.currentDevice.type ? `a tensor of another ${t.device} device` : `a tensor on ${t.device}`;
      throw new DeviceError(name, `a tensor on ${this.currentDevice.label} (the layer's device)`, got, `${this.constructor.name}.${method}`);
    }
  }

  /** Checks a caller-provided output: on this module's device, the shape of `like`, the module's dtype. */
  protected checkOutput(out: Tensor, like: { readonly shape: readonly number[] }, method: string): void {
    this.checkDevice(out, "out", method);
    if (!sameShape(out.shape, like.shape) || out.dtype !== this.dtype) {
      throw new ShapeError("out", `a ${this.dtype} tensor of shape ${fmtShape(like.shape)}`, `${out.dtype} ${fmtShape(out.shape)}`, `${this.constructor.name}.${method}`);
    }
  }

  /** Throws a DeviceError for host-only methods on a module that lives elsewhere. */
  protected requireHost(method: string): void {
    if (this.currentDevice.type !== "cpu") {
      throw new DeviceError("module", "a module on the host", `a module on ${this.currentDevice.label} (await module.to(cpu) first)`, `${this.constructor.name}.${method}`);
    }
  }

  abstract forward(x: Tensor): Tensor;
  abstract backward(dy: Tensor): Tensor;

  /** Learnable parameters by PyTorch name (weight, bias, ...). */
  abstract namedParameters(): Record<string, Parameter>;
  /** Non-learnable state by PyTorch name (running_mean, running_var, num_batches_tracked): the registered buffers by default. */
  namedBuffers(): Record<string, Tensor> {
    return { ...this.registered };
  }

  /**
   * Registers (or replaces) a buffer: state that is not learned but moves with the module (PyTorch's
   * `register_buffer`), on the module's device. Host-only state (a counter) is not registered.
   */
  protected registerBuffer(name: string, t: Tensor): void {
    this.registered[name] = t;
  }
  /** A registered buffer, or null. */
  protected bufferOf(name: string): Tensor | null {
    return this.registered[name] ?? null;
  }

  train(mode = true): this {
    this.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  parameters(): Parameter[] {
    return Object.values(this.namedParameters());
  }

  /** Sets every gradient to 0 (on the module's device). */
  zeroGrad(): void {
    for (const m of this.modules()) for (const p of Object.values(m.ownParameters())) zeroGradOf(p, `${m.constructor.name}.zeroGrad`);
  }

  /**
   * Every module of the tree with its PyTorch-style dotted name (this one is ""), each once, in
   * network order — as PyTorch's `named_modules()`. A wrapper that PyTorch does not have as a module
   * of its own (ReuseOutputs, WeightNorm, whose PyTorch counterpart is the wrapped layer itself) gives
   * its layer the wrapper's own name, so a name can appear twice (wrapper, then wrapped).
   */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [n, c] of m.namedChildren()) visit(c, n === "" ? name : name === "" ? n : `${name}.${n}`);
    };
    visit(this, prefix);
    return out;
  }

  /**
   * The direct children with the name each takes in parameter keys (Sequential: "0", "1", ...); ""
   * for a child whose keys are this module's own (a transparent wrapper). Default: children() by index.
   */
  namedChildren(): [string, Module][] {
    return this.children().map((c, i) => [String(i), c]);
  }

  /**
   * Parameters and buffers, by PyTorch key name (nested modules' keys dotted: `features.0.weight`,
   * `1.running_mean`, `1.num_batches_tracked`). The tensors are host copies (a module on the host
   * only). `JSON.stringify` of it gives `{key: {shape, dtype, data: [...]}}` (Tensor.toJSON), which
   * `loadStateDict(JSON.parse(...))` takes back.
   */
  stateDict(): Record<string, Tensor> {
    for (const m of this.modules()) m.requireHost("stateDict");
    const out: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) out[k] = p.value.clone();
    for (const [k, b] of Object.entries(this.namedBuffers())) out[k] = b.clone();
    return out;
  }

  /**
   * Loads parameters and buffers by PyTorch key name, as PyTorch's `load_state_dict(sd, strict)`.
   * Every entry is checked before any value is copied — a Tensor or `{shape, data}` with `data` a
   * numeric array (or typed array) of as many values as `shape` says, `shape` the module's for that
   * key — so a bad dict changes nothing and gets a StateDictError naming the key. With `strict`
   * (default true) missing and unexpected keys are an error listing all of them ("Missing key(s) …
   * Unexpected key(s) …"); with `strict: false` the keys present are loaded and the others reported.
   * Values are converted to the layer's dtype. `num_batches_tracked` may be a scalar of shape []
   * (PyTorch's) or [1], and must be a non-negative integer count.
   * Returns `{ missingKeys, unexpectedKeys }` (PyTorch's named tuple).
   */
  loadStateDict(state: Record<string, StateDictEntry>, options: { strict?: boolean } = {}): LoadStateDictResult {
    for (const m of this.modules()) m.requireHost("loadStateDict");
    const strict = options.strict ?? true;
    const ctx = this.constructor.name + ".loadStateDict";
    if (typeof state !== "object" || state === null || Array.isArray(state)) {
      throw new StateDictError("state", "an object of {key: tensor}", describe(state), ctx);
    }
    const targets: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(this.namedParameters())) targets[k] = p.value;
    for (const [k, b] of Object.entries(this.namedBuffers())) targets[k] = b;
    const missingKeys = Object.keys(targets).filter((k) => !Object.prototype.hasOwnProperty.call(state, k) || state[k] === undefined);
    const unexpectedKeys = Object.keys(state).filter((k) => !Object.prototype.hasOwnProperty.call(targets, k));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(", ")}.`);
      if (unexpectedKeys.length) parts.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(", ")}.`);
      throw new StateDictError([...missingKeys, ...unexpectedKeys].join(", "), `exactly the keys of ${this.constructor.name}`, parts.join(" "), ctx, missingKeys, unexpectedKeys);
    }
    const loads: [Tensor, ArrayLike<number | bigint>][] = [];
    for (const [k, t] of Object.entries(targets)) {
      if (missingKeys.includes(k)) continue;
      loads.push([t, checkEntry(k, state[k], t, ctx)]);
    }
    for (const [t, src] of loads) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) d[i] = Number(src[i]!);
    }
    return { missingKeys, unexpectedKeys };
  }
}

/** A state dict value: a Tensor, or its plain form `{shape, data}` (what Tensor.toJSON gives, what JSON.parse returns). */
export type StateDictEntry = Tensor | { readonly shape: readonly number[]; readonly data: ArrayLike<number> | BigInt64Array };

/** What loadStateDict returns: the keys it did not find and the keys it did not know (PyTorch's). */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A short description of a bad value for an error message. */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "…" : v)}`;
  if (typeof v === "object") return `an object with keys ${JSON.stringify(Object.keys(v as object).slice(0, 5))}`;
  return `${typeof v} ${String(v)}`;
}

/** Checks one state-dict entry against the tensor it loads into; returns its values. */
function checkEntry(k: string, v: unknown, t: Tensor, ctx: string): ArrayLike<number | bigint> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new StateDictError(k, `a tensor or {shape, data} of shape ${fmtShape(t.shape)}`, describe(v), ctx);
  if (v instanceof Tensor && !v.isHost) throw new StateDictError(k, "a host tensor", `a tensor on ${v.device} (download it first)`, ctx);
  const { shape, data } = v as { shape?: unknown; data?: unknown };
  if (!Array.isArray(shape)) {
    throw new StateDictError(k, `a shape (an array of non-negative integers), ${fmtShape(t.shape)}`, shape === undefined ? "no shape" : describe(shape), ctx);
  }
  for (const d of shape as unknown[]) {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) throw new StateDictError(k, "a shape of non-negative integers", `shape ${JSON.stringify(shape)}`, ctx);
  }
  const sh = shape as number[];
  let values: ArrayLike<number | bigint>;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      if (typeof data[i] !== "number") throw new StateDictError(k, "data of numbers", `data[${i}] = ${describe(data[i])}`, ctx);
    }
    values = data as number[];
  } else if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
    values = data as unknown as ArrayLike<number | bigint>;
  } else {
    throw new StateDictError(k, "data: an array of numbers or a typed array", data === undefined ? "no data" : describe(data), ctx);
  }
  const scalarOk = t.size === 1 && sh.length <= 1 && values.length === 1;
  if (!sameShape(sh, t.shape) && !scalarOk) throw new StateDictError(k, `shape ${fmtShape(t.shape)}`, `shape ${fmtShape(sh)}`, ctx);
  if (values.length !== t.size) throw new StateDictError(k, `${t.size} values`, `${values.length}`, ctx);
  if (k === "num_batches_tracked" || k.endsWith(".num_batches_tracked")) {
    for (let i = 0; i < values.length; i++) {
      const c = Number(values[i]!);
      if (!Number.isSafeInteger(c) || c < 0) throw new StateDictError(k, "a non-negative integer count", Number.isNaN(c) ? "NaN" : String(c), ctx);
    }
  }
  return values;
}

export function requireCache<T>(cache: T | null, layer: string): T {
  if (cache === null) throw new StateError("backward", "a preceding forward() in the same mode", "no cached forward", layer);
  return cache;
}
