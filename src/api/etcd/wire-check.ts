/**
 * Strict protobuf checks on request bytes, before proto-loader (protobufjs) decodes them.
 *
 * protobufjs's generated decoders switch on the field number only: a field sent with the wrong
 * wire type is read as if it had the right one (field 1 `key` sent as varint 2 decoded as the
 * key "\x02"), and groups or truncated lengths may be skipped leniently. Go's protobuf (and so
 * etcd) refuses such messages. `checkWire` walks the bytes against the message's descriptor:
 *
 * ```
 *   tag = varint (field << 3 | wire type)   wire types: 0 varint, 1 fixed64, 2 length, 5 fixed32
 *   known field ──► its wire type must match its declared type (packed repeated scalars: 0/1/5 or 2)
 *                   a message field is checked recursively (nesting depth at most 64)
 *   unknown field ─► skipped, but its length must fit; groups (3, 4) and types 6, 7 are refused
 *   field number 0, varints over 10 bytes, lengths past the end ──► refused
 * ```
 *
 * Also `compressedWithoutEncoding`: grpc-js reads a message whose compressed flag is set as
 * uncompressed when no grpc-encoding was negotiated; grpc-go refuses it ("grpc: compressed flag
 * set with identity or empty encoding", Internal). grpc-js passes the deserializer the message
 * as a view into the framed buffer (flag byte, 4-byte length, message), so the flag can be read
 * from just before the view: it is 1 only when the framing header is really there (the length
 * matches). A message decompressed from a negotiated gzip/deflate is a fresh buffer without the
 * header, so it is never mistaken.
 */
import type { PackageDefinition } from '@grpc/proto-loader';

/** A DescriptorProto field as proto-loader exposes it. */
interface FieldDescriptor { name: string; number: number; label: string; type: string; typeName: string }
interface MessageDescriptor { name: string; field: FieldDescriptor[] }

/** A compiled view of one message type: field number → expected wire types and sub-message. */
export interface WireSchema {
  name: string;
  fields: Map<number, { name: string; wire: number; packable: boolean; message?: () => WireSchema }>;
}

/** Why bytes were refused: etcd-like text, e.g. "proto: wrong wireType = 0 for field key". */
export class WireError extends Error {}

const VARINT_TYPES = new Set(['TYPE_INT32', 'TYPE_INT64', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_SINT32', 'TYPE_SINT64', 'TYPE_BOOL', 'TYPE_ENUM']);
const FIXED64_TYPES = new Set(['TYPE_FIXED64', 'TYPE_SFIXED64', 'TYPE_DOUBLE']);
const FIXED32_TYPES = new Set(['TYPE_FIXED32', 'TYPE_SFIXED32', 'TYPE_FLOAT']);
const DEPTH_MAX = 64;

/** Builds (and caches) the schema of every message type in a proto-loader package definition. */
export function wireSchemas(def: PackageDefinition): (fullName: string) => WireSchema {
  const cache = new Map<string, WireSchema>();
  const names = Object.keys(def).filter((k) => (def[k] as { format?: string }).format?.startsWith('Protocol Buffer'));
  const resolve = (typeName: string, fromPkg: string): string => {
    const bare = typeName.replace(/^\./, '');
    if (names.includes(bare)) return bare;
    if (names.includes(`${fromPkg}.${bare}`)) return `${fromPkg}.${bare}`;
    const found = names.find((n) => n.endsWith(`.${bare}`));
    if (!found) throw new Error(`wire-check: no message type ${typeName}`);
    return found;
  };
  const schema = (fullName: string): WireSchema => {
    const hit = cache.get(fullName);
    if (hit) return hit;
    const desc = (def[fullName] as { type: MessageDescriptor }).type;
    const pkg = fullName.slice(0, fullName.lastIndexOf('.'));
    const s: WireSchema = { name: fullName, fields: new Map() };
    cache.set(fullName, s);
    for (const f of desc.field) {
      const repeated = f.label === 'LABEL_REPEATED';
      if (f.type === 'TYPE_MESSAGE') {
        const target = resolve(f.typeName, pkg);
        s.fields.set(f.number, { name: f.name, wire: 2, packable: false, message: () => schema(target) });
      } else if (f.type === 'TYPE_STRING' || f.type === 'TYPE_BYTES') {
        s.fields.set(f.number, { name: f.name, wire: 2, packable: false });
      } else {
        const wire = VARINT_TYPES.has(f.type) ? 0 : FIXED64_TYPES.has(f.type) ? 1 : FIXED32_TYPES.has(f.type) ? 5 : -1;
        if (wire < 0) throw new Error(`wire-check: unsupported field type ${f.type} in ${fullName}`);
        s.fields.set(f.number, { name: f.name, wire, packable: repeated });
      }
    }
    return s;
  };
  return schema;
}

/** Throws WireError unless `buf` is a well-formed encoding of `schema`. */
export function checkWire(buf: Uint8Array, schema: WireSchema): void {
  walk(buf, 0, buf.length, schema, 0);
}

function walk(buf: Uint8Array, start: number, end: number, schema: WireSchema, depth: number): void {
  if (depth > DEPTH_MAX) throw new WireError(`proto: message nested deeper than ${DEPTH_MAX}`);
  let pos = start;
  const varint = (): number => {
    // Returns the value when it fits in 2^53 (tags and lengths must); checks the 10-byte bound.
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new WireError('proto: unexpected end of message');
      const b = buf[pos++]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (b < 0x80) return value;
    }
    throw new WireError('proto: integer overflow (varint longer than 10 bytes)');
  };
  while (pos < end) {
    const tag = varint();
    const fieldNo = Math.floor(tag / 8);
    const wire = tag % 8;
    if (fieldNo <= 0 || fieldNo > 0x1fffffff) throw new WireError(`proto: illegal field number ${fieldNo} in ${schema.name}`);
    const f = schema.fields.get(fieldNo);
    if (f && wire !== f.wire && !(f.packable && wire === 2)) {
      throw new WireError(`proto: wrong wireType = ${wire} for field ${f.name}`);
    }
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        if (end - pos < 8) throw new WireError('proto: unexpected end of message');
        pos += 8;
        break;
      case 5:
        if (end - pos < 4) throw new WireError('proto: unexpected end of message');
        pos += 4;
        break;
      case 2: {
        const len = varint();
        if (len > end - pos) throw new WireError(`proto: length ${len} of field ${f?.name ?? fieldNo} runs past the end`);
        if (f?.message) walk(buf, pos, pos + len, f.message(), depth + 1);
        else if (f?.packable) checkPacked(buf, pos, pos + len, f.wire, f.name);
        pos += len;
        break;
      }
      default:
        throw new WireError(`proto: illegal wireType ${wire} for field ${f?.name ?? fieldNo}`);
    }
  }
}

function checkPacked(buf: Uint8Array, start: number, end: number, wire: number, name: string): void {
  const len = end - start;
  if (wire === 1 ? len % 8 !== 0 : wire === 5 ? len % 4 !== 0 : false) throw new WireError(`proto: bad packed length for field ${name}`);
  if (wire !== 0) return;
  let n = 0;
  for (let p = start; p < end; p++) {
    n = buf[p]! < 0x80 ? 0 : n + 1;
    if (n >= 10) throw new WireError(`proto: integer overflow in packed field ${name}`);
  }
  if (n !== 0) throw new WireError(`proto: unexpected end of packed field ${name}`);
}

/**
 * True when grpc-js handed the deserializer an uncompressed view of a frame whose compressed
 * flag is set (see the module comment): the 5 bytes before `buf` in its ArrayBuffer are the
 * frame header (flag 1, big-endian length equal to `buf.length`).
 */
export function compressedWithoutEncoding(buf: Buffer): boolean {
  if (buf.byteOffset < 5) return false;
  const head = new Uint8Array(buf.buffer, buf.byteOffset - 5, 5);
  if (head[0] !== 1) return false;
  const len = ((head[1]! << 24) >>> 0) + (head[2]! << 16) + (head[3]! << 8) + head[4]!;
  return len === buf.length;
}
