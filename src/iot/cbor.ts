/**
 * Minimal CBOR (RFC 8949) for the device provisioning MQTT API's `cbor` payload format: the request and response
 * shapes are JSON-like (maps, text, integers, booleans, null, arrays), so that is all this reads and writes.
 * Definite lengths when writing; indefinite-length items, tags, floats and bytes are refused when reading
 * except for byte strings (read as latin1 text) and tags (ignored, their content kept).
 */

export class CborError extends Error {}

const MAX_DEPTH = 32;

export function decodeCbor(buf: Uint8Array): unknown {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new CborError('truncated CBOR');
  };
  const argument = (info: number): number => {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (!size) throw new CborError('indefinite lengths are not supported');
    need(size);
    let n = 0;
    for (let i = 0; i < size; i++) n = n * 256 + buf[pos++]!;
    if (!Number.isSafeInteger(n)) throw new CborError('integer too large');
    return n;
  };
  const item = (depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new CborError('CBOR nested too deeply');
    need(1);
    const initial = buf[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22 || info === 23) return null;
      throw new CborError('floats and other simple values are not supported');
    }
    const n = argument(info);
    switch (major) {
      case 0:
        return n;
      case 1:
        return -1 - n;
      case 2:
      case 3: {
        need(n);
        const bytes = buf.subarray(pos, pos + n);
        pos += n;
        return Buffer.from(bytes).toString(major === 3 ? 'utf8' : 'latin1');
      }
      case 4: {
        if (n > buf.length) throw new CborError('truncated CBOR');
        return Array.from({ length: n }, () => item(depth + 1));
      }
      case 5: {
        if (n > buf.length) throw new CborError('truncated CBOR');
        const out: Record<string, unknown> = Object.create(null);
        for (let i = 0; i < n; i++) {
          const key = item(depth + 1);
          if (typeof key !== 'string') throw new CborError('map keys must be text');
          out[key] = item(depth + 1);
        }
        return { ...out };
      }
      default: // 6: a tag, its content kept
        return item(depth + 1);
    }
  };
  const value = item(0);
  if (pos !== buf.length) throw new CborError('trailing bytes after the CBOR item');
  return value;
}

export function encodeCbor(value: unknown): Buffer {
  const parts: Buffer[] = [];
  const head = (major: number, n: number) => {
    if (n < 24) parts.push(Buffer.from([(major << 5) | n]));
    else if (n < 0x100) parts.push(Buffer.from([(major << 5) | 24, n]));
    else if (n < 0x10000) parts.push(Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]));
    else if (n < 0x100000000) {
      const b = Buffer.alloc(5);
      b[0] = (major << 5) | 26;
      b.writeUInt32BE(n, 1);
      parts.push(b);
    } else {
      const b = Buffer.alloc(9);
      b[0] = (major << 5) | 27;
      b.writeBigUInt64BE(BigInt(n), 1);
      parts.push(b);
    }
  };
  const write = (v: unknown): void => {
    if (v === null || v === undefined) return void parts.push(Buffer.from([0xf6]));
    if (v === false) return void parts.push(Buffer.from([0xf4]));
    if (v === true) return void parts.push(Buffer.from([0xf5]));
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new CborError('only integers are written');
      return v >= 0 ? head(0, v) : head(1, -1 - v);
    }
    if (typeof v === 'string') {
      const bytes = Buffer.from(v, 'utf8');
      head(3, bytes.length);
      return void parts.push(bytes);
    }
    if (Array.isArray(v)) {
      head(4, v.length);
      return v.forEach(write);
    }
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    head(5, entries.length);
    for (const [k, x] of entries) {
      write(k);
      write(x);
    }
  };
  write(value);
  return Buffer.concat(parts);
}
