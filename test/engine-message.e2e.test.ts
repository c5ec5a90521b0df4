/**
 * An embedded engine's error reaches the user as one message: chdb rethrows exceptions with the
 * text of the one inside, so the code prefix and the name-and-version suffix came two or three
 * times ("Code: 50. DB::Exception: Code: 50. DB::Exception: …", found by a black-box test of a
 * Parquet result with a NULL column).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unnestEngineMessage } from '../src/query/engine-message.js';
import { call, startServer, type RunningServer } from './helpers/server.js';

describe('unnestEngineMessage', () => {
  it('says the code and the name once, keeps the message', () => {
    expect(unnestEngineMessage('Code: 691. DB::Exception: Code: 691. DB::Exception: Code: 691. DB::Exception: Unexpected value 0 in enum. (UNKNOWN_ELEMENT_OF_ENUM) (version 26.7.2.1). (UNKNOWN_ELEMENT_OF_ENUM) (version 26.7.2.1). (UNKNOWN_ELEMENT_OF_ENUM)'))
      .toBe('Code: 691. DB::Exception: Unexpected value 0 in enum. (UNKNOWN_ELEMENT_OF_ENUM) (version 26.7.2.1)');
    // A message that is not nested is left as it is; so is a nested one of another code.
    for (const m of ['Code: 47. DB::Exception: Unknown identifier x. (UNKNOWN_IDENTIFIER)', 'Code: 1. DB::Exception: Code: 2. DB::Exception: inner. (B) (A)', 'not an engine message']) {
      expect(unnestEngineMessage(m)).toBe(m);
    }
  });
});

describe('through the API', () => {
  let srv: RunningServer;
  let token: string;
  beforeAll(async () => {
    srv = await startServer();
    token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  }, 60_000);
  afterAll(async () => { await srv?.stop(); });

  it('a Parquet result the engine refuses says its code once', async () => {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT NULL AS x FORMAT Parquet')}`, { token });
    expect(r.status, r.text).toBe(422);
    expect(r.body.error.match(/DB::Exception/g)).toHaveLength(1);
  });
});
