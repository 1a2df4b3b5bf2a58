// How keys and values are shown: the API gives each with an encoding
// (json, text or base64); the user picks Auto, JSON, Text or Hex.
import { Encoding } from './api';

export type Fmt = 'auto' | 'json' | 'text' | 'hex';

const te = new TextEncoder();

export function bytesOf(v: unknown, e?: Encoding): Uint8Array | null {
  if (v === null || v === undefined || !e) return null;
  if (e === 'json') return te.encode(JSON.stringify(v));
  if (e === 'text') return te.encode(String(v));
  const bin = atob(String(v));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function hexdump(b: Uint8Array | null, max = 4096): string {
  if (!b) return '(null)';
  const lines: string[] = [];
  for (let off = 0; off < Math.min(b.length, max); off += 16) {
    const row = b.subarray(off, off + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const asc = Array.from(row, (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + asc);
  }
  if (b.length > max) lines.push(`… ${b.length - max} more bytes`);
  return lines.join('\n');
}

export function show(v: unknown, e: Encoding | undefined, fmt: Fmt): string {
  if (v === null || v === undefined) return '(null)';
  switch (fmt) {
    case 'hex':
      return hexdump(bytesOf(v, e));
    case 'text':
      if (e === 'json') return JSON.stringify(v);
      if (e === 'base64') return new TextDecoder().decode(bytesOf(v, e)!);
      return String(v);
    case 'json':
      if (e === 'json') return JSON.stringify(v, null, 2);
      if (e === 'text') {
        try {
          return JSON.stringify(JSON.parse(String(v)), null, 2);
        } catch {
          return '(not JSON) ' + String(v);
        }
      }
      return '(binary, not JSON)\n' + hexdump(bytesOf(v, e));
    default:
      if (e === 'json') return typeof v === 'object' ? JSON.stringify(v, null, 2) : JSON.stringify(v);
      if (e === 'text') return String(v);
      return hexdump(bytesOf(v, e));
  }
}

// preview is one line for a table cell.
export function preview(v: unknown, e: Encoding | undefined, max = 140): string {
  let s: string;
  if (v === null || v === undefined) s = '(null)';
  else if (e === 'json') s = JSON.stringify(v);
  else if (e === 'text') s = String(v);
  else s = '0x' + Array.from(bytesOf(v, e)!.subarray(0, 48), (x) => x.toString(16).padStart(2, '0')).join('');
  s = s.replace(/\s+/g, ' ');
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

// numericFields lists the paths of the numbers in a JSON value (up to
// three levels deep), for the live chart's field picker.
export function numericFields(v: unknown, prefix = '', depth = 0, out: string[] = []): string[] {
  if (typeof v === 'number' && prefix) out.push(prefix);
  else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) numericFields(x, prefix ? prefix + '.' + k : k, depth + 1, out);
  }
  return out;
}

export function pick(v: unknown, path: string): number | null {
  let cur: unknown = v;
  for (const p of path.split('.')) {
    if (!cur || typeof cur !== 'object') return null;
    cur = (cur as Record<string, unknown>)[p];
  }
  return typeof cur === 'number' && Number.isFinite(cur) ? cur : null;
}
