/** The `normkit` command: subcommands dispatch from here. */
import { readFileSync } from "node:fs";
import { conformance } from "./conformance.js";
import { lab } from "./lab.js";

const USAGE = `usage: normkit <command> [options]

commands:
  conformance FILE [--dtype float64|float32] [--backend cpu|webgpu]   check normkit against a PyTorch reference fixture file
  lab [--quick] [--arch ...] [--methods ...]  train cnn/mlp with every method across batch sizes; writes results.json and report.html

options:
  -v, --version   print normkit's version

Run "normkit <command> --help" for a command's options.`;

/** The version in normkit's package.json (dist/src/cli/ → the package root, in a clone or installed). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return String(pkg.version);
}

export async function main(argv: string[]): Promise<number> {
  const log = (s: string) => console.log(s);
  const err = (s: string) => console.error(s);
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "conformance":
      return conformance(rest, log, err);
    case "lab":
      return lab(rest, log, err, process.stdout.isTTY ? process.stdout : null);
    case "--version":
    case "-v":
      log(version());
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      log(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      err(`normkit: unknown command "${cmd}"\n${USAGE}`);
      return 1;
  }
}
