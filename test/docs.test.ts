/** Docs stay true: the error table and the commands the README shows. */
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

describe('docs/errors.md', () => {
  it('lists exactly the registered error codes, with the same meanings, in the same order', () => {
    const rows = read('docs/errors.md')
      .split('\n')
      .map((l) => /^\| `([A-Z0-9_]+)` \| (.*) \|$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]]);
    expect(rows).toEqual(Object.entries(ERROR_CODES));
  });
});

describe('README.md', () => {
  it('shows the two commands of a fresh machine', () => {
    const readme = read('README.md');
    expect(readme).toContain('npm install');
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
  });
});
