import { ClefnetError, ProtocolError } from '@clefnet/protocol';
import { describe, expect, it } from 'vitest';
import { errorAnswer } from '../../src/index.js';

describe('errorAnswer: one error -> HTTP mapping', () => {
  const cases: [string, unknown, number, string, string][] = [
    ['NOT_AUTHORISED', new ProtocolError('NOT_AUTHORISED', 'no'), 401, 'NOT_AUTHORISED', 'no'],
    ['UNKNOWN_NAME', new ProtocolError('UNKNOWN_NAME', 'who'), 404, 'UNKNOWN_NAME', 'who'],
    ['ENCODING_TOO_LARGE', new ProtocolError('ENCODING_TOO_LARGE', 'big'), 413, 'ENCODING_TOO_LARGE', 'big'],
    ['another ProtocolError', new ProtocolError('NAME_INVALID', 'bad'), 400, 'NAME_INVALID', 'bad'],
    ['a host ClefnetError', new ClefnetError('STORE_CORRUPT', 'row'), 500, 'STORE_CORRUPT', 'row'],
    ['schema validation', { validation: [], message: 'body/name' }, 400, 'ENCODING_BAD_VALUE', 'body/name'],
    [
      'body over the limit',
      { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413, message: 'too large' },
      413,
      'ENCODING_TOO_LARGE',
      'too large',
    ],
    ['another 4xx', { statusCode: 415, message: 'media' }, 415, 'ENCODING_BAD_VALUE', 'media'],
    ['anything else', new Error('secret detail'), 500, 'INTERNAL', 'internal error'],
  ];
  for (const [what, error, status, code, message] of cases) {
    it(`${what} -> ${status} ${code}`, () => {
      expect(errorAnswer(error)).toEqual({ status, body: { code, message } });
    });
  }
});
