/**
 * What normkit's shipped declarations need of the WebAssembly JS API: the type names
 * `WebAssembly.Module` and `WebAssembly.Memory` (fields of the runtime, wasm.d.ts). Declared as
 * empty interfaces, they merge with whatever a consumer's lib declares (lib.dom's, @types/node's)
 * and stand alone under `--lib es2022` without either. The entry points' declarations reference
 * this file (index.ts, webgpu.ts, webgpu/node_device.ts, io/node.ts import it), so a consumer
 * compiles against normkit with no WebAssembly types of its own. The implementation's fuller
 * declarations are the private webassembly.d.ts, which is not part of the package's types.
 */
declare global {
  namespace WebAssembly {
    interface Module {}
    interface Memory {}
  }
}

export {};
