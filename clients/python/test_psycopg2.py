"""psycopg2 against a live Laminar server.

psycopg2 sends every statement over the simple query protocol, with parameters interpolated on
the client, and reads results in text format only.

Run: LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 python test_psycopg2.py
     python test_psycopg2.py tls-login   # only: log in over TLS with a password (see support.py)
"""

import datetime as dt
import io
import sys
import time

import psycopg2
import psycopg2.errors

from support import (DATABASE, HOST, PASSWORD, PORT, TYPES, USER, Canceller, check,
                     check_login_refused, check_sqlalchemy_inspector, equal, libpq_tls, run_steps,
                     sqlstate_of, wrong_password)

TICKS = "psycopg2_ticks"
ENDLESS = "psycopg2_endless"


def connect(**settings):
    settings = {"password": PASSWORD, **libpq_tls(), **settings}
    c = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=DATABASE, connect_timeout=10,
                         **settings)
    c.autocommit = True
    return c


conn = None


def query(sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur


def plain(value):
    """psycopg2 returns bytea as memoryview: compare bytes."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def step_connect():
    global conn
    conn = connect()
    version = query("SELECT version()").fetchone()[0]
    check("Laminar" in version, f"version() does not mention Laminar: {version!r}")
    equal(conn.encoding, "UTF8", "client encoding")
    equal(query("SELECT current_user AS u").fetchone(), (USER,), "current_user")
    # psycopg2 sends no application_name unless it is set: PostgreSQL's default is ''.
    equal(query("SHOW application_name").fetchone(), ("",), "SHOW application_name (none sent)")
    equal(query("SELECT current_setting('application_name')").fetchone(), ("",),
          "current_setting('application_name') (none sent)")
    with connect(application_name="laminar psycopg2 test") as c:
        cur = c.cursor()
        cur.execute("SHOW application_name")
        equal(cur.fetchone(), ("laminar psycopg2 test",), "SHOW application_name")
    c.close()


def step_setup():
    query(f"DROP TABLE IF EXISTS {TICKS}, {ENDLESS}")
    query(f"CREATE TABLE {TICKS} WITH (connector = 'impulse', event_rate = '1000', "
          "message_count = '5')")
    query(f"CREATE TABLE {ENDLESS} WITH (connector = 'impulse', event_rate = '50')")


def step_simple_query():
    cur = query(f"SELECT counter FROM {TICKS}")
    equal(cur.fetchall(), [(0,), (1,), (2,), (3,), (4,)], "rows")
    equal([(d.name, d.type_code) for d in cur.description], [("counter", 20)], "description")
    equal(cur.rowcount, 5, "rowcount")
    equal(cur.statusmessage, "SELECT 5", "command tag")


def step_parameters():
    equal(query(f"SELECT counter FROM {TICKS} WHERE counter > %s AND counter < %s",
                (1, 4)).fetchall(), [(2,), (3,)], "int parameters")
    equal(query(f"SELECT counter FROM {TICKS} WHERE counter >= %s AND %s AND upper(%s) = 'AB' "
                "AND %s < 3.5", (3, True, "ab", 1.5)).fetchall(), [(3,), (4,)],
          "int, bool, text, float parameters")
    equal(query("SELECT %s::int4 + 1, upper(%s), %s", (41, "it's", None)).fetchone(),
          (42, "IT'S", None), "quoting and NULL")
    equal(query("SELECT %(d)s, %(t)s", {"d": dt.date(2024, 1, 2),
                                         "t": dt.datetime(2024, 1, 2, 3, 4, 5, 6)}).fetchone(),
          (dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5, 6)), "date and timestamp")


def step_repeated_query():
    # psycopg2 has no protocol-level prepared statements; one cursor runs the same statement
    # with new values. (SQL PREPARE / EXECUTE is not supported by Laminar: docs/clients.md.)
    cur = conn.cursor()
    for value, rows in {0: [1, 2, 3, 4], 3: [4], 4: [], -1: [0, 1, 2, 3, 4]}.items():
        cur.execute(f"SELECT counter FROM {TICKS} WHERE counter > %s", (value,))
        equal([r[0] for r in cur.fetchall()], rows, f"query with {value}")


def step_types():
    for expr, value, oid in TYPES:
        cur = query(f"SELECT {expr} AS v")
        equal(cur.description[0].type_code, oid, f"SELECT {expr}: type OID")
        equal(plain(cur.fetchone()[0]), value, f"SELECT {expr}")
    cases = TYPES
    exprs = ", ".join(f"{e} AS c{i}" for i, (e, _, _) in enumerate(cases))
    equal([plain(v) for v in query(f"SELECT {exprs}").fetchone()], [v for _, v, _ in cases],
          "one wide row")


def step_nulls():
    equal(query("SELECT NULL::int8 AS a, 1::int8 AS b, NULL::text AS c, NULL::date AS d, "
                "ARRAY[NULL::int4] AS e, %s AS f", (None,)).fetchone(),
          (None, 1, None, None, [None], None), "NULLs")


def step_column_names():
    cur = query(f"SELECT count(*), counter::text, counter + 1, upper('a'), now() FROM {TICKS} "
                "GROUP BY counter")
    equal([d.name for d in cur.description], ["count", "counter", "?column?", "upper", "now"],
          "names of unaliased columns")


def step_errors():
    e = sqlstate_of(lambda: query("SELECT * FROM missing_table"), "42P01", "missing table")
    check(isinstance(e, psycopg2.errors.UndefinedTable), f"exception class {type(e).__name__}")
    e = sqlstate_of(lambda: query("SELEC 1"), "42601", "syntax error")
    check(isinstance(e, psycopg2.errors.SyntaxError), f"exception class {type(e).__name__}")
    sqlstate_of(lambda: query(f"SELECT nope FROM {TICKS}"), "42703", "missing column")
    equal(query("SELECT 1").fetchone(), (1,), "connection after errors")
    # Cursors: FETCH from one that does not exist is 34000, DECLARE of an open name 42P03.
    e = sqlstate_of(lambda: query("FETCH 1 FROM never_declared"), "34000", "FETCH, no such cursor")
    check(isinstance(e, psycopg2.errors.InvalidCursorName), f"exception class {type(e).__name__}")
    with connect() as c:
        c.autocommit = False
        cur = c.cursor()
        cur.execute(f"DECLARE dup CURSOR FOR SELECT counter FROM {TICKS}")
        e = sqlstate_of(lambda: cur.execute(f"DECLARE dup CURSOR FOR SELECT counter FROM {TICKS}"),
                        "42P03", "DECLARE of an open cursor's name")
        check(isinstance(e, psycopg2.errors.DuplicateCursor), f"exception class {type(e).__name__}")
        c.rollback()
    c.close()


def step_named_cursor():
    # A named cursor is DECLARE ... CURSOR + FETCH FORWARD n: rows of an endless query arrive
    # page by page; closing the cursor ends the query.
    with connect() as c:
        c.autocommit = False
        cur = c.cursor(name="psycopg2_stream")
        cur.itersize = 2
        started = time.monotonic()
        cur.execute(f"SELECT counter FROM {ENDLESS}")
        equal(cur.fetchmany(3), [(0,), (1,), (2,)], "first page")
        equal(cur.fetchone(), (3,), "next row")
        got = []
        for row in cur:  # iteration fetches itersize rows at a time
            got.append(row[0])
            if len(got) == 4:
                break
        equal(got, [4, 5, 6, 7], "iterated rows")
        cur.close()
        c.commit()
        check(time.monotonic() - started < 10, "streaming took too long")
        plain_cur = c.cursor()
        plain_cur.execute("SELECT 1")
        equal(plain_cur.fetchone(), (1,), "connection after closing the cursor")
        c.rollback()


def step_cancel():
    started = time.monotonic()
    with Canceller(conn.cancel):
        e = sqlstate_of(lambda: query(f"SELECT counter FROM {ENDLESS}"), "57014", "cancelled query")
    check(isinstance(e, psycopg2.errors.QueryCanceled), f"exception class {type(e).__name__}")
    check(time.monotonic() - started < 10, "cancel took too long")
    equal(query("SELECT 1").fetchone(), (1,), "connection after cancel")


def step_copy_out():
    out = io.StringIO()
    conn.cursor().copy_expert(
        f"COPY (SELECT counter, 'x,y' AS s FROM {TICKS} WHERE counter > 2) TO STDOUT "
        "WITH (FORMAT csv, HEADER)", out)
    equal(out.getvalue(), 'counter,s\n3,"x,y"\n4,"x,y"\n', "COPY TO STDOUT output")


def step_sqlalchemy():
    check_sqlalchemy_inspector("postgresql+psycopg2", TICKS, 5)


def step_cleanup():
    query(f"DROP TABLE {TICKS}, {ENDLESS}")
    conn.close()


def step_tls_login():
    c = connect()
    try:
        check(c.info.ssl_in_use, "the connection does not use TLS")
        cur = c.cursor()
        cur.execute("SELECT 1, current_user")
        equal(cur.fetchone(), (1, USER), "SELECT 1, current_user")
    finally:
        c.close()


def step_wrong_password():
    try:
        connect(password=wrong_password()).close()
        raise AssertionError("logged in with a wrong password")
    except psycopg2.OperationalError as e:
        check_login_refused(e, "wrong password")


if __name__ == "__main__":
    if sys.argv[1:] == ["tls-login"]:
        run_steps("psycopg2", [("TLS and password login", step_tls_login),
                               ("wrong password refused", step_wrong_password)])
        sys.exit(0)
    run_steps("psycopg2", [
        ("connect", step_connect),
        ("create tables", step_setup),
        ("simple query", step_simple_query),
        ("parameterised queries", step_parameters),
        ("same query, new values", step_repeated_query),
        ("every type (text)", step_types),
        ("NULLs", step_nulls),
        ("PostgreSQL column names", step_column_names),
        ("errors carry SQLSTATEs", step_errors),
        ("named cursor streams, close early", step_named_cursor),
        ("cancel a running query", step_cancel),
        ("COPY TO STDOUT", step_copy_out),
        ("SQLAlchemy inspector", step_sqlalchemy),
        ("drop tables", step_cleanup),
    ])
