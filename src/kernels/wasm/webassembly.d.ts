// The part of the WebAssembly JS API the backend uses (tsconfig's lib has no DOM types, and
// @types/node 20 does not declare it).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
}
