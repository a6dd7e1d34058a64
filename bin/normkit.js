#!/usr/bin/env node
// The normkit command line. The TypeScript sources compile to dist/ (npm install/ci runs the build).
import { main } from "../dist/src/cli/normkit.js";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`normkit: ${e && e.message ? e.message : e}`);
    process.exit(1);
  },
);
