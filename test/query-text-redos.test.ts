/**
 * The query and engine-message text scans run on the event loop for every /v0/sql and
 * endpoint call: on long runs of spaces (and `b=c=c=...`) their old regexes backtracked for
 * seconds to hours. Each is checked here against its old regex on many short texts (where
 * the old one is quick): same answers. Then on the texts that made them slow, with a
 * generous bound (the old ones took 10 s to minutes on these, the new ones milliseconds).
 */
import { describe, expect, it } from 'vitest';
import { splitUserSettings } from '../src/query/run.js';
import { onlySettings, syntaxTail, withoutQuotedQuery, withoutSettingsClause } from '../src/query/engine-message.js';

// The old regexes, as they were, for the differential checks.
const OLD_TRAILING = /\s+SETTINGS\s+((?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false)\s*,\s*)*[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false))\s*$/i;
const VALUE = String.raw`(?:'(?:[^'\\]|\\.)*'|[^\s,'()]+)`;
const ASSIGN = String.raw`([A-Za-z_][A-Za-z0-9_]*)\s*=\s*${VALUE}`;
const OLD_CLAUSE = new RegExp(String.raw`\s*\bSETTINGS\s+${ASSIGN}(?:\s*,\s*${ASSIGN})*`, 'g');
const OLD_TAIL = new RegExp(String.raw`^(?:SETTINGS\s+)?(?:=\s*${VALUE}\s*,?\s*)?(?:${ASSIGN}\s*,?\s*)*$`);
const OLD_SYNTAX_TAIL = /Syntax error: failed at position \d+ \([^)]*\): ([^]*?)\. Expected [^]*$/;

/** A seeded random generator (mulberry32): the same texts on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Short texts made of the pieces these scans care about. */
function texts(seed: number, pieces: string[], count: number, maxPieces: number): string[] {
  const r = random(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const n = Math.floor(r() * maxPieces);
    for (let j = 0; j < n; j++) s += pieces[Math.floor(r() * pieces.length)];
    out.push(s);
  }
  return out;
}

/** Long texts compared without a diff (vitest's diff of two 800 KB texts takes minutes). */
function same(got: string, want: string): void {
  expect(got === want, `${got.length} characters: ${JSON.stringify(got.slice(0, 60))}... want ${want.length}: ${JSON.stringify(want.slice(0, 60))}...`).toBe(true);
}

/**
 * Texts built to nearly match: `make` builds one from pieces it picks (with `pick`), then up to
 * three random edits insert a piece or drop a character.
 */
function mutated(seed: number, count: number, pieces: string[], make: (pick: (xs: string[]) => string) => string): string[] {
  const r = random(seed);
  const pick = (xs: string[]): string => xs[Math.floor(r() * xs.length)]!;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = make(pick);
    for (let edits = Math.floor(r() * 4); edits > 0; edits--) {
      const at = Math.floor(r() * (s.length + 1));
      s = r() < 0.5 ? s.slice(0, at) + pick(pieces) + s.slice(at) : s.slice(0, at) + s.slice(at + 1);
    }
    out.push(s);
  }
  return out;
}

const SPACES = ['', ' ', ' ', '  ', '\n', '\t '];
const KEYS_ = ['max_threads', 'readonly', 'a', 'x_1', 'SETTINGS'];
const VALUES = ['1', '0.5', '-2', '1.2.3', 'true', 'False', "'v'", "'it\\'s'", "''", "'a, b = 1'", "' SETTINGS a=1'", 'c=c', 'x'];
/** A settings clause, well formed or nearly. */
function clauseOf(pick: (xs: string[]) => string): string {
  let s = `${pick([' ', ' ', '\n', '  '])}${pick(['SETTINGS', 'SETTINGS', 'settings', 'Settings'])}${pick([' ', ' ', '\n', '  '])}`;
  const n = Number(pick(['1', '1', '2', '3']));
  for (let i = 0; i < n; i++) {
    if (i) s += `${pick(SPACES)}${pick([',', ',', ''])}${pick(SPACES)}`;
    s += `${pick(KEYS_)}${pick(SPACES)}=${pick(SPACES)}${pick(VALUES)}`;
  }
  return s + pick(SPACES);
}

const PIECES = [
  ' ', ' ', '  ', '\t', '\n', '\u00a0', 'SETTINGS', 'SETTINGS', 'settings', 'Settings', ' SETTINGS ', 'max_threads', 'readonly', 'a', 'b1', '_x',
  '=', '=', ' = ', ',', ', ', ' ,', "'", "'v'", "'it\\'s'", '\\', '\\\n', '1', '0.5', '-2', '1.2.3', 'true', 'FALSE', '(', ')', 'x(', 'é', '.',
];

describe('splitUserSettings', () => {
  it('answers as the old regex did', () => {
    for (const tail of texts(1, PIECES, 20_000, 14)) {
      const sql = `SELECT 1${tail}`;
      const m = OLD_TRAILING.exec(sql);
      const got = splitUserSettings(sql);
      if (!m) expect(got, JSON.stringify(sql)).toEqual({ sql, settings: {} });
      else expect(got.sql, JSON.stringify(sql)).toBe(sql.slice(0, m.index));
    }
    const near = mutated(5, 20_000, PIECES, (pick) => `SELECT ${pick(["'x'", '1', 'a', "' SETTINGS a = 1'"])}${pick(['', clauseOf(pick)])}${clauseOf(pick)}${pick(['', '', ' ', ' x'])}`);
    let matched = 0;
    for (const sql of near) {
      const m = OLD_TRAILING.exec(sql);
      const got = splitUserSettings(sql);
      if (!m) expect(got, JSON.stringify(sql)).toEqual({ sql, settings: {} });
      else {
        matched++;
        expect(got.sql, JSON.stringify(sql)).toBe(sql.slice(0, m.index));
      }
    }
    // (Enough of them are settings clauses for the comparison to mean something.)
    expect(matched).toBeGreaterThan(2_000);
    expect(splitUserSettings("SELECT 1 \n SETTINGS max_threads = 2, join_algorithm='hash' , x = true  ")).toEqual({
      sql: 'SELECT 1', settings: { max_threads: 2, join_algorithm: 'hash', x: 1 },
    });
  });

  it('reads long runs of spaces in linear time', () => {
    // The old regex: 100,000 spaces, about 20 s; 200,000 (a /v0/sql body), 34 s.
    const spaces = ' '.repeat(200_000);
    const t0 = performance.now();
    const plain = splitUserSettings(`SELECT 1${spaces}+ 1`);
    same(plain.sql, `SELECT 1${spaces}+ 1`);
    expect(plain.settings).toEqual({});
    const spaced = splitUserSettings(`SELECT '${spaces}' SETTINGS${spaces}max_threads${spaces}=${spaces}1${spaces}`);
    same(spaced.sql, `SELECT '${spaces}'`);
    expect(spaced.settings).toEqual({ max_threads: 1 });
    expect(splitUserSettings(`SELECT 1 SETTINGS a = 1${spaces},${spaces}x`).settings).toEqual({});
    expect(splitUserSettings(`SELECT 1${' SETTINGS a=1'.repeat(20_000)} x`).settings).toEqual({});
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('withoutSettingsClause', () => {
  const old = (text: string, keys: readonly string[]): string => {
    const known = new Set(keys);
    return text.replace(OLD_CLAUSE, (clause) => {
      const body = clause.replace(/^\s*SETTINGS\s+/, '');
      for (const m of body.matchAll(new RegExp(ASSIGN, 'g'))) if (!known.has(m[1]!)) return clause;
      return '';
    });
  };
  const KEYS = ['max_threads', 'readonly', 'a'];

  it('removes what the old regex removed', () => {
    for (const text of texts(2, [...PIECES, 'xSETTINGS', '`'], 20_000, 14)) {
      // Texts with a syntax error's head take another path (onlySettings, below).
      expect(withoutSettingsClause(`in scope SELECT 1${text}`, KEYS), JSON.stringify(text)).toBe(old(`in scope SELECT 1${text}`, KEYS));
      expect(withoutSettingsClause(text, KEYS), JSON.stringify(text)).toBe(old(text, KEYS));
    }
    let changed = 0;
    for (const text of mutated(6, 20_000, PIECES, (pick) => `in scope SELECT ${pick(['1', "'x'", 'b'])}${clauseOf(pick)}${pick(['', clauseOf(pick)])}${pick(['', ' x', '. Expected'])}`)) {
      const want = old(text, KEYS);
      if (want !== text) changed++;
      expect(withoutSettingsClause(text, KEYS), JSON.stringify(text)).toBe(want);
    }
    expect(changed).toBeGreaterThan(2_000);
  });

  it('reads long runs of spaces in linear time', () => {
    // The old regex: 40,000 spaces quoted from a query, 1.4 s; 200,000, about 35 s.
    const spaces = ' '.repeat(200_000);
    const t0 = performance.now();
    same(withoutSettingsClause(`in scope SELECT nope, 'x${spaces}y' SETTINGS readonly = 1`, KEYS), `in scope SELECT nope, 'x${spaces}y'`);
    same(withoutSettingsClause(`x SETTINGS${spaces}readonly${spaces}=${spaces}1${spaces}, a = 2 y`, KEYS), 'x y');
    // A key not sent with the query: the clause is the user's own, kept.
    const own = `x SETTINGS${spaces}readonly${spaces}=${spaces}1${spaces}, y = 2`;
    same(withoutSettingsClause(own, KEYS), own);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('a syntax error quoting only the appended settings', () => {
  it('onlySettings answers as the old regex did', () => {
    const pieces = ['SETTINGS', 'SETTINGS ', ' ', '\n', 'a', 'max_threads', '=', ' = ', ',', ', ', "'", "'v'", "'\\'", '\\', '\\\n', '1', '30', '=c', 'c=', '(', ')', '.', 'é'];
    const near = mutated(8, 20_000, pieces, (pick) => `${pick(['', '= 30,', '=', 'b=c'])}${clauseOf(pick).trim()}`);
    let yes = 0;
    for (const text of [...texts(3, pieces, 30_000, 12), ...near]) {
      const want = OLD_TAIL.test(text);
      if (want) yes++;
      expect(onlySettings(text), JSON.stringify(text)).toBe(want);
    }
    expect(yes).toBeGreaterThan(5_000);
    for (const text of ['SETTINGS max_execution_time = 30, max_threads = 1, readonly = 1', '= 30, readonly = 1', 'max_threads = 1 readonly = 1', 'SETTINGS', '', 'SETTINGS = 1']) {
      expect(onlySettings(text), text).toBe(OLD_TAIL.test(text));
    }
  });

  it('syntaxTail finds what the old regex found', () => {
    const pieces = ['Syntax error: failed at position ', 'Syntax error: failed at position 12 (', '12', ' (', '(b)', ')', ': ', '. Expected ', '. Expected one of: x', 'b=c', ' ', 'x', '.'];
    const near = mutated(7, 20_000, pieces, (pick) => `${pick(['', 'Code: 62. ', '(x): '])}Syntax error: failed at position ${pick(['12', '8', ''])} (${pick(['b', 'SETTINGS', '', ')'])}): ${pick(['b=c', ' SETTINGS a = 1', '', '. Expected '])}. Expected ${pick(['one of: x', ''])}`);
    let found = 0;
    for (const text of [...texts(4, pieces, 30_000, 10), ...near]) {
      const m = OLD_SYNTAX_TAIL.exec(text);
      if (m) found++;
      expect(syntaxTail(text), JSON.stringify(text)).toEqual(m ? { index: m.index, rest: m[1] } : undefined);
    }
    expect(found).toBeGreaterThan(2_000);
  });

  it('is read in linear time', () => {
    const keys = ['max_execution_time', 'max_threads', 'readonly'];
    const clause = ' SETTINGS max_execution_time = 30, max_threads = 1, readonly = 1';
    const t0 = performance.now();
    // `SELECT 1 a b=c=c=...`: the old regex tried every way of cutting it, 2^n (40: 37 s).
    const many = `Code: 62. DB::Exception: Syntax error: failed at position 12 (b): b${'=c'.repeat(40)}${clause}. Expected one of: token, Comma`;
    // (The clause's last value takes the message's period with it, as it always did.)
    expect(withoutSettingsClause(many, keys)).toBe(many.replace(`${clause}.`, ''));
    expect(onlySettings(`b${'=c'.repeat(100_000)}${clause}`)).toBe(false);
    expect(onlySettings(`a=1${' '.repeat(200_000)}(`)).toBe(false);
    // Heads of a syntax error quoted from a query, none of them whole (the old regex: 5,000, 1.5 s; 10,000, 5.8 s).
    expect(syntaxTail('Syntax error: failed at position 1 ('.repeat(20_000))).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(5_000);
    // The unfinished query still reads as one.
    expect(withoutSettingsClause(`Code: 62. DB::Exception: Syntax error: failed at position 8 (SETTINGS):${clause}. Expected one of: x`, keys))
      .toBe('Code: 62. DB::Exception: Syntax error: the query ends before it is complete; finish the expression or clause it ends with.');
  });
});

describe('withoutQuotedQuery (engine errors of queries over pipes)', () => {
  it('cuts the quoted compiled query in every known shape, keeping what the error is about, the hint and the code', () => {
    const secret = "(SELECT org FROM ws_default_0123abcd.t_1 WHERE org != 'acme')";
    const cases: Array<[string, string]> = [
      [`Code: 43. DB::Exception: Illegal types String and String of arguments of function plus: In scope SELECT org + 'a' FROM ${secret} AS _. (ILLEGAL_TYPE_OF_ARGUMENT)`,
        'Code: 43. DB::Exception: Illegal types String and String of arguments of function plus. (ILLEGAL_TYPE_OF_ARGUMENT)'],
      [`Code: 47. DB::Exception: Unknown expression identifier \`zz\` in scope SELECT zz FROM ${secret} AS _. Maybe you meant: ['org']. (UNKNOWN_IDENTIFIER)`,
        "Code: 47. DB::Exception: Unknown expression identifier `zz`. Maybe you meant: ['org']. (UNKNOWN_IDENTIFIER)"],
      // A literal that looks like the hint does not end the quote early.
      [`Code: 43. DB::Exception: Illegal types: In scope SELECT '. Maybe you meant', org + 'a' FROM ${secret} AS _. (ILLEGAL_TYPE_OF_ARGUMENT)`,
        'Code: 43. DB::Exception: Illegal types. (ILLEGAL_TYPE_OF_ARGUMENT)'],
      [`Code: 215. DB::Exception: Column 'n' is not under aggregate function. In query SELECT n FROM ${secret} AS _ GROUP BY org. (NOT_AN_AGGREGATE)`,
        "Code: 215. DB::Exception: Column 'n' is not under aggregate function. (NOT_AN_AGGREGATE)"],
      [`Code: 62. DB::Exception: Syntax error: failed at position 12 (FROM) (line 1, col 12): FROM ${secret} AS _. Expected one of: expression. (SYNTAX_ERROR)`,
        'Code: 62. DB::Exception: Syntax error: failed at position 12 (FROM) (line 1, col 12). Expected one of: expression. (SYNTAX_ERROR)'],
      // A literal shaped like the hint's list does not stretch the kept tail back into the query.
      [`Code: 47. DB::Exception: Unknown identifier \`nope\` in scope SELECT nope, '. Maybe you meant: [' FROM ${secret} AS _ WHERE 1 IN [1]. (UNKNOWN_IDENTIFIER)`,
        'Code: 47. DB::Exception: Unknown identifier `nope`. (UNKNOWN_IDENTIFIER)'],
      // A one-line query's syntax error has no line and column.
      [`Code: 62. DB::Exception: Syntax error: failed at position 13 (x): x FROM ${secret} AS _. Expected one of: token. (SYNTAX_ERROR)`,
        'Code: 62. DB::Exception: Syntax error: failed at position 13 (x). Expected one of: token. (SYNTAX_ERROR)'],
      [`Code: 62. DB::Exception: Syntax error: failed at position 5 (')'): ) FROM ${secret} AS _. (SYNTAX_ERROR)`,
        "Code: 62. DB::Exception: Syntax error: failed at position 5 (')'). (SYNTAX_ERROR)"],
      [`Code: 62. DB::Exception: Syntax error: failed at position 15 ()) (line 2, col 15): ) FROM ${secret} AS _. (SYNTAX_ERROR)`,
        'Code: 62. DB::Exception: Syntax error: failed at position 15 ()) (line 2, col 15). (SYNTAX_ERROR)'],
      // An old server's processing-query quote, whose literals hold `',` (a row filter's IN list).
      [`Code: 47. DB::Exception: Missing columns: 'x' while processing query: 'SELECT x FROM (SELECT * FROM ws_a_0123abcd.t WHERE (org IN ('acme', 'beta'))) AS t', required columns: 'x'. (UNKNOWN_IDENTIFIER)`,
        "Code: 47. DB::Exception: Missing columns: 'x', required columns: 'x'. (UNKNOWN_IDENTIFIER)"],
    ];
    for (const [message, cut] of cases) {
      expect(withoutQuotedQuery(message)).toBe(cut);
      expect(withoutQuotedQuery(message)).not.toContain('acme');
    }
  });

  it('is read in linear time', () => {
    const t0 = performance.now();
    // A name of 250,000 spaces quoted in the message: the first version of the cut read the run once per space.
    const spaces = ' '.repeat(250_000);
    const m = `Code: 47. DB::Exception: Unknown expression identifier \`a${spaces}b\` in scope SELECT \`a${spaces}b\` FROM (SELECT 1) AS _. (UNKNOWN_IDENTIFIER)`;
    expect(withoutQuotedQuery(m)).toBe(`Code: 47. DB::Exception: Unknown expression identifier \`a${spaces}b\`. (UNKNOWN_IDENTIFIER)`);
    expect(withoutQuotedQuery(`x:${spaces}y${spaces}(line 1, col 2): ${spaces}`)).toContain('(line 1, col 2)');
    // A query repeating the processing marker (the first pattern read the rest of the text at each one).
    const marks = " while processing query: '' x".repeat(10_000);
    expect(withoutQuotedQuery(`Code: 47. DB::Exception: Missing columns: 'a' while processing query: 'SELECT a FROM t WHERE s = '${marks}'', required columns: 'a'. (UNKNOWN_IDENTIFIER)`))
      .toBe("Code: 47. DB::Exception: Missing columns: 'a', required columns: 'a'. (UNKNOWN_IDENTIFIER)");
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('a failed function\'s expression dump', () => {
  it('goes whole to the code tail, also when a backquoted name in it fakes its end', () => {
    expect(withoutQuotedQuery("Code: 153. DB::Exception: Division by zero: while executing 'FUNCTION and(notEquals(__table2.name, 'hidden_value'_String) :: 4, equals(intDiv(__table1.h, 0), 1_UInt8) :: 2) -> and(…) UInt8 : 3'. (ILLEGAL_DIVISION)"))
      .toBe('Code: 153. DB::Exception: Division by zero. (ILLEGAL_DIVISION)');
    expect(withoutQuotedQuery("Code: 6. DB::Exception: Cannot parse string 'SECRETa' as Int32: while executing 'FUNCTION equals(toInt32(`z : 1'.`) :: 1, 1) -> and(notEquals(org, 'hidden_value'), equals(toInt32(concat('SECRET_LIT', org)), 1) UInt8 : 3': While executing MergeTreeSelect(pool: ReadPoolInOrder). (CANNOT_PARSE_TEXT)"))
      .toBe("Code: 6. DB::Exception: Cannot parse string 'SECRETa' as Int32. (CANNOT_PARSE_TEXT)");
  });
});
