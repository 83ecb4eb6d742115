/** Rewrites docs/isa.md from the instruction table: `npx tsx --conditions=source packages/emulator/bin/render-isa-doc.ts`. */
import { writeFileSync } from 'node:fs';
import { renderIsaDoc } from '../src/asm/isa-doc.js';

const target = new URL('../../../docs/isa.md', import.meta.url);
writeFileSync(target, renderIsaDoc());
process.stdout.write(`wrote ${target.pathname}\n`);
