/** docs/isa.md stays true: it is exactly what renderIsaDoc() renders, and its example assembles. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { disassembleAll } from '../../src/asm/disasm.js';
import { renderIsaDoc } from '../../src/asm/isa-doc.js';
import { INSTRUCTIONS } from '../../src/cpu/isa.js';

const doc = renderIsaDoc();

describe('docs/isa.md', () => {
  it('equals renderIsaDoc() (regenerate: npx tsx --conditions=source packages/emulator/bin/render-isa-doc.ts)', () => {
    expect(readFileSync(new URL('../../../../docs/isa.md', import.meta.url), 'utf8')).toBe(doc);
  });

  it('has one row per instruction, with its opcode, syntax, privilege and summary', () => {
    for (const d of INSTRUCTIONS) {
      const syntax = d.operands.length ? `${d.mnemonic} ${d.operands.join(', ')}` : d.mnemonic;
      const row = `| 0x${d.op.toString(16).padStart(2, '0')} | \`${syntax}\` |`;
      const line = doc.split('\n').find((l) => l.startsWith(row));
      expect(line, syntax).toBeDefined();
      expect(line, syntax).toContain(
        `| ${d.privilege} | ${d.sensitive ? 'yes' : ''} | ${d.summary.replaceAll('|', '\\|')} |`,
      );
    }
  });

  it('shows an example that assembles to what its comments say', () => {
    const example = /```asm\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const r = assemble(example!, { file: 'isa.md' });
    expect(r.origin).toBe(0x1000);
    expect(disassembleAll(r.bytes.subarray(0, 64), r.origin).map((l) => l.text)).toEqual([
      'mov eax, 0x5',
      'ld eax, [ds:ebx+0x10]',
      'st [ebp-0x4], ecx',
      'dec eax',
      'jnz 0x1018',
      'out 0x3f8, eax',
      'jmpf 0x0018:0x00001000',
    ]);
    expect(r.labels.get('start.loop')).toBe(0x1018);
    expect([...r.bytes.subarray(56)]).toEqual([0x68, 0x69, 0x0a, 0x00]);
  });
});
