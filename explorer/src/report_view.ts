import type { ExplorerContext } from "./app.js";
// PLACEHOLDER: replaced by the view's implementation.
export function mountReport(root: HTMLElement, _ctx: ExplorerContext): void {
  root.textContent = "(view under construction)";
}
