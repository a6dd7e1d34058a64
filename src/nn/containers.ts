/**
 * Containers with named children, as PyTorch's nn.ModuleList and nn.ModuleDict: they hold modules for
 * a model's own forward to call (they have none of their own), and give their children's parameters
 * and buffers the children's names as key prefixes (`0.weight`, `encoder.bias`), so state dicts match
 * PyTorch's. A model built of them moves, trains and saves as one: `to()`, `train()`/`eval()`,
 * `zeroGrad()`, `parameters()` and `stateDict()` all reach every child.
 */
import { ConfigError, StateError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { Module, Parameter } from "./module.js";

function checkModule(m: unknown, name: string, ctx: string): Module {
  if (!(m instanceof Module)) throw new ConfigError(name, "a Module", String(m), ctx);
  return m;
}

/** Children by name, prefixed onto their keys: the common part of ModuleList and ModuleDict. */
abstract class Container extends Module {
  protected abstract entries(): [string, Module][];
  forward(_x: Tensor): Tensor {
    throw new StateError("forward", "a model whose forward calls the container's modules", `a ${this.constructor.name} (it has no forward of its own, as in PyTorch)`, this.constructor.name);
  }
  backward(_dy: Tensor): Tensor {
    throw new StateError("backward", "a model whose backward calls the container's modules", `a ${this.constructor.name} (it has no backward of its own)`, this.constructor.name);
  }
  namedParameters(): Record<string, Parameter> {
    const out: Record<string, Parameter> = {};
    for (const [name, m] of this.entries()) for (const [k, p] of Object.entries(m.namedParameters())) out[`${name}.${k}`] = p;
    return out;
  }
  override namedBuffers(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, m] of this.entries()) for (const [k, b] of Object.entries(m.namedBuffers())) out[`${name}.${k}`] = b;
    return out;
  }
  override train(mode = true): this {
    this.training = mode;
    for (const [, m] of this.entries()) m.train(mode);
    return this;
  }
  override children(): Module[] {
    return this.entries().map(([, m]) => m);
  }
  override namedChildren(): [string, Module][] {
    return this.entries();
  }
  /** A container holds no tensors of its own: it goes wherever all its modules can. */
  protected override deviceProblem(): string | null {
    return null;
  }
}

/** nn.ModuleList: modules by index (keys `0.…`, `1.…`); `push` appends, `at(i)` reads. */
export class ModuleList extends Container {
  private readonly items: Module[] = [];
  constructor(modules: Module[] = []) {
    if (!Array.isArray(modules)) throw new ConfigError("modules", "an array of modules", String(modules), "ModuleList");
    const checked = modules.map((m, i) => checkModule(m, `modules[${i}]`, "ModuleList"));
    super(checked[0]?.dtype ?? "float32");
    this.items.push(...checked);
  }
  get length(): number {
    return this.items.length;
  }
  /** Module i (negative from the end), or a ConfigError naming the index. */
  at(i: number): Module {
    const m = Number.isInteger(i) ? this.items.at(i) : undefined;
    if (!m) throw new ConfigError("index", `an integer in [−${this.items.length}, ${this.items.length})`, String(i), "ModuleList.at");
    return m;
  }
  push(...modules: Module[]): this {
    const checked = modules.map((m, i) => checkModule(m, `modules[${i}]`, "ModuleList.push"));
    this.items.push(...checked);
    return this;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.items[Symbol.iterator]();
  }
  protected entries(): [string, Module][] {
    return this.items.map((m, i) => [String(i), m]);
  }
}

/** nn.ModuleDict: modules by name, in insertion order (keys `name.…`); names are Python identifiers without dots. */
export class ModuleDict extends Container {
  private readonly items = new Map<string, Module>();
  constructor(modules: Record<string, Module> = {}) {
    if (modules === null || typeof modules !== "object" || Array.isArray(modules)) {
      throw new ConfigError("modules", "an object of named modules", String(modules), "ModuleDict");
    }
    const list = Object.entries(modules);
    for (const [k, m] of list) {
      ModuleDict.checkName(k, "ModuleDict");
      checkModule(m, `modules.${k}`, "ModuleDict");
    }
    super(list[0]?.[1].dtype ?? "float32");
    for (const [k, m] of list) this.items.set(k, m);
  }
  private static checkName(k: string, ctx: string): void {
    if (k === "" || k.includes(".")) throw new ConfigError("name", "a non-empty name without dots (it becomes a key prefix)", JSON.stringify(k), ctx);
  }
  get size(): number {
    return this.items.size;
  }
  has(name: string): boolean {
    return this.items.has(name);
  }
  /** The module named `name`, or a ConfigError listing the names there are. */
  get(name: string): Module {
    const m = this.items.get(name);
    if (!m) throw new ConfigError("name", `one of ${[...this.items.keys()].join(", ") || "(none)"}`, JSON.stringify(name), "ModuleDict.get");
    return m;
  }
  set(name: string, m: Module): this {
    ModuleDict.checkName(name, "ModuleDict.set");
    this.items.set(name, checkModule(m, name, "ModuleDict.set"));
    return this;
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
  protected entries(): [string, Module][] {
    return [...this.items.entries()];
  }
}
