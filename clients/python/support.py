"""Shared bits of the Python driver tests: connection settings, checks, the type matrix.

Each test file runs its steps in order and exits non-zero at the first failed check.
`python -O` would strip `assert`, so checks raise explicitly.
"""

import datetime as dt
import math
import os
import sys
import threading
import time
import traceback
from decimal import Decimal

HOST = os.environ.get("LAMINAR_HOST", "127.0.0.1")
PORT = int(os.environ.get("LAMINAR_PORT", "6875"))
USER = os.environ.get("LAMINAR_USER", "laminar")
PASSWORD = os.environ.get("LAMINAR_PASSWORD") or None
# A CA certificate (PEM): connect over TLS and verify the server's certificate and name.
SSLROOTCERT = os.environ.get("LAMINAR_SSLROOTCERT") or None
DATABASE = "laminar"


def libpq_tls():
    """libpq connection settings (psycopg, psycopg2) for LAMINAR_SSLROOTCERT."""
    return {"sslmode": "verify-full", "sslrootcert": SSLROOTCERT} if SSLROOTCERT else {}


def wrong_password():
    return (PASSWORD or "") + "-wrong"


def check_login_refused(error, what):
    """libpq (psycopg, psycopg2) keeps no SQLSTATE for an error at connect time: check its
    message, which is the server's FATAL 28P01 message (asyncpg, node and pgJDBC check the
    SQLSTATE itself)."""
    message = str(error)
    check(f'password authentication failed for user "{USER}"' in message.lower(),
          f"{what}: not a failed password login: {message!r}")


class CheckFailed(Exception):
    pass


def check(cond, message):
    if not cond:
        raise CheckFailed(message)


def equal(actual, expected, what):
    if not same(actual, expected):
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def same(a, b):
    """Equality that treats NaN as equal to NaN and looks into lists."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return False
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return str(a) == str(b)  # the scale must match too: 12.30 is not 12.3
    return type(a) is type(b) and a == b


def sqlstate_of(run, expected, what):
    """Run `run()`, which must fail with SQLSTATE `expected`; return the exception."""
    try:
        run()
    except Exception as e:  # driver-specific error classes
        state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        equal(state, expected, f"{what}: SQLSTATE")
        return e
    raise CheckFailed(f"{what}: expected an error with SQLSTATE {expected}, got none")


class Canceller:
    """Calls `cancel()` after `delay` s, then every `delay` s until stopped.

    Repeating covers a slow start (a cancel that arrives before the query runs does nothing).
    Use as a context manager around the call that must fail with 57014; leaving it stops the
    thread before the next statement runs.
    """

    def __init__(self, cancel, delay=0.5):
        self.cancel, self.delay = cancel, delay
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.wait(self.delay):
            self.cancel()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        return False


def run_steps(client, steps):
    """Run (name, function) pairs; print one line each; exit 1 on the first failure."""
    for name, step in steps:
        started = time.monotonic()
        try:
            step()
        except Exception as e:  # report any failure with the step's name
            sys.stdout.flush()
            print(f"{client}: FAIL in '{name}': {type(e).__name__}: {e}", file=sys.stderr)
            if not isinstance(e, CheckFailed):
                traceback.print_exc()
            sys.exit(1)
        print(f"{client}: ok   {name} ({time.monotonic() - started:.2f}s)", flush=True)
    print(f"{client}: {len(steps)} passed, 0 failed")


UTC = dt.timezone.utc

# (SQL expression, Python value, Postgres type OID) for every type that works over the
# wire, read with SELECT <expr>. The same values are expected in text and binary format.
TYPES = [
    ("1::int2", 1, 21),
    ("(-32768)::int2", -32768, 21),
    ("2147483647::int4", 2147483647, 23),
    ("(-9223372036854775807 - 1)::int8", -9223372036854775808, 20),
    ("1.5::float4", 1.5, 700),
    ("2.5::float8", 2.5, 701),
    ("1e-7::float8", 1e-7, 701),
    ("'NaN'::float8", float("nan"), 701),
    ("'héllo, 日本'::text", "héllo, 日本", 25),
    ("''::text", "", 25),
    ("true", True, 16),
    ("false", False, 16),
    ("NULL::int4", None, 23),
    ("NULL::text", None, 25),
    ("NULL", None, 25),  # untyped: text, as in PostgreSQL
    ("DATE '2024-01-02'", dt.date(2024, 1, 2), 1082),
    ("DATE '1900-03-04'", dt.date(1900, 3, 4), 1082),
    ("TIMESTAMP '2024-01-02 03:04:05.123456'", dt.datetime(2024, 1, 2, 3, 4, 5, 123456), 1114),
    ("TIMESTAMP '1969-07-20 20:17:40.000001'", dt.datetime(1969, 7, 20, 20, 17, 40, 1), 1114),
    # TIMESTAMPTZ values are in UTC (the session's TimeZone); an offset in the literal is applied.
    ("'2024-01-02 03:04:05'::timestamptz", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), 1184),
    ("TIMESTAMPTZ '2024-01-02 03:04:05.123456+02'",
     dt.datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=UTC), 1184),
    ("TIME '03:04:05.5'", dt.time(3, 4, 5, 500000), 1083),
    ("TIME '23:59:59.999999'", dt.time(23, 59, 59, 999999), 1083),
    ("INTERVAL '1 day 2 hours 3 seconds'", dt.timedelta(days=1, hours=2, seconds=3), 1186),
    ("INTERVAL '-1 day'", dt.timedelta(days=-1), 1186),
    ("12.34::numeric(10,2)", Decimal("12.34"), 1700),
    ("(-1000000.01)::numeric(12,2)", Decimal("-1000000.01"), 1700),
    ("0.0001::numeric(10,4)", Decimal("0.0001"), 1700),
    ("100::numeric(10,0)", Decimal("100"), 1700),
    ("X'0102ff'", b"\x01\x02\xff", 17),
    ("ARRAY[1::int4, 2::int4]", [1, 2], 1007),
    ("ARRAY[1::int8, NULL]", [1, None], 1016),
    ("ARRAY[1.5::float8, 2.5]", [1.5, 2.5], 1022),
    ("ARRAY[true, false]", [True, False], 1000),
    ("ARRAY['a\"b', 'c,d', '', NULL, 'NULL']", ['a"b', "c,d", "", None, "NULL"], 1009),
    ("ARRAY[DATE '2024-01-02']", [dt.date(2024, 1, 2)], 1182),
    ("ARRAY[TIMESTAMP '2024-01-02 03:04:05']", [dt.datetime(2024, 1, 2, 3, 4, 5)], 1115),
    ("ARRAY[12.34::numeric(10,2)]", [Decimal("12.34")], 1231),
    ("ARRAY[X'01']", [b"\x01"], 1001),
    # TINYINT and Laminar's unsigned types (docs/types.md) go out as the next wider type:
    # Int8 and UInt8 -> int2, UInt16 -> int4, UInt32 -> int8, UInt64 -> numeric.
    ("1::tinyint", 1, 21),
    ("(-128)::tinyint", -128, 21),
    ("arrow_cast(255, 'UInt8')", 255, 21),
    ("arrow_cast(65535, 'UInt16')", 65535, 23),
    ("arrow_cast(4294967295, 'UInt32')", 4294967295, 20),
    ("arrow_cast(18446744073709551615, 'UInt64')", Decimal("18446744073709551615"), 1700),
]


def check_sqlalchemy_inspector(dialect, table, rows):
    """SQLAlchemy's inspector with `dialect` (postgresql+psycopg2: Superset, pandas;
    postgresql+psycopg: psycopg 3): what tools call to list schemas, tables and columns.
    `table` is a bounded source with `rows` rows."""
    import sqlalchemy as sa
    password = f":{PASSWORD}" if PASSWORD else ""
    engine = sa.create_engine(f"{dialect}://{USER}{password}@{HOST}:{PORT}/{DATABASE}")
    try:
        inspector = sa.inspect(engine)
        equal(inspector.get_schema_names(), ["public"], "get_schema_names")
        check(table in inspector.get_table_names(), "get_table_names lists the table")
        check(inspector.has_table(table), "has_table")
        columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)]
        equal(columns[0], ("counter", "BIGINT", False), "get_columns")
        equal(inspector.get_pk_constraint(table)["constrained_columns"], [], "no primary key")
        equal(inspector.get_indexes(table), [], "no indexes")
        equal(inspector.get_foreign_keys(table), [], "no foreign keys")
        equal(inspector.get_unique_constraints(table), [], "no unique constraints")
        equal(inspector.get_check_constraints(table), [], "no check constraints")
        equal(inspector.get_table_comment(table), {"text": None}, "no comment")
        with engine.connect() as c:
            equal(c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar(), rows, "a query")
    finally:
        engine.dispose()
