/**
 * The digit sample bundled with the page: `digits.bin`, written by scripts/build-explorer.mjs from
 * the mnist package's test split (the lab's own split, src/lab/data.ts).
 *
 * Format (little-endian): "NKDG", u32 count, u32 rows, u32 cols, count label bytes, then
 * count*rows*cols pixel bytes (round(255 * v), row-major).
 */
export interface Digits {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly labels: Uint8Array;
  /** count*rows*cols bytes. */
  readonly pixels: Uint8Array;
}

export function parseDigits(buf: ArrayBuffer): Digits {
  const dv = new DataView(buf);
  const magic = String.fromCharCode(dv.getUint8(0), dv.getUint8(1), dv.getUint8(2), dv.getUint8(3));
  if (buf.byteLength < 16 || magic !== "NKDG") throw new Error(`digits.bin: expected the "NKDG" header, got ${JSON.stringify(magic)}`);
  const count = dv.getUint32(4, true), rows = dv.getUint32(8, true), cols = dv.getUint32(12, true);
  const need = 16 + count + count * rows * cols;
  if (buf.byteLength !== need) throw new Error(`digits.bin: expected ${need} bytes for ${count} digits of ${rows}x${cols}, got ${buf.byteLength}`);
  return {
    count, rows, cols,
    labels: new Uint8Array(buf, 16, count),
    pixels: new Uint8Array(buf, 16 + count, count * rows * cols),
  };
}

export async function loadDigits(url = "digits.bin"): Promise<Digits> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return parseDigits(await r.arrayBuffer());
}
