import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An independent reader of the spool's on-disk format (as documented in src/outputs/spool-record.ts:
 * `u32 body length | u32 CRC-32 | u16 key length | key | payload`), read-only so it can look at the spool
 * of a running agent without touching it. Returns the keys (event ids) of every complete record, in order.
 */
export function spooledKeys(stateDir: string): string[] {
  const spoolRoot = join(stateDir, 'spool');
  if (!existsSync(spoolRoot)) return [];
  const keys: string[] = [];
  for (const output of readdirSync(spoolRoot)) {
    const dir = join(spoolRoot, output);
    for (const name of readdirSync(dir).filter((entry) => entry.endsWith('.seg')).sort()) {
      const bytes = readFileSync(join(dir, name));
      let offset = 0;
      while (offset + 8 <= bytes.length) {
        const next = offset + 8 + bytes.readUInt32LE(offset);
        if (next > bytes.length) break;
        const keyLength = bytes.readUInt16LE(offset + 8);
        keys.push(bytes.toString('utf8', offset + 10, offset + 10 + keyLength));
        offset = next;
      }
    }
  }
  return keys;
}
