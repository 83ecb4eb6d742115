import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  commandLineBudget,
  commandLineFlag,
  commandLineSwitch,
  INLINE_BUDGET,
  TIER_UP_WAIT,
} from '../../src/index.js';

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

describe('commandLineSwitch', () => {
  it('reads a boolean flag on (--name) or off (--no-name, --noname), with - or _, the last one counting', () => {
    const name = '--use-osr';
    expect(commandLineSwitch([], name)).toBeUndefined();
    expect(commandLineSwitch(['--import', 'tsx'], name)).toBeUndefined();
    expect(commandLineSwitch(['--use-osr'], name)).toBe(true);
    expect(commandLineSwitch(['--no-use-osr'], name)).toBe(false);
    expect(commandLineSwitch(['--nouse-osr'], name)).toBe(false);
    expect(commandLineSwitch(['--no_use_osr'], name)).toBe(false);
    expect(commandLineSwitch(['-use_osr'], name)).toBe(true);
    expect(commandLineSwitch(['--no-use-osr', '--use-osr'], name)).toBe(true);
    expect(commandLineSwitch(['--use-osr', '--no-use-osr'], name)).toBe(false);
  });

  it('ignores other flags, also those whose name it begins or ends with', () => {
    const name = '--use-osr';
    expect(commandLineSwitch(['--use-osr-x'], name)).toBeUndefined();
    expect(commandLineSwitch(['--concurrent-osr'], name)).toBeUndefined();
    expect(commandLineSwitch(['---use-osr'], name)).toBeUndefined();
    expect(commandLineSwitch(['use-osr'], name)).toBeUndefined();
    expect(commandLineSwitch(['--use-osr=1'], name)).toBeUndefined();
  });
});

describe('raiseInliningBudget, in a process of its own', () => {
  const tsx = new URL('../../../../node_modules/.bin/tsx', import.meta.url).pathname;
  const child = new URL('./fixtures/engine-child.ts', import.meta.url).pathname;
  const settings = (nodeFlags: string[]) =>
    JSON.parse(execFileSync(tsx, [...nodeFlags, child], { encoding: 'utf8' })) as Record<string, unknown>;

  it('sets V8 defaults 920 and 500 to INLINE_BUDGET and TIER_UP_WAIT and turns OSR off, once (three V8 flags), and says so', () => {
    const set = {
      inlineBudget: INLINE_BUDGET,
      setBy: 'clefnet',
      tierUpWait: TIER_UP_WAIT,
      tierUpWaitSetBy: 'clefnet',
      osr: false,
      osrSetBy: 'clefnet',
    };
    expect(settings([])).toEqual({
      before: {
        inlineBudget: 920,
        setBy: 'V8 default',
        tierUpWait: 500,
        tierUpWaitSetBy: 'V8 default',
        osr: true,
        osrSetBy: 'V8 default',
      },
      first: set,
      second: set,
      flagsSet: [
        `--max-inlined-bytecode-size-cumulative=${INLINE_BUDGET}`,
        `--minimum-invocations-after-ic-update=${TIER_UP_WAIT}`,
        '--no-use-osr',
      ],
    });
  });

  it('leaves a value the command line gave, and sets only the other flag', () => {
    // (`node -max-inlined-…=N` with one dash works too, but not through tsx's command line.)
    const given = { inlineBudget: 1500, setBy: 'command line' };
    const osrDefault = { osr: true, osrSetBy: 'V8 default' };
    const osrOff = { osr: false, osrSetBy: 'clefnet' };
    expect(settings(['--max_inlined_bytecode_size_cumulative=1500'])).toEqual({
      before: { ...given, tierUpWait: 500, tierUpWaitSetBy: 'V8 default', ...osrDefault },
      first: { ...given, tierUpWait: TIER_UP_WAIT, tierUpWaitSetBy: 'clefnet', ...osrOff },
      second: { ...given, tierUpWait: TIER_UP_WAIT, tierUpWaitSetBy: 'clefnet', ...osrOff },
      flagsSet: [`--minimum-invocations-after-ic-update=${TIER_UP_WAIT}`, '--no-use-osr'],
    });
    const all = {
      inlineBudget: 1500,
      setBy: 'command line',
      tierUpWait: 20,
      tierUpWaitSetBy: 'command line',
      osr: true,
      osrSetBy: 'command line',
    };
    expect(
      settings([
        '--max_inlined_bytecode_size_cumulative=1500',
        '--minimum-invocations-after-ic-update=20',
        '--use-osr',
      ]),
    ).toEqual({ before: all, first: all, second: all, flagsSet: [] });
  });
});
