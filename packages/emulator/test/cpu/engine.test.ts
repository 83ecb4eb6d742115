import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandLineBudget, INLINE_BUDGET } from '../../src/index.js';

describe('commandLineBudget', () => {
  it('reads the cumulative inlining budget from node flags, with - or _, the last one counting', () => {
    expect(commandLineBudget([])).toBeUndefined();
    expect(commandLineBudget(['--import', 'tsx', '--conditions=source'])).toBeUndefined();
    expect(commandLineBudget(['--max-inlined-bytecode-size-cumulative=920'])).toBe(920);
    expect(commandLineBudget(['--max_inlined_bytecode_size_cumulative=1500'])).toBe(1500);
    expect(commandLineBudget(['--max-inlined_bytecode-size_cumulative=7'])).toBe(7);
    expect(commandLineBudget(['-max-inlined-bytecode-size-cumulative=5'])).toBe(5);
    expect(
      commandLineBudget([
        '--max-inlined-bytecode-size-cumulative=920',
        '--max-inlined-bytecode-size-cumulative=4000',
      ]),
    ).toBe(4000);
  });

  it('ignores other flags, also those whose name it begins with, and values that are not integers', () => {
    expect(commandLineBudget(['--max-inlined-bytecode-size=460'])).toBeUndefined();
    expect(commandLineBudget(['--max-inlined-bytecode-size-cumulative-x=5'])).toBeUndefined();
    expect(commandLineBudget(['--max-inlined-bytecode-size-cumulative'])).toBeUndefined();
    expect(commandLineBudget(['---max-inlined-bytecode-size-cumulative=5'])).toBeUndefined();
    expect(commandLineBudget(['max-inlined-bytecode-size-cumulative=5'])).toBeUndefined();
    expect(commandLineBudget(['--max-inlined-bytecode-size-cumulative=lots'])).toBeUndefined();
    expect(commandLineBudget(['--max-inlined-bytecode-size-cumulative=1.5'])).toBeUndefined();
  });
});

describe('raiseInliningBudget, in a process of its own', () => {
  const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
  const child = new URL('./fixtures/engine-child.ts', import.meta.url).pathname;
  const settings = (nodeFlags: string[]) =>
    JSON.parse(execFileSync(tsx, [...nodeFlags, child], { encoding: 'utf8' })) as Record<string, unknown>;

  it('raises V8 default 920 to INLINE_BUDGET once (one V8 flag set), and says so', () => {
    expect(settings([])).toEqual({
      before: { inlineBudget: 920, setBy: 'V8 default' },
      first: { inlineBudget: INLINE_BUDGET, setBy: 'clefnet' },
      second: { inlineBudget: INLINE_BUDGET, setBy: 'clefnet' },
      flagsSet: [`--max-inlined-bytecode-size-cumulative=${INLINE_BUDGET}`],
    });
  });

  it('leaves a budget the command line gave, and sets no flag', () => {
    // (`node -max-inlined-…=N` with one dash works too, but not through tsx's command line.)
    const given = { inlineBudget: 1500, setBy: 'command line' };
    expect(settings(['--max_inlined_bytecode_size_cumulative=1500'])).toEqual({
      before: given,
      first: given,
      second: given,
      flagsSet: [],
    });
  });
});
