"""asyncpg against a live Laminar server.

asyncpg uses the extended protocol for every query with arguments, and binary format for
results and parameters.

Run: LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 python test_asyncpg.py
     python test_asyncpg.py tls-login   # only: log in over TLS with a password (see support.py)
"""

import asyncio
import datetime as dt
import ssl
import struct
import sys
import time
from decimal import Decimal

import asyncpg

from support import (DATABASE, HOST, PASSWORD, PORT, SSLROOTCERT, TYPES, USER, check, equal,
                     run_steps, sqlstate_of, wrong_password)

TICKS = "asyncpg_ticks"
ENDLESS = "asyncpg_endless"

# Arrays other than text[] (and interval, time) are types asyncpg learns with its own
# pg_type query, run on first use: every one of them is read here.
ASYNCPG_TYPES = TYPES + [
    ("ARRAY[INTERVAL '1 day', NULL]", [dt.timedelta(days=1), None], 1187),
    ("ARRAY[TIME '03:04:05']", [dt.time(3, 4, 5)], 1183),
    ("ARRAY['2024-01-02 03:04:05+00'::timestamptz]", [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)], 1185),
    ("ARRAY[1::int2]", [1], 1005),
    ("ARRAY[1.5::float4]", [1.5], 1021),
]

loop = asyncio.new_event_loop()
conn = None


def run(coro):
    return loop.run_until_complete(coro)


def rows(records):
    return [tuple(r) for r in records]


def tls():
    # With a CA, asyncpg requires TLS and verifies the certificate and the host name.
    return ssl.create_default_context(cafile=SSLROOTCERT) if SSLROOTCERT else False


async def connect(**settings):
    settings = {"password": PASSWORD, **settings}
    return await asyncpg.connect(host=HOST, port=PORT, user=USER, database=DATABASE, timeout=10,
                                 ssl=tls(), **settings)


async def cancel_request(c):
    """Send a CancelRequest for `c`'s running query, as libpq's PQcancel does."""
    _, writer = await asyncio.open_connection(HOST, PORT)
    writer.write(struct.pack("!iiii", 16, 80877102, c._protocol.backend_pid,
                             c._protocol.backend_secret))
    await writer.drain()
    writer.close()


def step_connect():
    global conn
    conn = run(connect())
    version = run(conn.fetchval("SELECT version()"))
    check("Laminar" in version, f"version() does not mention Laminar: {version!r}")
    equal(run(conn.fetchval("SELECT current_user")), USER, "current_user")
    # asyncpg sends no application_name unless it is set: PostgreSQL's default is ''.
    equal(run(conn.fetchval("SHOW application_name")), "", "SHOW application_name (none sent)")

    async def application_name():
        c = await connect(server_settings={"application_name": "laminar asyncpg test"})
        try:
            return await c.fetchval("SHOW application_name")
        finally:
            await c.close()
    equal(run(application_name()), "laminar asyncpg test", "SHOW application_name")


def step_setup():
    run(conn.execute(f"DROP TABLE IF EXISTS {TICKS}, {ENDLESS}"))
    status = run(conn.execute(f"CREATE TABLE {TICKS} WITH (connector = 'impulse', "
                              "event_rate = '1000', message_count = '5')"))
    equal(status, "CREATE TABLE", "command tag")
    run(conn.execute(f"CREATE TABLE {ENDLESS} WITH (connector = 'impulse', event_rate = '50')"))


def step_simple_query():
    equal(rows(run(conn.fetch(f"SELECT counter FROM {TICKS}"))), [(0,), (1,), (2,), (3,), (4,)],
          "rows")
    record = run(conn.fetchrow(f"SELECT counter, timestamp FROM {TICKS} LIMIT 1"))
    equal(list(record.keys()), ["counter", "timestamp"], "column names")
    equal(record["counter"], 0, "counter")


def step_parameters():
    equal(rows(run(conn.fetch(f"SELECT counter FROM {TICKS} WHERE counter > $1 AND counter < $2",
                              1, 4))), [(2,), (3,)], "int parameters")
    equal(rows(run(conn.fetch(
        f"SELECT counter FROM {TICKS} WHERE counter >= $1 AND $2 = true AND upper($3) = 'AB' "
        "AND counter < $4 * 2.0", 3, True, "ab", 2.25))), [(3,), (4,)],
        "int, bool, text, float parameters")
    equal(run(conn.fetchval("SELECT upper($1)", "héllo")), "HÉLLO", "text parameter")
    # A cast gives the parameter its type, so asyncpg encodes the value as that type.
    equal(run(conn.fetchval("SELECT $1::int4 + 1", 41)), 42, "$1::int4 parameter")
    equal(run(conn.fetchval("SELECT $1::int2 * 2", 21)), 42, "$1::int2 parameter")
    equal(run(conn.fetchval("SELECT $1::float8 / 2", 5.0)), 2.5, "$1::float8 parameter")
    equal(run(conn.fetchval("SELECT NOT $1::bool", False)), True, "$1::bool parameter")
    stmt = run(conn.prepare("SELECT $1::int4 + 1 AS a, $2::date AS b, $3::timestamptz AS c, "
                            "$4::numeric(10,2) AS d, $5 AS e"))
    equal([t.name for t in stmt.get_parameters()], ["int4", "date", "timestamptz", "numeric",
                                                    "text"], "parameter types from casts")
    equal([a.type.name for a in stmt.get_attributes()][1:],
          ["date", "timestamptz", "numeric", "text"], "column types")
    # `WHERE $1` and `LIMIT $1` alone are described as text today (docs/clients.md); cast them.
    equal(rows(run(conn.fetch(f"SELECT counter FROM {TICKS} WHERE $1::bool LIMIT $2::int8",
                              True, 2))), [(0,), (1,)], "WHERE $1::bool LIMIT $2::int8")
    # Dates, times, bytea and numeric in binary format (asyncpg sends every parameter binary).
    aware = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    record = run(conn.fetchrow(
        "SELECT $1::date AS d, $2::timestamp AS t, $3::bytea AS b, $4::timestamptz AS tz, "
        "$5::numeric AS n, $6::time AS tm, $7::numeric(10,2) AS n2",
        dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), b"\x01\x02", aware,
        Decimal("12.5"), dt.time(3, 4, 5, 500000), Decimal("-1234.56")))
    equal((record["d"], record["t"], record["b"], record["tm"]),
          (dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), b"\x01\x02",
           dt.time(3, 4, 5, 500000)), "date, timestamp, bytea, time parameters")
    equal(record["tz"], aware, "timestamptz parameter (the same instant)")
    equal(record["tz"].utcoffset(), dt.timedelta(0), "timestamptz comes back in UTC")
    # Unconstrained numeric comes back with a larger scale (12.5000000000): equal value.
    check(isinstance(record["n"], Decimal) and record["n"] == Decimal("12.5"),
          f"numeric parameter: got {record['n']!r}")
    equal(record["n2"], Decimal("-1234.56"), "numeric(10,2) parameter")
    # A prepared statement with a date and a timestamp parameter, reused with new values.
    stmt = run(conn.prepare(f"SELECT counter FROM {TICKS} WHERE timestamp > $1::timestamp "
                            "AND $2::date < DATE '2024-06-01' AND $3::bytea = X'ff'"))
    for day, blob, expected in [(dt.date(2024, 1, 1), b"\xff", [0, 1, 2, 3, 4]),
                                (dt.date(2024, 7, 1), b"\xff", []),
                                (dt.date(2024, 1, 1), b"\xfe", [])]:
        equal([r[0] for r in run(stmt.fetch(dt.datetime(2000, 1, 1), day, blob))], expected,
              f"prepared with date {day}, bytes {blob!r}")
    equal(rows(run(conn.fetch(f"SELECT counter FROM {TICKS} WHERE counter > $1", None))), [],
          "NULL parameter")
    # Intervals and arrays go binary too.
    equal(run(conn.fetchval("SELECT $1::interval + INTERVAL '1 day'",
                            dt.timedelta(days=1, seconds=1.5))),
          dt.timedelta(days=2, seconds=1.5), "interval parameter")
    equal(rows(run(conn.fetch(f"SELECT counter FROM {TICKS} WHERE counter = ANY($1::int8[])",
                              [1, 3, None]))), [(1,), (3,)], "int8[] parameter")
    equal(run(conn.fetchval("SELECT ($1::int4[])[2]", [1, 2, 3])), 2, "int4[] parameter")
    equal(run(conn.fetchval("SELECT $1::text[]", ["a", None])), ["a", None], "text[] parameter")


def step_prepared_statement():
    stmt = run(conn.prepare(f"SELECT counter FROM {TICKS} WHERE counter > $1"))
    equal([t.name for t in stmt.get_parameters()], ["int8"], "inferred parameter type")
    equal([(a.name, a.type.name) for a in stmt.get_attributes()], [("counter", "int8")],
          "result columns")
    for value, expected in {0: [1, 2, 3, 4], 3: [4], 4: [], 2: [3, 4], -1: [0, 1, 2, 3, 4]}.items():
        equal([r[0] for r in run(stmt.fetch(value))], expected, f"prepared with {value}")
    equal(run(stmt.fetchval(3)), 4, "fetchval")


def step_types():
    for expr, value, oid in ASYNCPG_TYPES:
        stmt = run(conn.prepare(f"SELECT {expr} AS v"))
        equal(stmt.get_attributes()[0].type.oid, oid, f"SELECT {expr}: type OID")
        equal(run(stmt.fetchval()), value, f"SELECT {expr}")
    exprs = ", ".join(f"{e} AS c{i}" for i, (e, _, _) in enumerate(ASYNCPG_TYPES))
    equal(list(run(conn.fetchrow(f"SELECT {exprs}, upper($1) AS p", "x"))),
          [v for _, v, _ in ASYNCPG_TYPES] + ["X"], "one wide row")


def step_column_names():
    stmt = run(conn.prepare(f"SELECT count(*), counter::text, counter + 1, upper('a'), now() "
                            f"FROM {TICKS} GROUP BY counter"))
    equal([a.name for a in stmt.get_attributes()], ["count", "counter", "?column?", "upper", "now"],
          "names of unaliased columns")
    record = run(conn.fetchrow("SELECT now(), NULL"))
    equal(list(record.keys()), ["now", "?column?"], "record keys")
    equal(record["now"].utcoffset(), dt.timedelta(0), "now() is UTC")
    equal(record["?column?"], None, "SELECT NULL")
    # Names may repeat, as in PostgreSQL; a cast constant is named after its type.
    stmt = run(conn.prepare(f"SELECT 1, 2, counter, counter::text, 'x'::text, 7::int4, true, "
                            f"ARRAY[1], current_user, session_user FROM {TICKS} LIMIT 1"))
    equal([a.name for a in stmt.get_attributes()],
          ["?column?", "?column?", "counter", "counter", "text", "int4", "bool", "array",
           "current_user", "session_user"], "repeated and figured names")
    equal(list(run(stmt.fetchrow())), [1, 2, 0, "0", "x", 7, True, [1], USER, USER],
          "a row with repeated names")


def step_pool():
    # A pool resets each connection it gets back (RESET ALL, UNLISTEN *, CLOSE ALL,
    # pg_advisory_unlock_all() ...), then hands it out again.
    async def cycle():
        async with asyncpg.create_pool(host=HOST, port=PORT, user=USER, password=PASSWORD,
                                       database=DATABASE, ssl=tls(), min_size=1, max_size=2,
                                       timeout=10) as pool:
            pids = set()
            for i in range(4):
                async with pool.acquire() as c:
                    pids.add(c.get_server_pid())
                    equal(await c.fetchval("SELECT $1::int4 + 1", i), i + 1, f"acquire {i + 1}")
                    await c.execute("SET batch_size = 7")
                async with pool.acquire() as c:
                    equal(await c.fetchval("SHOW batch_size"), "1024",
                          "a setting after the connection went back to the pool")
            equal(len(pids), 1, "the pool reused one connection")
            a, b = await asyncio.gather(pool.fetchval("SELECT 1"), pool.fetchval("SELECT 2"))
            equal((a, b), (1, 2), "two connections at once")
    run(cycle())


def step_nulls():
    equal(tuple(run(conn.fetchrow("SELECT NULL::int8 AS a, 1::int8 AS b, NULL::text AS c, "
                                  "NULL::date AS d, upper($1) AS e", None))),
          (None, 1, None, None, None), "NULLs")


def step_errors():
    e = sqlstate_of(lambda: run(conn.fetch("SELECT * FROM missing_table")), "42P01",
                    "missing table")
    check(isinstance(e, asyncpg.UndefinedTableError), f"exception class {type(e).__name__}")
    e = sqlstate_of(lambda: run(conn.execute("SELEC 1")), "42601", "syntax error")
    check(isinstance(e, asyncpg.PostgresSyntaxError), f"exception class {type(e).__name__}")
    sqlstate_of(lambda: run(conn.fetch(f"SELECT nope FROM {TICKS} WHERE counter > $1", 1)),
                "42703", "missing column")
    equal(run(conn.fetchval("SELECT 1")), 1, "connection after errors")


async def stream_and_stop():
    # A cursor is a portal read with Execute(max_rows): rows of an endless query arrive
    # page by page. Ending the transaction closes it.
    async with conn.transaction():
        cur = await conn.cursor(f"SELECT counter FROM {ENDLESS} WHERE counter >= $1", 10)
        equal(rows(await cur.fetch(3)), [(10,), (11,), (12,)], "first page")
        equal(rows(await cur.fetch(2)), [(13,), (14,)], "second page")
        equal(tuple(await cur.fetchrow()), (15,), "next row")
    equal(await conn.fetchval("SELECT 1"), 1, "connection after the cursor")
    async with conn.transaction():
        got = []
        async for record in conn.cursor(f"SELECT counter FROM {ENDLESS}", prefetch=2):
            got.append(record[0])
            if len(got) == 5:
                break
        equal(got, [0, 1, 2, 3, 4], "iterated rows")
    equal(await conn.fetchval("SELECT 2"), 2, "connection after iterating")


def step_stream_and_stop():
    started = time.monotonic()
    run(stream_and_stop())
    check(time.monotonic() - started < 10, "streaming took too long")


async def cancel():
    # The driver's own way: a timeout sends a CancelRequest and keeps the connection.
    started = time.monotonic()
    try:
        await conn.fetch(f"SELECT counter FROM {ENDLESS}", timeout=0.5)
        raise AssertionError("an endless query returned")
    except asyncio.TimeoutError:
        pass
    check(time.monotonic() - started < 10, "timeout took too long")
    equal(await conn.fetchval("SELECT 1"), 1, "connection after a timeout")
    # A CancelRequest from elsewhere: the query fails with 57014.
    # (Sent every 0.5 s until the query ends: one that arrives before the query runs does
    # nothing.)
    query = asyncio.ensure_future(conn.fetch(f"SELECT counter FROM {ENDLESS}"))
    started = time.monotonic()
    while not query.done() and time.monotonic() - started < 10:
        await asyncio.wait({query}, timeout=0.5)
        if not query.done():
            await cancel_request(conn)
    check(query.done(), "the cancelled query did not end")
    e = query.exception()
    check(isinstance(e, asyncpg.QueryCanceledError), f"expected QueryCanceledError, got {e!r}")
    equal(e.sqlstate, "57014", "SQLSTATE of the cancelled query")
    equal(await conn.fetchval("SELECT 2"), 2, "connection after cancel")


def step_cancel():
    run(cancel())


def step_cleanup():
    run(conn.execute(f"DROP TABLE {TICKS}, {ENDLESS}"))
    run(conn.close())


def step_tls_login():
    async def login():
        c = await connect()
        try:
            equal(await c.fetchval("SELECT 1"), 1, "SELECT 1")
            equal(await c.fetchval("SELECT current_user"), USER, "current_user")
        finally:
            await c.close()
    check(SSLROOTCERT, "LAMINAR_SSLROOTCERT is not set")
    run(login())


# asyncio errors reported by the loop itself, not raised (see step_wrong_password).
loop_errors = []
loop.set_exception_handler(lambda _loop, context: loop_errors.append(context.get("exception")))


def step_wrong_password():
    e = sqlstate_of(lambda: run(connect(password=wrong_password())), "28P01", "wrong password")
    check(isinstance(e, asyncpg.InvalidPasswordError), f"exception class {type(e).__name__}")
    check(f'user "{USER}"' in str(e), f"message: {e}")
    # The server ends the connection after the FATAL error, as PostgreSQL does: asyncpg's
    # protocol has nothing else to complain about (it reports a stray message to the loop).
    run(asyncio.sleep(0.1))
    errors = [repr(error.__context__ or error) for error in loop_errors if error]
    loop_errors.clear()
    equal(errors, [], "protocol errors logged after the failed login")

if __name__ == "__main__":
    if sys.argv[1:] == ["tls-login"]:
        run_steps("asyncpg", [("TLS and password login", step_tls_login),
                              ("wrong password refused", step_wrong_password)])
        sys.exit(0)
    run_steps("asyncpg", [
        ("connect", step_connect),
        ("create tables", step_setup),
        ("simple query", step_simple_query),
        ("parameterised queries", step_parameters),
        ("prepared statement reused", step_prepared_statement),
        ("every type (binary)", step_types),
        ("NULLs", step_nulls),
        ("PostgreSQL column names", step_column_names),
        ("pool: acquire, release, acquire", step_pool),
        ("errors carry SQLSTATEs", step_errors),
        ("cursor streams, close early", step_stream_and_stop),
        ("cancel a running query", step_cancel),
        ("drop tables", step_cleanup),
    ])
