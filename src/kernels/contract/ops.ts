/**
 * The kernel contract of the training stack: what Linear, Conv2d, ReLU, the pooling layers, the
 * cross-entropy loss and the optimisers compute, on tensors of type T (host `Tensor`s, or
 * `GpuTensor`s). Written once, beside the normalisation contract (./kernels.ts), with the same
 * rules: one options object per operation, outputs written in place, parameter gradients
 * ACCUMULATED (+=), `dx` overwritten; the WebGPU set enqueues and reads nothing back.
 */
import { ShapeError, fmtShape } from "../../errors.js";
import type { Tensor } from "../../tensor.js";

/** The geometry of a convolution of an input [N, C, H, W] with O filters of kh×kw (stride, zero padding). */
export interface Conv2dGeometry {
  readonly N: number; readonly C: number; readonly H: number; readonly W: number;
  readonly O: number;
  readonly kh: number; readonly kw: number;
  readonly sh: number; readonly sw: number;
  readonly ph: number; readonly pw: number;
  readonly Ho: number; readonly Wo: number;
  /** C·kh·kw: rows of the im2col matrix. */
  readonly K: number;
  /** Ho·Wo: columns of the im2col matrix. */
  readonly P: number;
}

/**
 * Ho = ⌊(H + 2·ph − kh) / sh⌋ + 1, Wo likewise. Throws a ShapeError (param "x") when the padded
 * input is smaller than the kernel.
 */
export function conv2dGeometry(
  input: readonly number[], outChannels: number,
  kernel: readonly [number, number], stride: readonly [number, number], padding: readonly [number, number],
): Conv2dGeometry {
  const [N, C, H, W] = input as [number, number, number, number];
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  if (H + 2 * ph < kh || W + 2 * pw < kw) {
    throw new ShapeError("x", `a padded input of at least ${kh}x${kw}`, `shape ${fmtShape(input)} with padding [${ph}, ${pw}]`, "conv2d");
  }
  const Ho = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { N, C, H, W, O: outChannels, kh, kw, sh, sw, ph, pw, Ho, Wo, K: C * kh * kw, P: Ho * Wo };
}

/** 2-D pooling over planes (N·C of them), windows kh×kw, stride sh×sw, no padding (ceil_mode false). */
export interface Pool2dGeometry {
  /** Planes: N·C. */
  readonly planes: number;
  readonly H: number; readonly W: number;
  readonly kh: number; readonly kw: number;
  readonly sh: number; readonly sw: number;
  readonly Ho: number; readonly Wo: number;
}

export function pool2dGeometry(planes: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number): Pool2dGeometry {
  return { planes, H, W, kh, kw, sh, sw, Ho: Math.floor((H - kh) / sh) + 1, Wo: Math.floor((W - kw) / sw) + 1 };
}

/** Temporary storage of one caller (a layer), grown on demand; opaque. */
export interface Workspace {
  /** Frees its device memory now. Not used after. */
  destroy(): void;
}

/** Where max pooling keeps each output's argmax (flat input index); opaque, from createIndices. */
export interface Indices {
  readonly count: number;
  destroy(): void;
}

export interface OpKernels<T extends Tensor = Tensor> {
  createWorkspace(): Workspace;
  createIndices(count: number): Indices;

  /** y[r, o] = b[o] + Σ_k x[r, k]·W[o, k] over `rows` rows (x: [rows, inF], W: [outF, inF]). */
  linear(o: { readonly y: T; readonly x: T; readonly weight: T; readonly bias: T | null; readonly rows: number; readonly inF: number; readonly outF: number }): void;
  /**
   * dx = dy·W (overwritten; null to skip); dW += dyᵀ·x; db += Σ_r dy — or, with `accumulate` false,
   * dW = dyᵀ·x and db = Σ_r dy (overwritten: a gradient that zeroGrad marked zero). Default true.
   */
  linearBackward(o: {
    readonly dx: T | null; readonly dweight: T; readonly dbias: T | null; readonly dy: T; readonly x: T; readonly weight: T;
    readonly rows: number; readonly inF: number; readonly outF: number; readonly accumulate?: boolean;
  }): void;

  /** y[n,o,oh,ow] = b[o] + Σ_{c,i,j} W[o,c,i,j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j]. */
  conv2d(o: { readonly y: T; readonly x: T; readonly weight: T; readonly bias: T | null; readonly geometry: Conv2dGeometry; readonly workspace: Workspace }): void;
  /** dx (overwritten; null to skip), dW += Σ dy·x-patches, db += Σ dy; with `accumulate` false (default true) dW and db are overwritten. */
  conv2dBackward(o: {
    readonly dx: T | null; readonly dweight: T; readonly dbias: T | null; readonly dy: T; readonly x: T; readonly weight: T;
    readonly geometry: Conv2dGeometry; readonly workspace: Workspace; readonly accumulate?: boolean;
  }): void;

  /** y = max(x, 0) */
  relu(o: { readonly y: T; readonly x: T }): void;
  /** dx = dy where x > 0, else 0 */
  reluBackward(o: { readonly dx: T; readonly dy: T; readonly x: T }): void;

  /** y = the window's max; `argmax` keeps the flat input index of its first maximum. */
  maxPool2d(o: { readonly y: T; readonly x: T; readonly argmax: Indices; readonly geometry: Pool2dGeometry }): void;
  /** dx[e] = Σ dy over the outputs whose argmax is e (overwritten). */
  maxPool2dBackward(o: { readonly dx: T; readonly dy: T; readonly argmax: Indices; readonly geometry: Pool2dGeometry }): void;
  /** y = the window's mean (a window of the whole plane: global average pooling). */
  avgPool2d(o: { readonly y: T; readonly x: T; readonly geometry: Pool2dGeometry }): void;
  /** dx[e] = Σ over the windows covering e of dy / (kh·kw) (overwritten). */
  avgPool2dBackward(o: { readonly dx: T; readonly dy: T; readonly geometry: Pool2dGeometry }): void;

  /**
   * Softmax cross-entropy over logits [N, K] with integer labels (a tensor of N class indices):
   * loss[0] = −(1/N) Σ_n log softmax(z_n)[y_n], dlogits = (softmax − onehot) / N. The labels are
   * trusted (the loss validates them on the host before they are uploaded).
   */
  crossEntropy(o: { readonly logits: T; readonly labels: T; readonly dlogits: T; readonly loss: T; readonly workspace: Workspace }): void;

  /**
   * Weight Norm's weight, per group r of S values (R groups): w_r = g_r · v_r / ‖v_r‖ (PyTorch's
   * order); `state` keeps what the backward needs (the norms).
   */
  weightNorm(o: { readonly weight: T; readonly g: T; readonly v: T; readonly groups: number; readonly size: number; readonly state: Workspace }): void;
  /** dg += dW · v̂, dv += (g / ‖v‖)(dW − (dW · v̂) v̂), per group, from the forward's `state`. */
  weightNormBackward(o: { readonly dg: T; readonly dv: T; readonly dweight: T; readonly v: T; readonly groups: number; readonly size: number; readonly state: Workspace }): void;

  /**
   * Cosine Norm's F.normalize over `count` vectors of `len` values, element e of vector r at
   * r·vs + e·es (rows of [R, S]: vs = S, es = 1; columns of [K, P]: vs = 1, es = P):
   *   n_r = ‖x_r‖₂ (into `norms`, [count]),   u_r = x_r / max(n_r, eps).
   * A zero vector with eps = 0 gives 0/0 (the layer checks the norms where it can read them).
   */
  normalize(o: {
    readonly u: T; readonly norms: T; readonly x: T;
    readonly count: number; readonly len: number; readonly vs: number; readonly es: number; readonly eps: number;
  }): void;
  /**
   * Its adjoint, from the forward's u and norms:
   *   n ≥ eps (and n > 0):  dx = (du − u (u·du)) / n       otherwise:  dx = du / eps
   * (torch.clamp_min passes no gradient to n below eps). dx overwritten, or += with `accumulate`
   * (for a parameter's gradient).
   */
  normalizeBackward(o: {
    readonly dx: T; readonly du: T; readonly u: T; readonly norms: T;
    readonly count: number; readonly len: number; readonly vs: number; readonly es: number; readonly eps: number;
    readonly accumulate: boolean;
  }): void;

  /**
   * Cosine convolution with a normalised weight Ŵ [O, C, kh, kw] (rows of length K = C·kh·kw):
   *   y[n,o,p] = Ŵ_o · c_p / max(‖c_p‖, eps),   norms[n,p] = ‖c_p‖  ([N, Ho, Wo])
   * where c_p is the receptive field of output position p (zero padding included): conv2d(x, Ŵ)
   * divided per position by the norm of its field.
   */
  cosineConv2d(o: { readonly y: T; readonly norms: T; readonly x: T; readonly weight: T; readonly eps: number; readonly geometry: Conv2dGeometry; readonly workspace: Workspace }): void;
  /**
   * Its backward, from the forward's y and norms (d = max(‖c_p‖, eps); the norm term where ‖c_p‖ ≥ eps, ‖c_p‖ > 0):
   *   dŴ[o] += Σ_{n,p} dy[n,o,p] c_p / d                                     (accumulated)
   *   dc_p   = Σ_o Ŵ_o dy[n,o,p] / d − c_p (Σ_o dy[n,o,p] y[n,o,p]) / (d ‖c_p‖)
   *   dx     = the sum of dc_p over the fields that contain each input   (overwritten; null to skip)
   */
  cosineConv2dBackward(o: {
    readonly dx: T | null; readonly dweight: T; readonly dy: T; readonly y: T; readonly norms: T; readonly x: T; readonly weight: T;
    readonly eps: number; readonly geometry: Conv2dGeometry; readonly workspace: Workspace;
  }): void;

  /** torch.optim.SGD on one parameter (see src/nn/optim.ts); `buffer` is the momentum buffer (null without momentum). */
  sgdStep(o: {
    readonly param: T; readonly grad: T; readonly buffer: T | null; readonly lr: number; readonly momentum: number; readonly keep: number;
    readonly weightDecay: number; readonly nesterov: boolean; readonly first: boolean;
  }): void;
  /**
   * torch.optim.Adam / AdamW on one parameter; c1 = 1 − β1ᵗ, c2 = 1 − β2ᵗ. `weightDecay` is Adam's L2
   * term (g + wd·p); `decay` AdamW's decoupled one: p ← (1 − decay)·p before the update (decay = lr·wd).
   */
  adamStep(o: {
    readonly param: T; readonly grad: T; readonly m: T; readonly v: T; readonly lr: number; readonly beta1: number; readonly beta2: number;
    readonly eps: number; readonly weightDecay: number; readonly decay: number; readonly c1: number; readonly c2: number;
  }): void;
}
