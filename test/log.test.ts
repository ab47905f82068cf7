import { describe, expect, it } from 'vitest';
import { escapeControl } from '../src/log.js';

describe('escapeControl (every message that quotes input)', () => {
  it('escapes C0, DEL and C1 controls, keeping \\n \\r \\t readable', () => {
    expect(escapeControl('a\u001b[31mb\u0000c\u007f\u009b\n\r\t')).toBe('a\\x1b[31mb\\x00c\\x7f\\x9b\\n\\r\\t');
  });

  it('escapes line separators and the bidirectional controls that make text read as something else', () => {
    expect(escapeControl('rm -rf \u202e/ tsoh\u202c \u2028x\u2029 \u2066a\u2069 \u200e\u200f')).toBe('rm -rf \\u202e/ tsoh\\u202c \\u2028x\\u2029 \\u2066a\\u2069 \\u200e\\u200f');
  });

  it('leaves other text alone, non-ASCII included', () => {
    expect(escapeControl('/usr/bin/bash é 東京 👍🏽 \uFFFD')).toBe('/usr/bin/bash é 東京 👍🏽 \uFFFD');
  });
});
