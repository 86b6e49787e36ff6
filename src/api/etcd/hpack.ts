/**
 * A minimal HPACK (RFC 7541) decoder and a literal-only encoder: just enough to read a client's
 * request header blocks and write them again without the dynamic table. Used by
 * `scheme-authority.ts` only.
 *
 * Limits: the dynamic table is at most `tableBytesMax` (the SETTINGS_HEADER_TABLE_SIZE the
 * server advertised; a larger size update is an error, as RFC 7541 §4.2 demands); an integer
 * above 2^24 and a Huffman string with a bad padding or an EOS symbol are errors. Every error is
 * an `HpackError`; callers treat it as a COMPRESSION_ERROR on the connection.
 */

export class HpackError extends Error {}

/** RFC 7541 Appendix A. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/**
 * The bit length of each symbol's code (RFC 7541 Appendix B, symbols 0–255 and EOS). The code is
 * canonical, so the codes themselves follow from the lengths (assigned in order of length, then
 * symbol).
 */
const HUFFMAN_BITS = (
  '13,23,28,28,28,28,28,28,28,24,30,28,28,30,28,28,28,28,28,28,28,28,30,28,28,28,28,28,28,28,28,28,6,10,10,12,13,6,8,11,10,10,8,' +
  '11,8,6,6,6,5,5,5,6,6,6,6,6,6,6,7,8,15,6,12,10,13,6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,8,7,8,13,19,13,14,6,15,5,6,5,6,' +
  '5,6,6,6,5,7,7,6,6,6,5,6,7,6,5,5,6,7,7,7,7,7,15,11,14,13,28,20,22,20,20,22,22,22,23,22,23,23,23,23,23,24,23,24,24,22,23,24,23,' +
  '23,23,23,21,22,23,22,23,23,24,22,21,20,22,22,23,23,21,23,22,22,24,21,22,23,23,21,21,22,21,23,22,23,23,20,22,22,22,23,22,22,23,' +
  '26,26,20,19,22,23,22,25,26,26,26,27,27,26,24,25,19,21,26,27,27,26,27,24,21,21,26,26,28,27,27,27,20,24,20,21,22,21,21,23,22,22,' +
  '25,25,24,24,26,23,26,27,26,26,27,27,27,27,27,28,27,27,27,27,27,26,30'
).split(',').map(Number);

const EOS = 256;
const MAX_BITS = 30;

/** Canonical decoding tables: per length, the first code, the count, and the symbols in order. */
const HUFFMAN = (() => {
  const symbols = [...HUFFMAN_BITS.keys()].sort((a, b) => HUFFMAN_BITS[a]! - HUFFMAN_BITS[b]! || a - b);
  const first = new Array<number>(MAX_BITS + 1).fill(0);
  const count = new Array<number>(MAX_BITS + 1).fill(0);
  const offset = new Array<number>(MAX_BITS + 1).fill(0);
  for (const s of symbols) count[HUFFMAN_BITS[s]!]!++;
  let code = 0;
  let at = 0;
  for (let len = 1; len <= MAX_BITS; len++) {
    first[len] = code;
    offset[len] = at;
    code = (code + count[len]!) * 2;
    at += count[len]!;
  }
  return { symbols, first, count, offset };
})();

/** Decodes a Huffman-coded string (RFC 7541 §5.2). */
export function huffmanDecode(buf: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of buf) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const i = code - HUFFMAN.first[len]!;
      if (i >= 0 && i < HUFFMAN.count[len]!) {
        const sym = HUFFMAN.symbols[HUFFMAN.offset[len]! + i]!;
        if (sym === EOS) throw new HpackError('EOS in a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len >= MAX_BITS) {
        throw new HpackError('bad Huffman code');
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (the EOS prefix).
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('bad Huffman padding');
  return Buffer.from(out);
}

/** How a field was sent, so a re-encoding keeps "never indexed" (RFC 7541 §6.2.3). */
export interface HeaderField { name: string; value: string; neverIndexed: boolean }

const INT_MAX = 2 ** 24;

/** A decoder's state for one connection: its dynamic table. */
export class HpackDecoder {
  private table: Array<{ name: string; value: string; size: number }> = [];
  private size = 0;
  private maxSize: number;

  constructor(private readonly tableBytesMax = 4096) {
    this.maxSize = tableBytesMax;
  }

  /** Decodes one complete header block, updating the dynamic table. */
  decode(block: Uint8Array): HeaderField[] {
    const fields: HeaderField[] = [];
    let pos = 0;
    const int = (prefixBits: number): number => {
      const mask = 2 ** prefixBits - 1;
      if (pos >= block.length) throw new HpackError('truncated integer');
      let v = block[pos++]! & mask;
      if (v < mask) return v;
      let m = 1;
      for (;;) {
        if (pos >= block.length) throw new HpackError('truncated integer');
        const b = block[pos++]!;
        v += (b & 0x7f) * m;
        m *= 128;
        if (v > INT_MAX) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return v;
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = (block[pos]! & 0x80) !== 0;
      const n = int(7);
      if (pos + n > block.length) throw new HpackError('truncated string');
      const raw = block.subarray(pos, pos + n);
      pos += n;
      return (huffman ? huffmanDecode(raw) : Buffer.from(raw)).toString('latin1');
    };
    const at = (index: number): readonly [string, string] => {
      if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
      const e = this.table[index - STATIC_TABLE.length - 1];
      if (!e) throw new HpackError(`bad index ${index}`);
      return [e.name, e.value];
    };
    let fieldsSeen = false;
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) { // indexed field
        const index = int(7);
        if (index === 0) throw new HpackError('index 0');
        const [name, value] = at(index);
        fields.push({ name, value, neverIndexed: false });
      } else if ((b & 0xe0) === 0x20) { // dynamic table size update
        if (fieldsSeen) throw new HpackError('table size update after a field');
        const size = int(5);
        if (size > this.tableBytesMax) throw new HpackError(`table size ${size} above ${this.tableBytesMax}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        const incremental = (b & 0xc0) === 0x40;
        const neverIndexed = (b & 0xf0) === 0x10;
        const index = int(incremental ? 6 : 4);
        const name = index === 0 ? str() : at(index)[0];
        const value = str();
        fields.push({ name, value, neverIndexed });
        if (incremental) this.add(name, value);
      }
      fieldsSeen = true;
    }
    return fields;
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.evict(size);
    if (size > this.maxSize) return; // too big: the table is now empty (RFC 7541 §4.4)
    this.table.unshift({ name, value, size });
    this.size += size;
  }

  private evict(room: number): void {
    while (this.table.length > 0 && this.size + room > this.maxSize) this.size -= this.table.pop()!.size;
  }
}

/**
 * Encodes fields as literals without indexing (or never indexed), with literal names and raw
 * (not Huffman) strings: the receiver's dynamic table is never used.
 */
export function encodeLiterals(fields: HeaderField[]): Buffer {
  const parts: Buffer[] = [];
  const int = (v: number, prefixBits: number, flags: number): void => {
    const mask = 2 ** prefixBits - 1;
    if (v < mask) {
      parts.push(Buffer.of(flags | v));
      return;
    }
    const bytes = [flags | mask];
    v -= mask;
    while (v >= 128) {
      bytes.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
    parts.push(Buffer.from(bytes));
  };
  const str = (s: string): void => {
    const b = Buffer.from(s, 'latin1');
    int(b.length, 7, 0);
    parts.push(b);
  };
  for (const f of fields) {
    int(0, 4, f.neverIndexed ? 0x10 : 0x00);
    str(f.name);
    str(f.value);
  }
  return Buffer.concat(parts);
}
