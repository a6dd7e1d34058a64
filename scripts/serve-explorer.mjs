#!/usr/bin/env node
/**
 * A minimal static server for the built explorer (any static server works; this one has no
 * dependencies). With isolation on (the default here) it sends COOP/COEP headers, which make the
 * page cross-origin isolated: normkit's WebAssembly SIMD kernels then run on a shared memory. Without
 * them (any plain static host) the same kernels run on an unshared memory; the page says which.
 *
 *   node scripts/serve-explorer.mjs [--dir dist/explorer] [--port 8080] [--no-isolation]
 * Also importable: serveStatic(dir, { port, isolate }) → { server, url }.
 */
import { createServer } from "node:http";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MIME = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
  ".json": "application/json", ".bin": "application/octet-stream", ".png": "image/png", ".svg": "image/svg+xml",
  ".map": "application/json",
};

export function serveStatic(dir, { port = 0, host = "127.0.0.1", isolate = true } = {}) {
  const base = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file)) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}`);
      return;
    }
    const headers = { "content-type": MIME[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache" };
    if (isolate) Object.assign(headers, { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
    res.writeHead(200, headers).end(readFileSync(file));
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const a = server.address();
      ok({ server, url: `http://${host}:${a.port}/` });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const args = process.argv.slice(2);
  const opt = (name, d) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : d;
  };
  const dir = resolve(opt("--dir", join(ROOT, "dist/explorer")));
  if (!existsSync(join(dir, "index.html"))) {
    console.error(`serve-explorer: ${dir}/index.html not found — run npm run explorer:build first`);
    process.exit(1);
  }
  const { url } = await serveStatic(dir, { port: Number(opt("--port", process.env.PORT ?? 8080)), isolate: !args.includes("--no-isolation") });
  console.log(`normkit explorer: ${url}  (serving ${dir}; Ctrl-C to stop)`);
}
