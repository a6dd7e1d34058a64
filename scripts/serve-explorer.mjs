#!/usr/bin/env node
/**
 * A minimal static server for the built explorer (any static server works; this one has no
 * dependencies). With isolation on (the default here) it sends COOP/COEP headers, which make the
 * page cross-origin isolated: normkit's WebAssembly SIMD kernels then run on a shared memory. Without
 * them (any plain static host) the same kernels run on an unshared memory; the page says which.
 *
 *   node scripts/serve-explorer.mjs [--dir dist/explorer] [--port 8080] [--no-isolation]
 * Also importable: serveStatic(dir, { port, isolate }) → { server, url }.
 *
 * GET and HEAD only (405 otherwise); a URL whose %-escapes do not decode is a 400, a path outside
 * the folder a 403, a missing file a 404; no request stops the server.
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
  const text = (res, status, body, extra = {}) => res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...extra }).end(body);
  const handle = (req, res) => {
    // a static site: GET and HEAD only (node:http sends no body for HEAD)
    if (req.method !== "GET" && req.method !== "HEAD") return text(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return text(res, 400, "bad request: malformed URL\n"); // %-escapes that are not UTF-8, as /%E0%A4%A
    }
    if (path.includes("\0")) return text(res, 400, "bad request: NUL in path\n");
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return text(res, 403, "forbidden\n");
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file) || !statSync(file).isFile()) return text(res, 404, `not found: ${path.length > 200 ? path.slice(0, 200) + "…" : path}\n`);
    const headers = { "content-type": MIME[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache" };
    if (isolate) Object.assign(headers, { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
    res.writeHead(200, headers).end(readFileSync(file));
  };
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      // a file that vanished or cannot be read (a name too long, no permission): answer, stay up
      const status = e && (e.code === "ENOENT" || e.code === "ENAMETOOLONG" || e.code === "ENOTDIR") ? 404 : 500;
      if (!res.headersSent) text(res, status, status === 404 ? "not found\n" : "internal error\n");
      else res.destroy();
    }
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
