import type { ExplorerContext } from "./app.js";
export function mountBlock(root: HTMLElement, _ctx: ExplorerContext): void {
  root.textContent = "(view under construction)";
}
