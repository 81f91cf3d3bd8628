"""psycopg 3 against a live Laminar server.

Run: LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 python test_psycopg.py
     python test_psycopg.py tls-login   # only: log in over TLS with a password (see support.py)
"""

import datetime as dt
import sys
import time
from decimal import Decimal

import psycopg
from psycopg import errors

from support import (DATABASE, HOST, PASSWORD, PORT, SSLROOTCERT, TYPES, UTC, USER, Canceller,
                     check, check_login_refused, check_sqlalchemy_inspector, equal, libpq_tls,
                     run_steps, sqlstate_of, wrong_password)

TICKS = "psycopg_ticks"
ENDLESS = "psycopg_endless"


def connect(autocommit=True, **settings):
    settings = {"password": PASSWORD, **libpq_tls(), **settings}
    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=DATABASE,
                           autocommit=autocommit, connect_timeout=10, **settings)


conn = None


def step_connect():
    global conn
    conn = connect()
    version = conn.execute("SELECT version()").fetchone()[0]
    check("Laminar" in version, f"version() does not mention Laminar: {version!r}")
    equal(conn.execute("SHOW client_encoding").fetchone()[0], "UTF8", "client_encoding")
    # The login user and the application_name sent at start-up.
    equal(conn.execute("SELECT current_user AS u").fetchone(), (USER,), "current_user")
    # psycopg sends no application_name unless it is set: PostgreSQL's default is ''.
    equal(conn.execute("SHOW application_name").fetchone(), ("",),
          "SHOW application_name (none sent)")
    equal(conn.execute("SELECT current_setting('application_name')").fetchone(), ("",),
          "current_setting('application_name') (none sent)")
    with connect(application_name="laminar psycopg test") as c:
        equal(c.execute("SHOW application_name").fetchone(), ("laminar psycopg test",),
              "SHOW application_name")
        equal(c.execute("SELECT current_setting('application_name')").fetchone(),
              ("laminar psycopg test",), "current_setting('application_name')")
        # SET reports the new value to the client (ParameterStatus), as PostgreSQL does.
        c.execute("SET application_name = 'renamed'")
        equal(c.info.parameter_status("application_name"), "renamed",
              "ParameterStatus after SET application_name")
    if SSLROOTCERT is None:
        # No TLS on this server: a client that requires it is refused.
        try:
            connect(sslmode="require").close()
            raise AssertionError("sslmode=require connected to a server without TLS")
        except psycopg.OperationalError as e:
            check("server does not support SSL" in str(e), f"sslmode=require: {e}")


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
    # An untyped parameter (psycopg sends str as unknown) makes a text column.
    cur = conn.execute("SELECT %s AS v", ("x",))
    equal((cur.description[0].type_code, cur.fetchone()), (25, ("x",)), "untyped parameter")
    # A parameter whose type the client declares (psycopg: int2 for 5, date) keeps that type.
    cur = conn.execute("SELECT %s AS n, %s AS d", (5, dt.date(2024, 1, 2)))
    equal(([d.type_code for d in cur.description], cur.fetchone()),
          ([21, 1082], (5, dt.date(2024, 1, 2))), "declared parameter types")
    # The server describes $1 by its cast (libpq's PQdescribePrepared, as psycopg's low level).
    pgconn = conn.pgconn
    check(pgconn.prepare(b"psycopg_described", b"SELECT $1::int4 + 1, $2::date, $3").status
          == psycopg.pq.ExecStatus.COMMAND_OK, "PQprepare")
    described = pgconn.describe_prepared(b"psycopg_described")
    equal([described.param_type(i) for i in range(described.nparams)], [23, 1082, 25],
          "parameter types of $1::int4 + 1, $2::date, $3")
    conn.execute("DEALLOCATE ALL")
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
    # The same types in binary format (%b), and in text format (%t) once more.
    values = (dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5, 123456), b"\x01\x02\xff\x00",
              dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=2))),
              dt.time(3, 4, 5, 500000), Decimal("12.5"), Decimal("-1234.56"))
    for p in ("b", "t"):
        what = f"%{p} parameters"
        cur = conn.execute(f"SELECT %{p}::date AS d, %{p}::timestamp AS t, %{p}::bytea AS b, "
                           f"%{p}::timestamptz AS tz, %{p}::time AS tm, %{p}::numeric AS n, "
                           f"%{p}::numeric(10,2) AS n2", values)
        equal([c.type_code for c in cur.description], [1082, 1114, 17, 1184, 1083, 1700, 1700],
              f"{what}: column types")
        d, t, b, tz, tm, n, n2 = cur.fetchone()
        equal((d, t, b, tm), values[:3] + values[4:5], f"{what}: date, timestamp, bytea, time")
        # timestamptz comes back in UTC (the session's TimeZone).
        equal(tz, dt.datetime(2024, 1, 2, 1, 4, 5, 6, tzinfo=UTC), f"{what}: timestamptz")
        equal(tz.utcoffset(), dt.timedelta(0), f"{what}: timestamptz offset")
        # Unconstrained numeric comes back with a larger scale (12.5000000000): equal value.
        check(isinstance(n, Decimal) and n == Decimal("12.5"), f"{what}: numeric: got {n!r}")
        equal(n2, Decimal("-1234.56"), f"{what}: numeric(10,2)")
    # Binary parameters filter rows too.
    equal(conn.execute(f"SELECT counter FROM {TICKS} WHERE timestamp > %b AND counter < %b",
                       (dt.datetime(2000, 1, 1), 2)).fetchall(), [(0,), (1,)],
          "binary timestamp parameter in WHERE")


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
    cases = TYPES
    for binary in (False, True):
        for expr, value, oid in cases:
            cur = conn.cursor(binary=binary)
            cur.execute(f"SELECT {expr} AS v")
            what = f"SELECT {expr} (binary={binary})"
            equal(cur.description[0].type_code, oid, f"{what}: type OID")
            equal(cur.fetchone()[0], value, what)
        # now() is a timestamptz in UTC.
        cur = conn.cursor(binary=binary)
        cur.execute("SELECT now() AS v")
        equal(cur.description[0].type_code, 1184, f"now() (binary={binary}): type OID")
        now = cur.fetchone()[0]
        equal(now.utcoffset(), dt.timedelta(0), f"now() (binary={binary}): UTC offset")
        check(abs(now - dt.datetime.now(UTC)) < dt.timedelta(minutes=1), f"now() is {now}")
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


def step_column_names():
    # Unaliased expressions take PostgreSQL's names (one query per protocol).
    expected = ["count", "counter", "?column?", "upper", "abs", "now", "subtask_index"]
    sql = (f"SELECT count(*), counter::text, counter + 1, upper('a'), abs(counter), now(), "
           f"CAST(subtask_index AS int4) FROM {TICKS} GROUP BY counter, subtask_index")
    equal([d.name for d in conn.execute(sql).description], expected, "names (simple protocol)")
    equal([d.name for d in conn.execute(sql + " HAVING counter > %s", (1,)).description],
          expected, "names (extended protocol)")
    equal([d.name for d in conn.execute("SELECT 1 + 1").description], ["?column?"], "SELECT 1 + 1")
    equal([d.name for d in conn.execute(f"SELECT count(*) FROM {TICKS}").description], ["count"],
          "SELECT count(*)")


def step_session_statements():
    # What drivers and pools send to reset a connection.
    for sql, tag in [("DEALLOCATE ALL", "DEALLOCATE ALL"), ("RESET ALL", "RESET"),
                     ("DISCARD ALL", "DISCARD ALL"), ("UNLISTEN *", "UNLISTEN")]:
        equal(conn.execute(sql).statusmessage, tag, f"{sql}: command tag")
    equal(conn.execute("SELECT set_config('application_name', 'x', false) AS v").fetchone(),
          ("x",), "set_config()")
    equal(conn.execute("SELECT pg_advisory_unlock_all() IS NULL AS v").fetchone(), (True,),
          "pg_advisory_unlock_all()")
    # RESET ALL restores the server defaults.
    conn.execute("SET batch_size = 7")
    equal(conn.execute("SHOW batch_size").fetchone(), ("7",), "SET batch_size")
    conn.execute("RESET ALL")
    equal(conn.execute("SHOW batch_size").fetchone(), ("1024",), "batch_size after RESET ALL")
    # CLOSE ALL closes the open cursors; FETCH from a cursor that does not exist is 34000,
    # DECLARE of a name already open 42P03, as in PostgreSQL.
    with connect(autocommit=False) as c:
        c.execute(f"DECLARE c1 NO SCROLL CURSOR FOR SELECT counter FROM {TICKS}")
        e = sqlstate_of(lambda: c.execute(f"DECLARE c1 CURSOR FOR SELECT counter FROM {TICKS}"),
                        "42P03", "DECLARE of an open cursor's name")
        check(isinstance(e, errors.DuplicateCursor), f"exception class {type(e).__name__}")
        check('cursor "c1" already exists' in str(e), f"message: {e}")
        c.rollback()
        c.execute(f"DECLARE c1 NO SCROLL CURSOR FOR SELECT counter FROM {TICKS}")
        equal(c.execute("FETCH 2 FROM c1").fetchall(), [(0,), (1,)], "FETCH before CLOSE ALL")
        equal(c.execute("CLOSE ALL").statusmessage, "CLOSE CURSOR ALL", "CLOSE ALL: command tag")
        e = sqlstate_of(lambda: c.execute("FETCH 1 FROM c1"), "34000", "FETCH after CLOSE ALL")
        check(isinstance(e, errors.InvalidCursorName), f"exception class {type(e).__name__}")
        check('cursor "c1" does not exist' in str(e), f"message: {e}")
        c.rollback()
        sqlstate_of(lambda: c.execute("FETCH 1 FROM never_declared"), "34000",
                    "FETCH from a cursor never declared")
        c.rollback()
    # DISCARD ALL closes the cursors too, WITH HOLD ones included.
    with connect() as c:
        c.execute(f"DECLARE h CURSOR WITH HOLD FOR SELECT counter FROM {TICKS}")
        equal(c.execute("FETCH 2 FROM h").fetchall(), [(0,), (1,)], "FETCH from a WITH HOLD cursor")
        equal(c.execute("DISCARD ALL").statusmessage, "DISCARD ALL", "DISCARD ALL: command tag")
        sqlstate_of(lambda: c.execute("FETCH 1 FROM h"), "34000", "FETCH after DISCARD ALL")
        equal(c.execute("SELECT 1").fetchone(), (1,), "connection after DISCARD ALL")


def step_auto_prepared_then_drop():
    # psycopg prepares a query on its 6th run (prepare_threshold = 5) and, after a DROP,
    # sends DEALLOCATE ALL; the connection must stay usable.
    scratch = "psycopg_scratch"
    conn.execute(f"DROP TABLE IF EXISTS {scratch}")
    conn.execute(f"CREATE TABLE {scratch} WITH (connector = 'impulse', event_rate = '1000', "
                 "message_count = '3')")
    for i in range(8):
        equal(conn.execute(f"SELECT counter FROM {scratch} WHERE counter >= %s", (i % 3,)).fetchall(),
              [(n,) for n in range(i % 3, 3)], f"run {i + 1} of a repeated query")
    # (psycopg's cache of prepared statements, private: the driver version is pinned.)
    check(len(conn._prepared._names) > 0, "psycopg did not prepare the repeated query")
    conn.execute(f"DROP TABLE {scratch}")
    equal(len(conn._prepared._names), 0, "prepared statements after the DROP")
    for i in range(7):
        equal(conn.execute(f"SELECT counter FROM {TICKS} WHERE counter = %s", (i % 5,)).fetchall(),
              [(i % 5,)], f"query after the DROP, run {i + 1}")


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


def step_named_cursor():
    # A named cursor is DECLARE over the extended protocol, Describe of the cursor's portal,
    # then FETCH FORWARD n (text, or binary with binary=True).
    started = time.monotonic()
    with conn.transaction():
        cur = conn.cursor(name="nc")
        cur.execute(f"SELECT counter FROM {ENDLESS}")
        equal([(d.name, d.type_code) for d in cur.description], [("counter", 20)], "description")
        equal(cur.fetchmany(3), [(0,), (1,), (2,)], "fetchmany(3)")
        equal(cur.fetchmany(2), [(3,), (4,)], "fetchmany(2)")
        equal(cur.fetchone(), (5,), "fetchone()")
        equal(cur.pgresult.fformat(0), 0, "text result")
        cur.scroll(3)  # MOVE 3 FROM "nc"
        equal(cur.fetchone(), (9,), "fetchone() after scroll(3)")
        sqlstate_of(lambda: cur.scroll(-1), "0A000", "scroll(-1): cursors move forward only")
    with conn.transaction():
        cur = conn.cursor(name="nc")
        cur.execute(f"SELECT counter FROM {ENDLESS}")
        cur.fetchmany(1)
        equal(conn.execute('CLOSE "nc"', prepare=True).statusmessage, "CLOSE CURSOR",
              "CLOSE over the extended protocol")
    with conn.transaction():
        cur = conn.cursor(name="nb", binary=True)
        cur.execute(f"SELECT counter, counter * 1.5::float8 AS f FROM {ENDLESS}")
        equal([(d.name, d.type_code) for d in cur.description], [("counter", 20), ("f", 701)],
              "description (binary)")
        equal(cur.fetchmany(3), [(0, 0.0), (1, 1.5), (2, 3.0)], "fetchmany(3) (binary)")
        equal([cur.pgresult.fformat(i) for i in range(2)], [1, 1], "binary result")
        equal(cur.fetchmany(2), [(3, 4.5), (4, 6.0)], "fetchmany(2) (binary)")
        cur.itersize = 2  # iteration fetches itersize rows at a time (100 by default)
        got = []
        for row in cur:
            got.append(row)
            if len(got) == 2:
                break
        equal(got, [(5, 7.5), (6, 9.0)], "iterated rows (binary)")
        cur.close()
    check(time.monotonic() - started < 10, "named cursors took too long")
    # Every type in one row, and a bounded query read to its end (FETCH FORWARD ALL).
    exprs = ", ".join(f"{e} AS c{i}" for i, (e, _, _) in enumerate(TYPES))
    for binary in (False, True):
        with conn.transaction():
            cur = conn.cursor(name=f"types_{binary}", binary=binary)
            cur.execute(f"SELECT {exprs}")
            equal([d.type_code for d in cur.description], [oid for _, _, oid in TYPES],
                  f"named cursor (binary={binary}): type OIDs")
            equal(list(cur.fetchone()), [v for _, v, _ in TYPES],
                  f"named cursor (binary={binary}): every type")
            cur.close()
            cur = conn.cursor(name=f"all_{binary}", binary=binary)
            cur.execute(f"SELECT counter FROM {TICKS}")
            equal(cur.fetchall(), [(0,), (1,), (2,), (3,), (4,)],
                  f"named cursor fetchall() (binary={binary})")
            cur.close()
    # WITH HOLD: usable outside a transaction (this connection is in autocommit).
    cur = conn.cursor(name="nh", withhold=True)
    cur.execute(f"SELECT counter FROM {ENDLESS}")
    equal(cur.fetchmany(2), [(0,), (1,)], "WITH HOLD named cursor")
    cur.close()
    equal(conn.execute("SELECT 1").fetchone(), (1,), "connection after named cursors")


def step_copy_out():
    with conn.cursor() as cur:
        # One CopyData message per row (and one for the header), as PostgreSQL sends them.
        with cur.copy(f"COPY (SELECT counter, NULL::text AS n FROM {TICKS} WHERE counter < 3) "
                      "TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            blocks = [bytes(block) for block in copy]
        equal(blocks, [b"counter,n\n", b"0,\n", b"1,\n", b"2,\n"], "COPY TO STDOUT messages")
        # copy.rows() parses text format: strings and NULLs, or typed values with set_types().
        with cur.copy(f"COPY (SELECT counter, NULL::text AS n, 'a,b' AS s FROM {TICKS} "
                      "WHERE counter < 3) TO STDOUT") as copy:
            equal(list(copy.rows()), [("0", None, "a,b"), ("1", None, "a,b"), ("2", None, "a,b")],
                  "copy.rows()")
        with cur.copy(f"COPY (SELECT counter, 'x' AS s FROM {TICKS}) TO STDOUT") as copy:
            copy.set_types(["int8", "text"])
            equal(list(copy.rows()), [(n, "x") for n in range(5)], "copy.rows() with set_types")


def step_sqlalchemy():
    check_sqlalchemy_inspector("postgresql+psycopg", TICKS, 5)


def step_cleanup():
    # The connection holds prepared statements (prepare=True above): psycopg follows the DROP
    # with DEALLOCATE ALL.
    conn.execute(f"DROP TABLE {TICKS}, {ENDLESS}")
    equal(conn.execute("SELECT 1").fetchone(), (1,), "connection after the DROP")
    conn.close()


def step_tls_login():
    with connect() as c:
        check(c.pgconn.ssl_in_use, "the connection does not use TLS")
        equal(c.execute("SELECT 1, current_user").fetchone(), (1, USER), "SELECT 1, current_user")


def step_wrong_password():
    try:
        connect(password=wrong_password()).close()
        raise AssertionError("logged in with a wrong password")
    except psycopg.OperationalError as e:
        check_login_refused(e, "wrong password")


if __name__ == "__main__":
    if sys.argv[1:] == ["tls-login"]:
        run_steps("psycopg", [("TLS and password login", step_tls_login),
                              ("wrong password refused", step_wrong_password)])
        sys.exit(0)
    run_steps("psycopg", [
        ("connect", step_connect),
        ("create tables", step_setup),
        ("simple query", step_simple_query),
        ("parameterised queries", step_parameters),
        ("prepared statement reused", step_prepared_statement),
        ("every type, text and binary", step_types),
        ("NULLs", step_nulls),
        ("PostgreSQL column names", step_column_names),
        ("DEALLOCATE/RESET/DISCARD ALL, UNLISTEN, CLOSE ALL, cursor errors",
         step_session_statements),
        ("auto-prepared statements, then DROP", step_auto_prepared_then_drop),
        ("errors carry SQLSTATEs", step_errors),
        ("stream rows, stop early", step_stream_and_stop),
        ("cancel a running query", step_cancel),
        ("DECLARE / FETCH / CLOSE", step_sql_cursor),
        ("named (server-side) cursors, text and binary", step_named_cursor),
        ("COPY TO STDOUT", step_copy_out),
        ("SQLAlchemy inspector (psycopg dialect)", step_sqlalchemy),
        ("drop tables", step_cleanup),
    ])
