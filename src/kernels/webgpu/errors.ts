/**
 * Errors of the WebGPU backend. Every failure the GPU can report is turned into one of these and
 * thrown at the next call or download, so that a result is never silently wrong:
 *   no-adapter   navigator.gpu / the webgpu package found no adapter
 *   limit        a tensor or dispatch exceeds the device's limits (names the limit and the sizes)
 *   device-lost  the device was lost or destroyed (carries the browser's / Dawn's reason)
 *   gpu-error    a validation, out-of-memory or internal error reported by the implementation
 *   unsupported  a layout or option this backend does not implement (names it)
 */
export type WebGpuErrorKind = "no-adapter" | "limit" | "device-lost" | "gpu-error" | "unsupported";

export class WebGpuError extends Error {
  readonly kind: WebGpuErrorKind;
  constructor(kind: WebGpuErrorKind, message: string) {
    super(`webgpu: ${message}`);
    this.name = "WebGpuError";
    this.kind = kind;
  }
}
