import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { commandLineBudget, commandLineFlag, INLINE_BUDGET, TIER_UP_WAIT } from '../../src/index.js';

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

describe('commandLineFlag', () => {
  it('reads any flag the same way', () => {
    const name = '--minimum-invocations-after-ic-update';
    expect(commandLineFlag(['--minimum_invocations_after_ic_update=7'], name)).toBe(7);
    expect(commandLineFlag(['--max-inlined-bytecode-size-cumulative=7'], name)).toBeUndefined();
  });
});

describe('raiseInliningBudget, in a process of its own', () => {
  const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
  const child = new URL('./fixtures/engine-child.ts', import.meta.url).pathname;
  const settings = (nodeFlags: string[]) =>
    JSON.parse(execFileSync(tsx, [...nodeFlags, child], { encoding: 'utf8' })) as Record<string, unknown>;

  it('sets V8 defaults 920 and 500 to INLINE_BUDGET and TIER_UP_WAIT once (two V8 flags), and says so', () => {
    const set = {
      inlineBudget: INLINE_BUDGET,
      setBy: 'clefnet',
      tierUpWait: TIER_UP_WAIT,
      tierUpWaitSetBy: 'clefnet',
    };
    expect(settings([])).toEqual({
      before: { inlineBudget: 920, setBy: 'V8 default', tierUpWait: 500, tierUpWaitSetBy: 'V8 default' },
      first: set,
      second: set,
      flagsSet: [
        `--max-inlined-bytecode-size-cumulative=${INLINE_BUDGET}`,
        `--minimum-invocations-after-ic-update=${TIER_UP_WAIT}`,
      ],
    });
  });

  it('leaves a value the command line gave, and sets only the other flag', () => {
    // (`node -max-inlined-…=N` with one dash works too, but not through tsx's command line.)
    const given = { inlineBudget: 1500, setBy: 'command line' };
    expect(settings(['--max_inlined_bytecode_size_cumulative=1500'])).toEqual({
      before: { ...given, tierUpWait: 500, tierUpWaitSetBy: 'V8 default' },
      first: { ...given, tierUpWait: TIER_UP_WAIT, tierUpWaitSetBy: 'clefnet' },
      second: { ...given, tierUpWait: TIER_UP_WAIT, tierUpWaitSetBy: 'clefnet' },
      flagsSet: [`--minimum-invocations-after-ic-update=${TIER_UP_WAIT}`],
    });
    const both = {
      inlineBudget: 1500,
      setBy: 'command line',
      tierUpWait: 20,
      tierUpWaitSetBy: 'command line',
    };
    expect(
      settings(['--max_inlined_bytecode_size_cumulative=1500', '--minimum-invocations-after-ic-update=20']),
    ).toEqual({ before: both, first: both, second: both, flagsSet: [] });
  });
});
