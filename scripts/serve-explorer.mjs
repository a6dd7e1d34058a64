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
  const fail = (msg) => {
    console.error(`serve-explorer: ${msg}`);
    process.exit(2);
  };
  const args = process.argv.slice(2);
  const o = { "--dir": join(ROOT, "dist/explorer"), "--port": process.env.PORT ?? "8080" };
  let isolate = true;
  for (let i = 0; i < args.length; i++) {
    const k = args[i];
    if (k === "--no-isolation") isolate = false;
    else if (k === "--dir" || k === "--port") {
      const v = args[++i];
      if (v === undefined || v.startsWith("--")) fail(`${k}: a value is missing`);
      o[k] = v;
    } else fail(`unknown option ${JSON.stringify(k)} (options: --dir DIR, --port N, --no-isolation)`);
  }
  const dir = resolve(o["--dir"]);
  const port = Number(o["--port"]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: expected an integer from 0 to 65535, got ${JSON.stringify(o["--port"])}`);
  if (!existsSync(join(dir, "index.html"))) fail(`${dir}/index.html not found — run npm run explorer:build first`);
  let url;
  try {
    ({ url } = await serveStatic(dir, { port, isolate }));
  } catch (e) {
    fail(`cannot listen on port ${port}: ${e.code ?? e.message}`);
  }
  console.log(`normkit explorer: ${url}  (serving ${dir}; Ctrl-C to stop)`);
}
