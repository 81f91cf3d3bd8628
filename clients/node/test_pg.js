// node-postgres (pg) and pg-cursor against a live Laminar server.
//
// Run: npm ci && LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 node test_pg.js
//      node test_pg.js tls-login   # only: log in over TLS with a password
// LAMINAR_USER, LAMINAR_PASSWORD are read; LAMINAR_SSLROOTCERT (a CA certificate, PEM) makes
// every connection use TLS and verify the server's certificate and name.
'use strict';

// DATE and TIMESTAMP values become JS Dates in the process's time zone: fix it.
process.env.TZ = 'UTC';

const fs = require('fs');
const tls = require('tls');
const { Client } = require('pg');
const Cursor = require('pg-cursor');

const config = {
  host: process.env.LAMINAR_HOST || '127.0.0.1',
  port: Number(process.env.LAMINAR_PORT || 6875),
  user: process.env.LAMINAR_USER || 'laminar',
  password: process.env.LAMINAR_PASSWORD || undefined,
  database: 'laminar',
  connectionTimeoutMillis: 10000,
  ssl: process.env.LAMINAR_SSLROOTCERT ? { ca: fs.readFileSync(process.env.LAMINAR_SSLROOTCERT, 'utf8') } : false,
};

const TICKS = 'node_ticks';
const ENDLESS = 'node_endless';

class CheckFailed extends Error {}

function check(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

// Deep equality for what pg returns: numbers (NaN equals NaN), strings, booleans, null,
// Dates (by instant), Buffers (by bytes), arrays and plain objects.
function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) ? Number.isNaN(b) : a === b;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

function show(v) {
  if (v instanceof Date) return `Date(${v.toISOString()})`;
  if (Buffer.isBuffer(v)) return `Buffer(${v.toString('hex')})`;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).map((k) => `${k}: ${show(v[k])}`).join(', ')}}`;
  return JSON.stringify(v);
}

function equal(actual, expected, what) {
  if (!same(actual, expected)) throw new CheckFailed(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

async function sqlstateOf(promise, expected, what) {
  try {
    await promise;
  } catch (e) {
    equal(e.code, expected, `${what}: SQLSTATE (${e.message})`);
    return e;
  }
  throw new CheckFailed(`${what}: expected an error with SQLSTATE ${expected}, got none`);
}

const d = (iso) => new Date(iso);
const buf = (hex) => Buffer.from(hex, 'hex');

// [SQL expression, value in text format, type OID]. pg returns int8 and numeric as strings
// (they may not fit a JS number), DATE/TIMESTAMP as Dates, bytea as Buffer, INTERVAL as an
// object of its parts. TIME is returned as the server's text: checked with a pattern.
const TYPES = [
  ['1::int2', 1, 21],
  ['(-32768)::int2', -32768, 21],
  ['2147483647::int4', 2147483647, 23],
  ['(-9223372036854775807 - 1)::int8', '-9223372036854775808', 20],
  ['1.5::float4', 1.5, 700],
  ['2.5::float8', 2.5, 701],
  ['1e-7::float8', 1e-7, 701],
  ["'NaN'::float8", NaN, 701],
  ["'héllo, 日本'::text", 'héllo, 日本', 25],
  ["''::text", '', 25],
  ['true', true, 16],
  ['false', false, 16],
  ['NULL::int4', null, 23],
  ['NULL::text', null, 25],
  ['NULL', null, 25], // untyped: text
  ["DATE '2024-01-02'", d('2024-01-02T00:00:00Z'), 1082],
  ["DATE '1900-03-04'", d('1900-03-04T00:00:00Z'), 1082],
  ["TIMESTAMP '2024-01-02 03:04:05.123456'", d('2024-01-02T03:04:05.123Z'), 1114],
  ["TIMESTAMP '1969-07-20 20:17:40'", d('1969-07-20T20:17:40Z'), 1114],
  ["'2024-01-02 03:04:05'::timestamptz", d('2024-01-02T03:04:05Z'), 1184],
  ["TIMESTAMPTZ '2024-01-02 03:04:05.123+02'", d('2024-01-02T01:04:05.123Z'), 1184],
  ["INTERVAL '1 day 2 hours 3 seconds'", { days: 1, hours: 2, seconds: 3 }, 1186],
  ["INTERVAL '-1 day'", { days: -1 }, 1186],
  ['12.34::numeric(10,2)', '12.34', 1700],
  ['(-1000000.01)::numeric(12,2)', '-1000000.01', 1700],
  ['0.0001::numeric(10,4)', '0.0001', 1700],
  ["X'0102ff'", buf('0102ff'), 17],
  ['ARRAY[1::int4, 2::int4]', [1, 2], 1007],
  ['ARRAY[1::int8, NULL]', ['1', null], 1016],
  ['ARRAY[1.5::float8, 2.5]', [1.5, 2.5], 1022],
  ['ARRAY[true, false]', [true, false], 1000],
  ["ARRAY['a\"b', 'c,d', '', NULL, 'NULL']", ['a"b', 'c,d', '', null, 'NULL'], 1009],
  ["ARRAY[DATE '2024-01-02']", [d('2024-01-02T00:00:00Z')], 1182],
  ["ARRAY[TIMESTAMP '2024-01-02 03:04:05']", [d('2024-01-02T03:04:05Z')], 1115],
  ['ARRAY[12.34::numeric(10,2)]', [12.34], 1231], // pg parses numeric[] elements as numbers
  ["ARRAY[X'01']", [buf('01')], 1001],
  ["arrow_cast(65535, 'UInt16')", 65535, 23],
  ["arrow_cast(4294967295, 'UInt32')", '4294967295', 20],
  ["arrow_cast(18446744073709551615, 'UInt64')", '18446744073709551615', 1700],
  ['1::tinyint', 1, 21],
  ['(-128)::tinyint', -128, 21],
  ["arrow_cast(255, 'UInt8')", 255, 21],
];

// TIME comes back as text; PostgreSQL omits trailing fractional zeros, so allow either.
const TIME_TYPES = [
  ["TIME '03:04:05.5'", /^03:04:05\.50*$/],
  ["TIME '23:59:59.999999'", /^23:59:59\.999999$/],
];

// Binary results (Bind with result format 1). pg 8.23 turns every DataRow field into a UTF-8
// string before its binary parser sees it, so bytes >= 0x80 are replaced (negative numbers,
// floats such as 1.5, dates, timestamps); pg-types also lacks binary decoders for date, time,
// interval and bytea. Only values whose binary encoding survives that are checked here;
// psycopg, asyncpg and pgJDBC check every type in binary.
const BINARY_TYPES = [
  ['1::int2', 1, 21],
  ['5::tinyint', 5, 21], // as int2: 2 bytes
  ["arrow_cast(7, 'UInt8')", 7, 21],
  ['2::int4', 2, 23],
  ['3::int8', '3', 20],
  ['2.5::float8', 2.5, 701],
  ["'héllo, 日本'::text", 'héllo, 日本', 25],
  ['true', true, 16],
  ['false', false, 16],
  ['NULL::int4', null, 23],
  ['12.34::numeric(10,2)', 12.34, 1700],
  ['ARRAY[1::int4, 2::int4]', [1, 2], 1007],
  ['ARRAY[1::int8, 2::int8]', [1, 2], 1016],
  ["ARRAY['a\"b', 'c,d', '']", ['a"b', 'c,d', ''], 1009], // a NULL element's length is -1: 0xff bytes
];

let client;

async function connect(settings = {}) {
  const c = new Client({ ...config, ...settings });
  await c.connect();
  return c;
}

async function withClient(settings, use) {
  const c = await connect(settings);
  try {
    return await use(c);
  } finally {
    await c.end();
  }
}

const loginSteps = [
  ['TLS and password login', async () => {
    check(config.ssl, 'LAMINAR_SSLROOTCERT is not set');
    await withClient({}, async (c) => {
      check(c.connection.stream instanceof tls.TLSSocket, 'the connection does not use TLS');
      const r = await c.query('SELECT 1 AS one, current_user AS u');
      equal(r.rows, [{ one: '1', u: config.user }], 'SELECT 1, current_user');
    });
  }],

  ['wrong password refused', async () => {
    const e = await sqlstateOf(connect({ password: `${config.password || ''}-wrong` }), '28P01', 'wrong password');
    // pg sends '*' as the SCRAM user name: the server names the login user all the same.
    check(e.message.toLowerCase().includes(`password authentication failed for user "${config.user}"`),
      `message: ${e.message}`);
  }],
];

const steps = [
  ['connect', async () => {
    client = await connect();
    const { rows } = await client.query('SELECT version() AS v');
    check(rows[0].v.includes('Laminar'), `version() does not mention Laminar: ${rows[0].v}`);
    equal((await client.query('SELECT current_user AS u')).rows, [{ u: config.user }], 'current_user');
    // node-postgres sends application_name only when it is configured; PostgreSQL's default is ''.
    equal((await client.query('SHOW application_name')).rows, [{ application_name: '' }],
      'SHOW application_name (none sent)');
    equal((await client.query("SELECT current_setting('application_name') AS a")).rows, [{ a: '' }],
      "current_setting('application_name') (none sent)");
    await withClient({ application_name: 'laminar node test' }, async (c) => {
      equal((await c.query('SHOW application_name')).rows, [{ application_name: 'laminar node test' }],
        'SHOW application_name');
    });
  }],

  ['create tables', async () => {
    await client.query(`DROP TABLE IF EXISTS ${TICKS}, ${ENDLESS}`);
    const r = await client.query(
      `CREATE TABLE ${TICKS} WITH (connector = 'impulse', event_rate = '1000', message_count = '5')`);
    equal(r.command, 'CREATE', 'command tag');
    await client.query(`CREATE TABLE ${ENDLESS} WITH (connector = 'impulse', event_rate = '50')`);
  }],

  ['simple query', async () => {
    const r = await client.query(`SELECT counter FROM ${TICKS}`);
    equal(r.rows, [{ counter: '0' }, { counter: '1' }, { counter: '2' }, { counter: '3' }, { counter: '4' }], 'rows');
    equal(r.fields.map((f) => [f.name, f.dataTypeID]), [['counter', 20]], 'fields');
    equal([r.command, r.rowCount], ['SELECT', 5], 'command and row count');
    // Several statements in one simple query: one result each.
    const results = await client.query("SELECT 1 AS a; SELECT 'two' AS b");
    equal(results.map((x) => x.rows), [[{ a: '1' }], [{ b: 'two' }]], 'two result sets');
  }],

  ['parameterised queries', async () => {
    let r = await client.query(`SELECT counter FROM ${TICKS} WHERE counter > $1 AND counter < $2`, [1, 4]);
    equal(r.rows, [{ counter: '2' }, { counter: '3' }], 'int parameters');
    r = await client.query(
      `SELECT counter FROM ${TICKS} WHERE counter >= $1 AND $2 AND upper($3) = 'AB' AND $4 < 3.5`,
      [3, true, 'ab', 1.5]);
    equal(r.rows, [{ counter: '3' }, { counter: '4' }], 'int, bool, text, float parameters');
    r = await client.query({ text: 'SELECT upper($1) AS u, $2::date AS d', values: ['héllo', '2024-01-02'], rowMode: 'array' });
    equal(r.rows, [['HÉLLO', d('2024-01-02T00:00:00Z')]], 'text parameters');
    r = await client.query(`SELECT counter FROM ${TICKS} WHERE counter > $1`, [null]);
    equal(r.rows, [], 'NULL parameter');
    // An untyped parameter makes a text column; a cast types it.
    r = await client.query('SELECT $1 AS u, $2::int4 AS n', ['x', '21']);
    equal(r.fields.map((f) => f.dataTypeID), [25, 23], 'column types');
    equal(r.rows, [{ u: 'x', n: 21 }], 'untyped and cast parameters');
  }],

  ['PostgreSQL column names', async () => {
    const sql = `SELECT count(*), counter::text, counter + 1, upper('a'), now() FROM ${TICKS} GROUP BY counter`;
    const expected = ['count', 'counter', '?column?', 'upper', 'now'];
    equal((await client.query(sql)).fields.map((f) => f.name), expected, 'names (simple protocol)');
    equal((await client.query(`${sql} HAVING counter > $1`, [1])).fields.map((f) => f.name), expected,
      'names (extended protocol)');
    const r = await client.query('SELECT now(), 1 + 1');
    equal(r.fields.map((f) => [f.name, f.dataTypeID]), [['now', 1184], ['?column?', 20]], 'now() and 1 + 1');
    check(Math.abs(r.rows[0].now - Date.now()) < 60000, `now() is ${show(r.rows[0].now)}`);
  }],

  ['prepared statement reused', async () => {
    // A named query is parsed once per connection and then only bound and executed.
    const expected = [[0, ['1', '2', '3', '4']], [3, ['4']], [4, []], [2, ['3', '4']], [-1, ['0', '1', '2', '3', '4']]];
    for (const binary of [false, true]) {
      for (const [value, rows] of expected) {
        const r = await client.query({
          name: `counter_above_${binary}`, text: `SELECT counter FROM ${TICKS} WHERE counter > $1`, values: [value], binary,
        });
        equal(r.rows.map((x) => x.counter), rows, `prepared (binary=${binary}) with ${value}`);
      }
    }
  }],

  ['every type, text and binary', async () => {
    for (const [expr, value, oid] of TYPES) {
      const r = await client.query({ text: `SELECT ${expr} AS v`, rowMode: 'array' });
      equal(r.fields[0].dataTypeID, oid, `SELECT ${expr}: type OID`);
      equal(r.rows[0][0], value, `SELECT ${expr}`);
    }
    for (const [expr, pattern] of TIME_TYPES) {
      const r = await client.query({ text: `SELECT ${expr} AS v`, rowMode: 'array' });
      equal(r.fields[0].dataTypeID, 1083, `SELECT ${expr}: type OID`);
      check(pattern.test(r.rows[0][0]), `SELECT ${expr}: got ${r.rows[0][0]}`);
    }
    const wide = TYPES.map(([e], i) => `${e} AS c${i}`).join(', ');
    let r = await client.query({ text: `SELECT ${wide}, $1::int4 AS p`, values: [7], rowMode: 'array' });
    equal(r.rows[0], [...TYPES.map((t) => t[1]), 7], 'one wide row (extended protocol, text)');
    for (const [expr, value, oid] of BINARY_TYPES) {
      // queryMode 'extended' makes pg use Parse/Bind/Execute even without parameters.
      // (Not with rowMode 'array': pg 8.23 hands binary values to the parsers as strings there.)
      r = await client.query({ text: `SELECT ${expr} AS v`, binary: true, queryMode: 'extended' });
      equal(r.fields[0].format, 'binary', `SELECT ${expr}: result format`);
      equal(r.fields[0].dataTypeID, oid, `SELECT ${expr} (binary): type OID`);
      equal(r.rows[0].v, value, `SELECT ${expr} (binary)`);
    }
  }],

  ['NULLs', async () => {
    // (A NULL array element is not checked in binary: see BINARY_TYPES.)
    for (const binary of [false, true]) {
      const r = await client.query({
        text: 'SELECT NULL::int8 AS a, 1::int4 AS b, NULL::text AS c, NULL::date AS d, upper($1) AS f',
        values: [null], binary,
      });
      equal(r.rows[0], { a: null, b: 1, c: null, d: null, f: null }, `NULLs (binary=${binary})`);
    }
    const r = await client.query('SELECT ARRAY[NULL::int4, 1::int4] AS e');
    equal(r.rows[0], { e: [null, 1] }, 'NULL array element');
  }],

  ['errors carry SQLSTATEs', async () => {
    const e = await sqlstateOf(client.query('SELECT * FROM missing_table'), '42P01', 'missing table');
    check(e.message.includes('missing_table'), `message: ${e.message}`);
    await sqlstateOf(client.query('SELEC 1'), '42601', 'syntax error');
    await sqlstateOf(client.query(`SELECT nope FROM ${TICKS} WHERE counter > $1`, [1]), '42703', 'missing column');
    await sqlstateOf(client.query(`SELECT counter FROM ${ENDLESS} ORDER BY counter`), '0A000', 'ORDER BY over an endless stream');
    const r = await client.query('SELECT 1 AS one');
    equal(r.rows, [{ one: '1' }], 'connection after errors');
  }],

  ['cursor streams, close early', async () => {
    // pg-cursor: one portal, read with Execute(max_rows) page by page.
    const started = Date.now();
    const cursor = client.query(new Cursor(`SELECT counter FROM ${ENDLESS} WHERE counter >= $1`, [10], { rowMode: 'array' }));
    equal(await cursor.read(3), [['10'], ['11'], ['12']], 'first page');
    equal(await cursor.read(2), [['13'], ['14']], 'second page');
    await cursor.close();
    check(Date.now() - started < 10000, 'streaming took too long');
    const r = await client.query('SELECT 1 AS one');
    equal(r.rows, [{ one: '1' }], 'connection after closing the cursor');
  }],

  ['cancel a running query', async () => {
    const started = Date.now();
    const running = client.query(`SELECT counter FROM ${ENDLESS}`);
    const active = client.activeQuery;
    // pg's way to cancel: a second Client sends a CancelRequest for the first one's query.
    // Sent every 0.5 s until the query ends (one that arrives before the query runs does nothing).
    const timer = setInterval(() => new Client(config).cancel(client, active), 500);
    try {
      await sqlstateOf(running, '57014', 'cancelled query');
    } finally {
      clearInterval(timer);
    }
    check(Date.now() - started < 10000, 'cancel took too long');
    const r = await client.query('SELECT 1 AS one');
    equal(r.rows, [{ one: '1' }], 'connection after cancel');
  }],

  ['DECLARE / FETCH / CLOSE', async () => {
    await client.query('BEGIN');
    await client.query(`DECLARE c NO SCROLL CURSOR FOR SELECT counter * 10 AS x FROM ${ENDLESS}`);
    equal((await client.query('FETCH 3 FROM c')).rows, [{ x: '0' }, { x: '10' }, { x: '20' }], 'FETCH 3');
    equal((await client.query('FETCH NEXT FROM c')).rows, [{ x: '30' }], 'FETCH NEXT');
    await client.query('CLOSE c');
    await client.query('COMMIT');
    // DECLARE and FETCH over the extended protocol too (Parse/Bind/Execute), text and binary.
    const extended = { queryMode: 'extended' };
    await client.query('BEGIN');
    await client.query({ text: `DECLARE e CURSOR FOR SELECT counter * 10 AS x FROM ${ENDLESS}`, ...extended });
    let r = await client.query({ text: 'FETCH 2 FROM e', ...extended });
    equal([r.command, r.rows, r.fields.map((f) => [f.name, f.dataTypeID, f.format])],
      ['FETCH', [{ x: '0' }, { x: '10' }], [['x', 20, 'text']]], 'FETCH 2 (extended)');
    r = await client.query({ text: 'FETCH 2 FROM e', binary: true, ...extended });
    equal([r.rows, r.fields.map((f) => f.format)], [[{ x: '20' }, { x: '30' }], ['binary']],
      'FETCH 2 (extended, binary)');
    await client.query('COMMIT'); // a cursor without HOLD ends with its transaction
    // FETCH from a cursor that does not exist: 34000, as in PostgreSQL.
    const e = await sqlstateOf(client.query({ text: 'FETCH 1 FROM e', ...extended }), '34000', 'FETCH after COMMIT');
    check(e.message.includes('cursor "e" does not exist'), `message: ${e.message}`);
    await sqlstateOf(client.query('FETCH 1 FROM never_declared'), '34000', 'FETCH, no such cursor');
    equal((await client.query('SELECT 1 AS one')).rows, [{ one: '1' }], 'connection after the cursors');
  }],

  ['drop tables', async () => {
    await client.query(`DROP TABLE ${TICKS}, ${ENDLESS}`);
    await client.end();
  }],
];

(async () => {
  const run = process.argv[2] === 'tls-login' ? loginSteps : steps;
  for (const [name, step] of run) {
    const started = Date.now();
    try {
      await step();
    } catch (e) {
      console.error(`node-pg: FAIL in '${name}': ${e instanceof CheckFailed ? e.message : e.stack}`);
      process.exit(1);
    }
    console.log(`node-pg: ok   ${name} (${((Date.now() - started) / 1000).toFixed(2)}s)`);
  }
  console.log(`node-pg: ${run.length} passed, 0 failed`);
})();
