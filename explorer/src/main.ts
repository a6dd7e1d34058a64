/**
 * The explorer's entry point: finds the compute backends (normkit's CPU path always; WebGPU where
 * navigator.gpu gives an adapter), loads the digit sample, wires the tabs and mounts each view
 * the first time it is shown.
 */
import { backend } from "../../src/index.js";
import { requestGpuContext, type GpuContext } from "../../src/webgpu.js";
import type { Compute, ExplorerContext, MountView } from "./app.js";
import { loadDigits } from "./digits.js";
import { mountBlock } from "./block.js";
import { mountLive } from "./live.js";
import { mountScale } from "./scale.js";
import { mountReport } from "./report_view.js";

const VIEWS: Record<string, MountView> = { block: mountBlock, live: mountLive, scale: mountScale, report: mountReport };

const status = document.getElementById("compute-status")!;
const select = document.getElementById("compute-select") as HTMLSelectElement;

function describeCpu(): string {
  const i = backend.info();
  if (!i.wasm) return `CPU: TypeScript kernels (WebAssembly SIMD unavailable: ${i.wasmReason ?? "not tried"})`;
  return `CPU: WebAssembly SIMD kernels (${i.wasmShared ? "shared memory" : "unshared memory: the page is not cross-origin isolated"})`;
}

async function findGpu(): Promise<{ gpu: GpuContext | null; label: string | null; reason: string | null }> {
  const nav = navigator as Navigator & { gpu?: GPU };
  if (!nav.gpu) return { gpu: null, label: null, reason: "this browser has no navigator.gpu" };
  try {
    const adapter = await nav.gpu.requestAdapter();
    if (!adapter) return { gpu: null, label: null, reason: "navigator.gpu gave no adapter" };
    const info = adapter.info;
    const name = [info?.vendor, info?.architecture, info?.description].filter((x) => x).join(" ") || "adapter";
    const gpu = await requestGpuContext(nav.gpu);
    return { gpu, label: `WebGPU: ${name}`, reason: null };
  } catch (e) {
    return { gpu: null, label: null, reason: `WebGPU failed: ${(e as Error).message}` };
  }
}

function showStatus(ctx: ExplorerContext): void {
  const c = ctx.compute();
  status.textContent = c === "webgpu" ? `using ${ctx.gpuLabel}` : `using ${ctx.cpuLabel}${ctx.gpu ? "" : ` · ${ctx.gpuReason}`}`;
  status.dataset["compute"] = c;
}

function wireTabs(ctx: ExplorerContext): void {
  const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
  const mounted = new Set<string>();
  const show = (tab: HTMLButtonElement, focus: boolean) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")!)!.hidden = !on;
    }
    if (focus) tab.focus();
    const name = tab.id.replace(/^tab-/, "");
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    if (!mounted.has(name)) {
      mounted.add(name);
      const root = document.getElementById(`view-${name}`)!;
      Promise.resolve()
        .then(() => VIEWS[name]!(root, ctx))
        .then(() => root.setAttribute("data-ready", "true"))
        .catch((e) => ctx.fail(name, e));
    }
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => show(tab, false));
    // WAI-ARIA tabs: arrows move between tabs, Home / End to the ends.
    tab.addEventListener("keydown", (ev) => {
      const k = ev.key;
      const j = k === "ArrowRight" ? (i + 1) % tabs.length : k === "ArrowLeft" ? (i - 1 + tabs.length) % tabs.length : k === "Home" ? 0 : k === "End" ? tabs.length - 1 : -1;
      if (j < 0) return;
      ev.preventDefault();
      show(tabs[j]!, true);
    });
  });
  const initial = tabs.find((t) => `#${t.id.replace(/^tab-/, "")}` === location.hash) ?? tabs[0]!;
  show(initial, false);
}

async function start(): Promise<void> {
  const [digits, found] = await Promise.all([loadDigits(), findGpu()]);
  let compute: Compute = found.gpu ? "webgpu" : "cpu";
  const listeners: ((c: Compute) => void)[] = [];
  const ctx: ExplorerContext = {
    cpuLabel: describeCpu(),
    gpu: found.gpu,
    gpuLabel: found.label,
    gpuReason: found.reason,
    digits,
    compute: () => compute,
    onComputeChange: (fn) => void listeners.push(fn),
    fail(where, e) {
      const msg = e instanceof Error ? e.message : String(e);
      status.textContent = `error in ${where}: ${msg}`;
      status.classList.add("error");
      console.error(`normkit explorer (${where}):`, e);
    },
  };
  select.replaceChildren(new Option("CPU", "cpu"));
  if (found.gpu) select.append(new Option("WebGPU", "webgpu"));
  select.value = compute;
  select.disabled = !found.gpu;
  select.title = found.gpu ? "" : (found.reason ?? "");
  select.addEventListener("change", () => {
    compute = select.value === "webgpu" && found.gpu ? "webgpu" : "cpu";
    showStatus(ctx);
    for (const fn of listeners) fn(compute);
  });
  showStatus(ctx);
  wireTabs(ctx);
  document.body.dataset["ready"] = "true";
}

start().catch((e) => {
  status.textContent = `failed to start: ${(e as Error).message}`;
  status.classList.add("error");
  console.error(e);
});
