"""psycopg 3 against a live Laminar server.

Run: LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 python test_psycopg.py
"""

import datetime as dt
import time
from decimal import Decimal

import psycopg
from psycopg import errors

from support import (DATABASE, HOST, PASSWORD, PORT, TEXT_ONLY_TYPES, TYPES, USER, Canceller,
                     check, equal, run_steps, sqlstate_of)

TICKS = "psycopg_ticks"
ENDLESS = "psycopg_endless"


def connect(autocommit=True):
    return psycopg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DATABASE,
                           autocommit=autocommit, connect_timeout=10)


conn = None


def step_connect():
    global conn
    conn = connect()
    version = conn.execute("SELECT version()").fetchone()[0]
    check("Laminar" in version, f"version() does not mention Laminar: {version!r}")
    equal(conn.execute("SHOW client_encoding").fetchone()[0], "UTF8", "client_encoding")


def step_setup():
    conn.execute(f"DROP TABLE IF EXISTS {TICKS}, {ENDLESS}")
    conn.execute(f"CREATE TABLE {TICKS} WITH (connector = 'impulse', event_rate = '1000', "
                 "message_count = '5')")
    conn.execute(f"CREATE TABLE {ENDLESS} WITH (connector = 'impulse', event_rate = '50')")


def step_simple_query():
    # No parameters: psycopg uses the simple query protocol.
    cur = conn.execute(f"SELECT counter FROM {TICKS}")
    equal(cur.fetchall(), [(0,), (1,), (2,), (3,), (4,)], "rows")
    equal([(d.name, d.type_code) for d in cur.description], [("counter", 20)], "description")
    equal(cur.rowcount, 5, "rowcount")
    # Several statements in one string: one result set each.
    cur = conn.execute("SELECT 1 AS a; SELECT 'two' AS b")
    equal(cur.fetchall(), [(1,)], "first result")
    check(cur.nextset(), "no second result set")
    equal(cur.fetchall(), [("two",)], "second result")


def step_parameters():
    cur = conn.execute(f"SELECT counter FROM {TICKS} WHERE counter > %s AND counter < %s", (1, 4))
    equal(cur.fetchall(), [(2,), (3,)], "int parameters")
    cur = conn.execute(
        f"SELECT counter FROM {TICKS} WHERE counter >= %s AND %s AND upper(%s) = 'AB' "
        "AND %s < 3.5", (3, True, "ab", 1.5))
    equal(cur.fetchall(), [(3,), (4,)], "int, bool, text, float parameters")
    equal(conn.execute("SELECT %s::int4 + 1, upper(%s), %s * 2.0",
                       (41, "héllo", 1.25)).fetchone(), (42, "HÉLLO", 2.5), "typed parameters")
    # A NULL parameter compares as unknown: no row.
    equal(conn.execute(f"SELECT counter FROM {TICKS} WHERE counter > %s", (None,)).fetchall(), [],
          "NULL parameter")
    # Named placeholders.
    equal(conn.execute(f"SELECT counter FROM {TICKS} WHERE counter = %(n)s", {"n": 2}).fetchall(),
          [(2,)], "named placeholder")
    # Values of other types sent in text format (%t), cast on the server.
    equal(conn.execute("SELECT %t::date, %t::numeric(10,2)",
                       (dt.date(2024, 1, 2), Decimal("12.34"))).fetchone(),
          (dt.date(2024, 1, 2), Decimal("12.34")), "date and numeric parameters as text")
    equal(conn.execute("SELECT %t::timestamp", (dt.datetime(2024, 1, 2, 3, 4, 5, 6),)).fetchone(),
          (dt.datetime(2024, 1, 2, 3, 4, 5, 6),), "timestamp parameter as text")


def step_prepared_statement():
    query = f"SELECT counter FROM {TICKS} WHERE counter > %s"
    expected = {0: [1, 2, 3, 4], 3: [4], 4: [], 2: [3, 4], -1: [0, 1, 2, 3, 4]}
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        for value, rows in expected.items():
            cur.execute(query, (value,), prepare=True)
            equal([r[0] for r in cur.fetchall()], rows, f"prepared (binary={binary}) with {value}")
        equal(cur.description[0].type_code, 20, "prepared statement column type")
    # executemany reuses one prepared statement too.
    cur = conn.cursor()
    cur.executemany(f"SELECT counter FROM {TICKS} WHERE counter = %s", [(1,), (3,)],
                    returning=True)
    got = []
    while True:
        got += cur.fetchall()
        if not cur.nextset():
            break
    equal(got, [(1,), (3,)], "executemany results")


def step_types():
    for binary in (False, True):
        cases = TYPES + ([] if binary else TEXT_ONLY_TYPES)
        for expr, value, oid in cases:
            cur = conn.cursor(binary=binary)
            cur.execute(f"SELECT {expr} AS v")
            what = f"SELECT {expr} (binary={binary})"
            equal(cur.description[0].type_code, oid, f"{what}: type OID")
            equal(cur.fetchone()[0], value, what)
        # All of them in one row, through the extended protocol (a parameter forces it).
        cur = conn.cursor(binary=binary)
        exprs = ", ".join(f"{e} AS c{i}" for i, (e, _, _) in enumerate(cases))
        cur.execute(f"SELECT {exprs}, %s::int8 AS p", (7,))
        equal(list(cur.fetchone()), [v for _, v, _ in cases] + [7], f"one wide row (binary={binary})")


def step_nulls():
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        cur.execute("SELECT NULL::int8 AS a, 1::int8 AS b, NULL::text AS c, NULL::date AS d, "
                    "ARRAY[NULL::int4] AS e, %s::int8 AS f", (None,))
        equal(cur.fetchone(), (None, 1, None, None, [None], None), f"NULLs (binary={binary})")


def step_errors():
    e = sqlstate_of(lambda: conn.execute("SELECT * FROM missing_table"), "42P01", "missing table")
    check(isinstance(e, errors.UndefinedTable), f"exception class {type(e).__name__}")
    check("missing_table" in str(e), f"message: {e}")
    e = sqlstate_of(lambda: conn.execute("SELEC 1"), "42601", "syntax error")
    check(isinstance(e, errors.SyntaxError), f"exception class {type(e).__name__}")
    sqlstate_of(lambda: conn.execute(f"SELECT nope FROM {TICKS}"), "42703", "missing column")
    sqlstate_of(lambda: conn.execute("SELECT * FROM missing_table WHERE x = %s", (1,)), "42P01",
                "missing table, extended protocol")
    sqlstate_of(lambda: conn.execute(f"SELECT counter FROM {ENDLESS} ORDER BY counter"), "0A000",
                "ORDER BY over an endless stream")
    equal(conn.execute("SELECT 1").fetchone(), (1,), "connection after errors")


def step_stream_and_stop():
    # cursor.stream() reads rows as they arrive (extended protocol, single-row mode).
    for binary in (False, True):
        started = time.monotonic()
        got = []
        for row in conn.cursor(binary=binary).stream(f"SELECT counter FROM {ENDLESS}"):
            got.append(row[0])
            if len(got) == 5:
                break  # psycopg cancels the rest of the query
        equal(got, [0, 1, 2, 3, 4], f"first streamed rows (binary={binary})")
        check(time.monotonic() - started < 10, "streaming took too long")
        equal(conn.execute("SELECT 1").fetchone(), (1,), "connection after stopping a stream")


def step_cancel():
    started = time.monotonic()
    with Canceller(conn.cancel_safe):
        e = sqlstate_of(lambda: conn.execute(f"SELECT counter FROM {ENDLESS}").fetchall(), "57014",
                        "cancelled query")
    check(isinstance(e, errors.QueryCanceled), f"exception class {type(e).__name__}")
    check(time.monotonic() - started < 10, "cancel took too long")
    equal(conn.execute("SELECT 1").fetchone(), (1,), "connection after cancel")


def step_sql_cursor():
    with connect(autocommit=False) as c:
        c.execute(f"DECLARE c NO SCROLL CURSOR FOR SELECT counter * 10 AS x FROM {ENDLESS}")
        equal(c.execute("FETCH 3 FROM c").fetchall(), [(0,), (10,), (20,)], "FETCH 3")
        equal(c.execute("FETCH FORWARD 2 FROM c").fetchall(), [(30,), (40,)], "FETCH FORWARD 2")
        equal(c.execute("FETCH NEXT FROM c").fetchall(), [(50,)], "FETCH NEXT")
        c.execute("CLOSE c")
        c.commit()
        equal(c.execute("SELECT 1").fetchone(), (1,), "connection after CLOSE")


def step_copy_out():
    # Raw blocks only: copy.rows() needs one CopyData message per row (see the report).
    with conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT counter, NULL::text AS n FROM {TICKS} WHERE counter < 3) "
                      "TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            data = b"".join(bytes(block) for block in copy)
    equal(data, b"counter,n\n0,\n1,\n2,\n", "COPY TO STDOUT data")


def step_cleanup():
    conn.close()
    # A fresh connection: after a DROP, psycopg sends DEALLOCATE ALL when it holds prepared
    # statements, which Laminar does not accept yet (see the report).
    with connect() as c:
        c.execute(f"DROP TABLE {TICKS}, {ENDLESS}")


if __name__ == "__main__":
    run_steps("psycopg", [
        ("connect", step_connect),
        ("create tables", step_setup),
        ("simple query", step_simple_query),
        ("parameterised queries", step_parameters),
        ("prepared statement reused", step_prepared_statement),
        ("every type, text and binary", step_types),
        ("NULLs", step_nulls),
        ("errors carry SQLSTATEs", step_errors),
        ("stream rows, stop early", step_stream_and_stop),
        ("cancel a running query", step_cancel),
        ("DECLARE / FETCH / CLOSE", step_sql_cursor),
        ("COPY TO STDOUT", step_copy_out),
        ("drop tables", step_cleanup),
    ])
