// pgJDBC against a live Laminar server.
//
// Run (single-file source launch, no build):
//   LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=6875 java -cp /usr/share/java/postgresql.jar DriverTest.java
//   java -cp /usr/share/java/postgresql.jar DriverTest.java tls-login   # only: TLS + password login
// LAMINAR_USER, LAMINAR_PASSWORD are read; LAMINAR_SSLROOTCERT (a CA certificate, PEM) makes
// every connection use TLS and verify the server's certificate and name.

import java.io.StringWriter;
import java.math.BigDecimal;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.postgresql.PGResultSetMetaData;
import org.postgresql.PGStatement;
import org.postgresql.copy.CopyManager;
import org.postgresql.core.BaseConnection;

public class DriverTest {
    static final String HOST = env("LAMINAR_HOST", "127.0.0.1");
    static final String PORT = env("LAMINAR_PORT", "6875");
    static final String USER = env("LAMINAR_USER", "laminar");
    static final String PASSWORD = System.getenv("LAMINAR_PASSWORD");
    static final String SSLROOTCERT = System.getenv("LAMINAR_SSLROOTCERT");

    static final String TICKS = "jdbc_ticks";
    static final String ENDLESS = "jdbc_endless";
    static final String SINK = "jdbc_alltypes";
    static final String VIEW = "jdbc_view";

    static Connection conn;

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) { super(message); }
    }

    static void check(boolean cond, String message) {
        if (!cond) throw new CheckFailed(message);
    }

    static String show(Object v) {
        if (v instanceof Object[]) return Arrays.deepToString((Object[]) v);
        if (v instanceof byte[]) return "bytes" + Arrays.toString((byte[]) v);
        return v == null ? "null" : v + " (" + v.getClass().getSimpleName() + ")";
    }

    static void equal(Object actual, Object expected, String what) {
        boolean same;
        if (actual instanceof BigDecimal && expected instanceof BigDecimal) {
            same = actual.toString().equals(expected.toString()); // the scale must match too
        } else if (actual instanceof Object[] && expected instanceof Object[]) {
            same = Arrays.deepEquals((Object[]) actual, (Object[]) expected);
        } else if (actual instanceof byte[] && expected instanceof byte[]) {
            same = Arrays.equals((byte[]) actual, (byte[]) expected);
        } else {
            same = Objects.equals(actual, expected);
        }
        if (!same) throw new CheckFailed(what + ": expected " + show(expected) + ", got " + show(actual));
    }

    interface SqlRunnable { void run() throws Exception; }

    static SQLException sqlstateOf(SqlRunnable r, String expected, String what) throws Exception {
        try {
            r.run();
        } catch (SQLException e) {
            equal(e.getSQLState(), expected, what + ": SQLSTATE (" + e.getMessage() + ")");
            return e;
        }
        throw new CheckFailed(what + ": expected an error with SQLSTATE " + expected + ", got none");
    }

    static Connection connect(String... settings) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", USER);
        if (PASSWORD != null && !PASSWORD.isEmpty()) p.setProperty("password", PASSWORD);
        p.setProperty("connectTimeout", "10");
        if (SSLROOTCERT != null && !SSLROOTCERT.isEmpty()) {
            p.setProperty("ssl", "true");
            p.setProperty("sslmode", "verify-full"); // TLS required, certificate and host name checked
            p.setProperty("sslrootcert", SSLROOTCERT);
        }
        for (int i = 0; i < settings.length; i += 2) p.setProperty(settings[i], settings[i + 1]);
        return DriverManager.getConnection("jdbc:postgresql://" + HOST + ":" + PORT + "/laminar", p);
    }

    static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= n; i++) row.add(rs.getObject(i));
            out.add(row);
        }
        return out;
    }

    static List<Long> longs(ResultSet rs) throws SQLException {
        List<Long> out = new ArrayList<>();
        while (rs.next()) out.add(rs.getLong(1));
        return out;
    }

    static List<List<Object>> query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            return rows(rs);
        }
    }

    static void execute(String sql) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute(sql);
        }
    }

    // ---- steps ----

    static void connectStep() throws Exception {
        conn = connect();
        DatabaseMetaData md = conn.getMetaData();
        equal(md.getDatabaseProductName(), "PostgreSQL", "database product name");
        String version = (String) query(conn, "SELECT version()").get(0).get(0);
        check(version.contains("Laminar"), "version() does not mention Laminar: " + version);
        check(conn.isValid(5), "isValid");
        // The login user, and the application_name pgJDBC sends at start-up.
        equal(query(conn, "SELECT current_user AS u"), List.of(List.of(USER)), "current_user");
        equal(query(conn, "SHOW application_name"), List.of(List.of("PostgreSQL JDBC Driver")),
                "SHOW application_name (pgJDBC's default)");
        try (Connection c = connect("ApplicationName", "laminar jdbc test")) {
            equal(query(c, "SELECT current_setting('application_name')"), List.of(List.of("laminar jdbc test")),
                    "application_name from ApplicationName");
        }
    }

    static void setupStep() throws Exception {
        execute("DROP VIEW IF EXISTS " + VIEW);
        execute("DROP TABLE IF EXISTS " + TICKS + ", " + ENDLESS + ", " + SINK);
        execute("CREATE TABLE " + TICKS + " WITH (connector = 'impulse', event_rate = '1000', message_count = '5')");
        execute("CREATE TABLE " + ENDLESS + " WITH (connector = 'impulse', event_rate = '50')");
        execute("CREATE TABLE " + SINK + " (id BIGINT NOT NULL, name TEXT, price DECIMAL(10,2), score DOUBLE, "
                + "small SMALLINT, flag BOOLEAN, day DATE, at TIMESTAMP, clock TIME, blob BYTEA) "
                + "WITH (connector = 'blackhole', type = 'sink')");
        execute("CREATE VIEW " + VIEW + " AS SELECT counter FROM " + TICKS);
    }

    static void simpleQueryStep() throws Exception {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT counter FROM " + TICKS)) {
            ResultSetMetaData md = rs.getMetaData();
            equal(md.getColumnCount(), 1, "column count");
            equal(md.getColumnLabel(1), "counter", "column label");
            equal(md.getColumnType(1), Types.BIGINT, "column type");
            equal(md.getColumnTypeName(1), "int8", "column type name");
            equal(md.getColumnClassName(1), "java.lang.Long", "column class");
            equal(longs(rs), List.of(0L, 1L, 2L, 3L, 4L), "rows");
        }
        // The simple query protocol (preferQueryMode=simple), several statements in one string.
        try (Connection simple = connect("preferQueryMode", "simple"); Statement st = simple.createStatement()) {
            check(st.execute("SELECT 1 AS a; SELECT 'two' AS b"), "first result is a result set");
            equal(rows(st.getResultSet()), List.of(List.of(1L)), "first result");
            check(st.getMoreResults(), "second result");
            equal(rows(st.getResultSet()), List.of(List.of("two")), "second result");
        }
    }

    static void parametersStep() throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT counter FROM " + TICKS + " WHERE counter >= ? AND ? AND upper(?) = 'AB' AND ? < 3.5")) {
            ps.setLong(1, 3);
            ps.setBoolean(2, true);
            ps.setString(3, "ab");
            ps.setDouble(4, 1.5);
            try (ResultSet rs = ps.executeQuery()) {
                equal(longs(rs), List.of(3L, 4L), "long, boolean, string, double parameters");
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int4 + 1 AS a, upper(?) AS b")) {
            ps.setInt(1, 41);
            ps.setString(2, "héllo");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "one row");
                equal(rs.getInt(1), 42, "int parameter");
                equal(rs.getString(2), "HÉLLO", "string parameter");
            }
        }
        // A cast gives the parameter its type (ParameterMetaData), an untyped one is text.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::date AS d, ?::int4 + 1 AS n, ?::timestamptz AS t")) {
            ps.setObject(1, LocalDate.of(2024, 1, 2));
            ps.setInt(2, 41);
            ps.setObject(3, OffsetDateTime.of(2024, 1, 2, 3, 4, 5, 0, ZoneOffset.ofHours(2)));
            ParameterMetaData pmd = ps.getParameterMetaData();
            equal(List.of(pmd.getParameterTypeName(1), pmd.getParameterTypeName(2), pmd.getParameterTypeName(3)),
                    List.of("date", "int4", "timestamptz"), "parameter types");
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "one row");
                equal(rs.getObject(1, LocalDate.class), LocalDate.of(2024, 1, 2), "date parameter");
                equal(rs.getInt(2), 42, "int4 parameter");
                equal(rs.getObject(3, OffsetDateTime.class), OffsetDateTime.of(2024, 1, 2, 1, 4, 5, 0, ZoneOffset.UTC),
                        "timestamptz parameter (in UTC)");
            }
        }
        // setDate / setTimestamp / setBytes / setBigDecimal / setObject round-trip, with text
        // results (prepareThreshold=0) and binary ones (-1: server-prepared from the start).
        for (String threshold : new String[] {"0", "-1"}) {
            String what = " (prepareThreshold=" + threshold + ")";
            try (Connection c = connect("prepareThreshold", threshold);
                 PreparedStatement ps = c.prepareStatement("SELECT ?::date AS d, ?::timestamp AS t, ?::bytea AS b, "
                         + "?::timestamptz AS tz, ?::numeric AS n, ?::date AS d2, ?::timestamp AS t2, ?::time AS tm")) {
                java.sql.Date[] days = {java.sql.Date.valueOf("2024-01-02"), java.sql.Date.valueOf("1900-03-04")};
                for (java.sql.Date day : days) {
                    java.sql.Timestamp at = java.sql.Timestamp.valueOf("2024-01-02 03:04:05.123456");
                    byte[] blob = {1, 2, (byte) 0xff, 0};
                    ps.setDate(1, day);
                    ps.setTimestamp(2, at);
                    ps.setBytes(3, blob);
                    ps.setObject(4, OffsetDateTime.of(2024, 1, 2, 3, 4, 5, 6000, ZoneOffset.ofHours(2)));
                    ps.setBigDecimal(5, new BigDecimal("12.5"));
                    ps.setObject(6, day.toLocalDate());
                    ps.setObject(7, LocalDateTime.of(1969, 7, 20, 20, 17, 40, 1000));
                    ps.setObject(8, LocalTime.of(3, 4, 5, 500_000_000));
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "one row" + what);
                        int format = rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(1);
                        equal(format, threshold.equals("-1") ? 1 : 0, "result format" + what);
                        equal(rs.getDate("d"), day, "setDate" + what);
                        equal(rs.getTimestamp("t"), at, "setTimestamp" + what);
                        equal(rs.getBytes("b"), blob, "setBytes" + what);
                        equal(rs.getObject("tz", OffsetDateTime.class),
                                OffsetDateTime.of(2024, 1, 2, 1, 4, 5, 6000, ZoneOffset.UTC), "timestamptz" + what);
                        // Unconstrained numeric comes back with a larger scale (12.5000000000).
                        BigDecimal n = rs.getBigDecimal("n");
                        check(n.compareTo(new BigDecimal("12.5")) == 0, "setBigDecimal" + what + ": got " + n);
                        equal(rs.getObject("d2", LocalDate.class), day.toLocalDate(), "setObject(LocalDate)" + what);
                        equal(rs.getObject("t2", LocalDateTime.class), LocalDateTime.of(1969, 7, 20, 20, 17, 40, 1000),
                                "setObject(LocalDateTime)" + what);
                        equal(rs.getObject("tm", LocalTime.class), LocalTime.of(3, 4, 5, 500_000_000),
                                "setObject(LocalTime)" + what);
                    }
                }
            }
        }
        // setTime sends `03:04:05+00` (a time without time zone drops the offset, as in
        // PostgreSQL); dates before year 1 travel as `0044-03-15 BC`, both ways.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::time AS tm, ?::date AS d")) {
            ps.setTime(1, java.sql.Time.valueOf("03:04:05"));
            ps.setObject(2, LocalDate.of(-43, 3, 15));
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "one row (setTime, BC date)");
                equal(rs.getObject("tm", LocalTime.class), LocalTime.of(3, 4, 5), "setTime");
                equal(rs.getObject("d", LocalDate.class), LocalDate.of(-43, 3, 15), "a LocalDate before year 1");
            }
        }
        // A `::timestamp` is nanoseconds (years 1677 to 2262): a value outside is refused, named.
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::timestamp AS ts")) {
            ps.setObject(1, LocalDateTime.of(0, 12, 31, 23, 59, 58));
            try (ResultSet rs = ps.executeQuery()) {
                throw new AssertionError("a timestamp in 1 BC was accepted");
            } catch (SQLException e) {
                equal(e.getSQLState(), "22023", "out-of-range timestamp: SQLSTATE");
                check(e.getMessage().contains("parameter $1: timestamp out of range"),
                        "out-of-range timestamp: message: " + e.getMessage());
            }
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT counter FROM " + TICKS + " WHERE counter > ?")) {
            ps.setNull(1, Types.BIGINT);
            try (ResultSet rs = ps.executeQuery()) {
                equal(longs(rs), List.of(), "NULL parameter");
            }
        }
    }

    static void preparedStatementStep() throws Exception {
        // prepareThreshold=1: from its first execution the statement is a named server-side
        // statement, and the driver asks for binary results.
        try (Connection c = connect("prepareThreshold", "1");
             PreparedStatement ps = c.prepareStatement("SELECT counter, counter * 1.5::float8 AS f FROM " + TICKS + " WHERE counter > ?")) {
            long[][] cases = {{0, 4}, {3, 1}, {4, 0}, {2, 2}, {-1, 5}, {0, 4}};
            boolean first = true;
            for (long[] cs : cases) {
                ps.setLong(1, cs[0]);
                try (ResultSet rs = ps.executeQuery()) {
                    List<Long> expected = new ArrayList<>();
                    for (long v = cs[0] + 1; v <= 4; v++) if (v >= 0) expected.add(v);
                    PGResultSetMetaData pgmd = rs.getMetaData().unwrap(PGResultSetMetaData.class);
                    List<Long> got = new ArrayList<>();
                    while (rs.next()) {
                        got.add(rs.getLong(1));
                        equal(rs.getDouble(2), rs.getLong(1) * 1.5, "computed column");
                    }
                    equal(got, expected, "prepared with " + cs[0]);
                    equal((long) got.size(), cs[1], "row count with " + cs[0]);
                    // The first execution describes the statement; later ones ask for binary.
                    equal(pgmd.getFormat(1), first ? 0 : 1, "result format of execution with " + cs[0]);
                    first = false;
                }
            }
            check(ps.unwrap(PGStatement.class).isUseServerPrepare(), "statement is server-prepared");
            // DEALLOCATE ALL and DISCARD ALL drop the server's prepared statements; pgJDBC
            // notices and prepares the statement again.
            for (String reset : new String[] {"DEALLOCATE ALL", "DISCARD ALL"}) {
                try (Statement st = c.createStatement()) {
                    st.execute(reset);
                }
                ps.setLong(1, 2);
                try (ResultSet rs = ps.executeQuery()) {
                    equal(longs(rs), List.of(3L, 4L), "prepared statement after " + reset);
                }
            }
        }
    }

    static void columnNamesStep() throws Exception {
        // Unaliased expressions take PostgreSQL's names, with text and binary results.
        List<String> expected = List.of("count", "counter", "?column?", "upper", "now", "?column?");
        for (String threshold : new String[] {"0", "-1"}) {
            try (Connection c = connect("prepareThreshold", threshold);
                 PreparedStatement ps = c.prepareStatement("SELECT count(*), counter::text, counter + 1, upper('a'), now() "
                         + "FROM " + TICKS + " WHERE counter = ? GROUP BY counter");
                 PreparedStatement untyped = c.prepareStatement("SELECT NULL")) {
                ps.setLong(1, 1);
                try (ResultSet rs = ps.executeQuery(); ResultSet nulls = untyped.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    List<String> labels = new ArrayList<>();
                    List<String> names = new ArrayList<>();
                    for (int i = 1; i <= md.getColumnCount(); i++) {
                        labels.add(md.getColumnLabel(i));
                        names.add(md.getColumnName(i));
                    }
                    labels.add(nulls.getMetaData().getColumnLabel(1));
                    names.add(nulls.getMetaData().getColumnName(1));
                    equal(labels, expected, "column labels (prepareThreshold=" + threshold + ")");
                    equal(names, expected, "column names (prepareThreshold=" + threshold + ")");
                    equal(md.getColumnTypeName(2), "text", "type of counter::text");
                    equal(md.getColumnTypeName(5), "timestamptz", "type of now()");
                    equal(nulls.getMetaData().getColumnTypeName(1), "text", "type of SELECT NULL");
                    check(rs.next(), "a row");
                    equal(rs.getLong("count"), 1L, "count");
                    equal(rs.getString("counter"), "1", "counter");
                    OffsetDateTime now = rs.getObject("now", OffsetDateTime.class);
                    equal(now.getOffset(), ZoneOffset.UTC, "offset of now()");
                    check(Math.abs(now.toEpochSecond() - System.currentTimeMillis() / 1000) < 60, "now() is " + now);
                }
            }
        }
    }

    // {SQL expression, Java value from getObject (or from getObject(i, Class) for java.time)}.
    static final Object[][] TYPES = {
        {"1::int2", 1},
        {"(-32768)::int2", -32768},
        {"2147483647::int4", 2147483647},
        {"(-9223372036854775807 - 1)::int8", Long.MIN_VALUE},
        {"1.5::float4", 1.5f},
        {"2.5::float8", 2.5d},
        {"1e-7::float8", 1e-7d},
        {"'NaN'::float8", Double.NaN},
        {"'héllo, 日本'::text", "héllo, 日本"},
        {"''::text", ""},
        {"true", true},
        {"false", false},
        {"NULL::int4", null},
        {"NULL::text", null},
        {"NULL", null}, // untyped: text
        {"DATE '2024-01-02'", LocalDate.of(2024, 1, 2)},
        {"DATE '1900-03-04'", LocalDate.of(1900, 3, 4)},
        {"TIMESTAMP '2024-01-02 03:04:05.123456'", LocalDateTime.of(2024, 1, 2, 3, 4, 5, 123456000)},
        {"TIMESTAMP '1969-07-20 20:17:40.000001'", LocalDateTime.of(1969, 7, 20, 20, 17, 40, 1000)},
        {"'2024-01-02 03:04:05'::timestamptz", OffsetDateTime.of(2024, 1, 2, 3, 4, 5, 0, ZoneOffset.UTC)},
        {"TIMESTAMPTZ '2024-01-02 03:04:05.123456+02'", OffsetDateTime.of(2024, 1, 2, 1, 4, 5, 123456000, ZoneOffset.UTC)},
        {"TIME '03:04:05.5'", LocalTime.of(3, 4, 5, 500000000)},
        {"TIME '23:59:59.999999'", LocalTime.of(23, 59, 59, 999999000)},
        {"12.34::numeric(10,2)", new BigDecimal("12.34")},
        {"(-1000000.01)::numeric(12,2)", new BigDecimal("-1000000.01")},
        {"0.0001::numeric(10,4)", new BigDecimal("0.0001")},
        {"100::numeric(10,0)", new BigDecimal("100")},
        {"X'0102ff'", new byte[] {1, 2, (byte) 0xff}},
        {"ARRAY[1::int4, 2::int4]", new Integer[] {1, 2}},
        {"ARRAY[1::int8, NULL]", new Long[] {1L, null}},
        {"ARRAY[1.5::float8, 2.5]", new Double[] {1.5, 2.5}},
        {"ARRAY[true, false]", new Boolean[] {true, false}},
        {"ARRAY['a\"b', 'c,d', '', NULL, 'NULL']", new String[] {"a\"b", "c,d", "", null, "NULL"}},
        {"ARRAY[12.34::numeric(10,2)]", new BigDecimal[] {new BigDecimal("12.34")}},
        // TINYINT and UInt8 are int2 (2 bytes in binary), UInt16 int4, UInt32 int8, UInt64 numeric.
        {"1::tinyint", 1},
        {"(-128)::tinyint", -128},
        {"arrow_cast(255, 'UInt8')", 255},
        {"arrow_cast(65535, 'UInt16')", 65535},
        {"arrow_cast(4294967295, 'UInt32')", 4294967295L},
        {"arrow_cast(18446744073709551615, 'UInt64')", new BigDecimal("18446744073709551615")},
    };

    static Object read(ResultSet rs, int i, Object expected) throws SQLException {
        if (expected instanceof LocalDate) return rs.getObject(i, LocalDate.class);
        if (expected instanceof LocalDateTime) return rs.getObject(i, LocalDateTime.class);
        if (expected instanceof OffsetDateTime) return rs.getObject(i, OffsetDateTime.class);
        if (expected instanceof LocalTime) return rs.getObject(i, LocalTime.class);
        Object v = rs.getObject(i);
        if (v instanceof Array) return ((Array) v).getArray();
        return v;
    }

    static void typesStep() throws Exception {
        // prepareThreshold=0: never server-prepared, text results. -1: always, binary results.
        for (String threshold : new String[] {"0", "-1"}) {
            boolean binary = threshold.equals("-1");
            List<Object[]> cases = Arrays.asList(TYPES);
            try (Connection c = connect("prepareThreshold", threshold)) {
                for (Object[] cs : cases) {
                    String what = "SELECT " + cs[0] + (binary ? " (binary)" : " (text)");
                    try (PreparedStatement ps = c.prepareStatement("SELECT " + cs[0] + " AS v");
                         ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), what + ": no row");
                        equal(read(rs, 1, cs[1]), cs[1], what);
                        equal(rs.wasNull(), cs[1] == null, what + ": wasNull");
                        // pgJDBC asks for binary for these; text, bool, bool[] and numeric[]
                        // stay text.
                        if (binary && (cs[1] instanceof Number || cs[1] instanceof byte[]
                                || cs[1] instanceof java.time.temporal.Temporal || cs[1] instanceof Integer[]
                                || cs[1] instanceof Long[] || cs[1] instanceof Double[] || cs[1] instanceof String[])) {
                            int format = rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(1);
                            equal(format, 1, what + ": result format");
                        }
                    }
                }
                // All in one row.
                StringBuilder sql = new StringBuilder("SELECT ");
                for (int i = 0; i < cases.size(); i++) sql.append(i > 0 ? ", " : "").append(cases.get(i)[0]).append(" AS c").append(i);
                try (PreparedStatement ps = c.prepareStatement(sql.toString()); ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "wide row");
                    for (int i = 0; i < cases.size(); i++) {
                        equal(read(rs, i + 1, cases.get(i)[1]), cases.get(i)[1], "wide row, column " + cases.get(i)[0]);
                    }
                }
            }
        }
        // Typed getters.
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT 7::int2 AS s, 12.5::float8 AS d, DATE '2024-01-02' AS day, "
                     + "TIMESTAMP '2024-01-02 03:04:05' AS at, X'01' AS b, 12.34::numeric(10,2) AS n")) {
            check(rs.next(), "row");
            equal(rs.getShort("s"), (short) 7, "getShort");
            equal(rs.getDouble("d"), 12.5, "getDouble");
            equal(rs.getDate("day"), java.sql.Date.valueOf("2024-01-02"), "getDate");
            equal(rs.getTimestamp("at"), java.sql.Timestamp.valueOf("2024-01-02 03:04:05"), "getTimestamp");
            equal(rs.getBytes("b"), new byte[] {1}, "getBytes");
            equal(rs.getBigDecimal("n"), new BigDecimal("12.34"), "getBigDecimal");
            equal(rs.getString("n"), "12.34", "getString of numeric");
        }
    }

    static void nullsStep() throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT NULL::int8 AS a, 1::int8 AS b, NULL::text AS c, NULL::date AS d, upper(?) AS e")) {
            ps.setNull(1, Types.VARCHAR);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "row");
                equal(rs.getLong("a"), 0L, "getLong of NULL");
                check(rs.wasNull(), "wasNull after NULL int8");
                equal(rs.getLong("b"), 1L, "getLong");
                check(!rs.wasNull(), "wasNull after 1");
                equal(rs.getString("c"), null, "NULL text");
                equal(rs.getDate("d"), null, "NULL date");
                equal(rs.getString("e"), null, "upper(NULL)");
            }
        }
    }

    static void errorsStep() throws Exception {
        SQLException e = sqlstateOf(() -> query(conn, "SELECT * FROM missing_table"), "42P01", "missing table");
        check(e.getMessage().contains("missing_table"), "message: " + e.getMessage());
        sqlstateOf(() -> query(conn, "SELEC 1"), "42601", "syntax error");
        sqlstateOf(() -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT nope FROM " + TICKS + " WHERE counter > ?")) {
                ps.setLong(1, 1);
                ps.executeQuery();
            }
        }, "42703", "missing column");
        sqlstateOf(() -> query(conn, "SELECT counter FROM " + ENDLESS + " ORDER BY counter"), "0A000", "ORDER BY over an endless stream");
        equal(query(conn, "SELECT 1"), List.of(List.of(1L)), "connection after errors");
    }

    static void streamStep() throws Exception {
        // A fetch size in a transaction makes the driver read through a portal, n rows per
        // Execute. Closing the ResultSet ends the query (pgJDBC sends no CancelRequest here).
        long started = System.nanoTime();
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.setFetchSize(3);
            try (ResultSet rs = st.executeQuery("SELECT counter FROM " + ENDLESS)) {
                List<Long> got = new ArrayList<>();
                for (int i = 0; i < 7; i++) {
                    check(rs.next(), "row " + i);
                    got.add(rs.getLong(1));
                }
                equal(got, List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L), "streamed rows");
            }
        }
        conn.commit();
        conn.setAutoCommit(true);
        check(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(10), "streaming took too long");
        equal(query(conn, "SELECT 1"), List.of(List.of(1L)), "connection after closing the result set");
        // The same with a PreparedStatement and a parameter.
        conn.setAutoCommit(false);
        try (PreparedStatement ps = conn.prepareStatement("SELECT counter FROM " + ENDLESS + " WHERE counter >= ?")) {
            ps.setFetchSize(2);
            ps.setLong(1, 10);
            try (ResultSet rs = ps.executeQuery()) {
                List<Long> got = new ArrayList<>();
                for (int i = 0; i < 5 && rs.next(); i++) got.add(rs.getLong(1));
                equal(got, List.of(10L, 11L, 12L, 13L, 14L), "streamed rows with a parameter");
            }
        }
        conn.rollback();
        conn.setAutoCommit(true);
        equal(query(conn, "SELECT 2"), List.of(List.of(2L)), "connection after rollback");
    }

    static void cancelStep() throws Exception {
        try (Statement st = conn.createStatement()) {
            // Statement.cancel() every 0.5 s until the query ends (a cancel that arrives
            // before the query runs does nothing).
            AtomicBoolean done = new AtomicBoolean();
            Thread canceller = new Thread(() -> {
                try {
                    while (true) {
                        Thread.sleep(500);
                        if (done.get()) return;
                        st.cancel();
                    }
                } catch (Exception ex) {
                    throw new RuntimeException(ex);
                }
            });
            long started = System.nanoTime();
            canceller.start();
            try {
                sqlstateOf(() -> st.executeQuery("SELECT counter FROM " + ENDLESS), "57014", "Statement.cancel()");
            } finally {
                done.set(true);
                canceller.join();
            }
            check(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(10), "cancel took too long");
            equal(query(conn, "SELECT 1"), List.of(List.of(1L)), "connection after cancel");
            // setQueryTimeout sends the same CancelRequest.
            st.setQueryTimeout(1);
            sqlstateOf(() -> st.executeQuery("SELECT counter FROM " + ENDLESS), "57014", "query timeout");
            st.setQueryTimeout(0);
            try (ResultSet rs = st.executeQuery("SELECT 2")) {
                check(rs.next(), "row");
                equal(rs.getLong(1), 2L, "statement after timeout");
            }
        }
    }

    static void cursorStep() throws Exception {
        // DECLARE / FETCH / CLOSE are simple-protocol statements: preferQueryMode=simple.
        try (Connection c = connect("preferQueryMode", "simple"); Statement st = c.createStatement()) {
            c.setAutoCommit(false);
            st.execute("DECLARE c NO SCROLL CURSOR FOR SELECT counter * 10 AS x FROM " + ENDLESS);
            try (ResultSet rs = st.executeQuery("FETCH 3 FROM c")) {
                equal(longs(rs), List.of(0L, 10L, 20L), "FETCH 3");
            }
            try (ResultSet rs = st.executeQuery("FETCH NEXT FROM c")) {
                equal(longs(rs), List.of(30L), "FETCH NEXT");
            }
            st.execute("CLOSE c");
            c.commit();
        }
        // Without preferQueryMode=simple, DECLARE and FETCH go through the extended protocol
        // (Parse/Bind/Describe/Execute); with prepareThreshold=-1 the FETCH results are binary.
        for (String threshold : new String[] {"5", "-1"}) {
            String what = " (prepareThreshold=" + threshold + ")";
            try (Connection c = connect("prepareThreshold", threshold)) {
                c.setAutoCommit(false);
                try (PreparedStatement ps = c.prepareStatement(
                        "DECLARE c CURSOR FOR SELECT counter * 10 AS x, counter * 1.5::float8 AS f FROM " + ENDLESS)) {
                    ps.execute();
                }
                try (PreparedStatement fetch = c.prepareStatement("FETCH 2 FROM c")) {
                    for (long first : new long[] {0, 2, 4}) {
                        try (ResultSet rs = fetch.executeQuery()) {
                            ResultSetMetaData md = rs.getMetaData();
                            equal(List.of(md.getColumnLabel(1), md.getColumnTypeName(1), md.getColumnTypeName(2)),
                                    List.of("x", "int8", "float8"), "FETCH columns" + what);
                            List<List<Object>> got = rows(rs);
                            equal(got, List.of(List.of(first * 10, first * 1.5), List.of(first * 10 + 10, first * 1.5 + 1.5)),
                                    "FETCH 2 from row " + first + what);
                        }
                    }
                }
                if (threshold.equals("-1")) {
                    try (PreparedStatement fetch = c.prepareStatement("FETCH 1 FROM c"); ResultSet rs = fetch.executeQuery()) {
                        equal(rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(1), 1, "binary FETCH" + what);
                        equal(rows(rs), List.of(List.of(60L, 9.0)), "binary FETCH 1" + what);
                    }
                }
                // FETCH from a cursor that does not exist: 34000, as in PostgreSQL.
                SQLException e = sqlstateOf(() -> {
                    try (PreparedStatement ps = c.prepareStatement("FETCH 1 FROM never_declared")) {
                        ps.executeQuery();
                    }
                }, "34000", "FETCH, no such cursor" + what);
                check(e.getMessage().contains("cursor \"never_declared\" does not exist"), "message: " + e.getMessage());
                // (CLOSE is simple-protocol only, and a COMMIT sent through the extended protocol,
                // as pgJDBC's commit() is, leaves the cursor open: docs/clients.md. Closing the
                // connection ends it.)
                c.rollback();
                c.setAutoCommit(true);
                equal(query(c, "SELECT 1"), List.of(List.of(1L)), "connection after the cursor" + what);
            }
        }
    }

    static void copyStep() throws Exception {
        StringWriter out = new StringWriter();
        long n = new CopyManager(conn.unwrap(BaseConnection.class)).copyOut(
                "COPY (SELECT counter, 'x,y' AS s FROM " + TICKS + " WHERE counter > 2) TO STDOUT WITH (FORMAT csv, HEADER)", out);
        equal(out.toString(), "counter,s\n3,\"x,y\"\n4,\"x,y\"\n", "COPY TO STDOUT output");
        equal(n, 2L, "COPY row count");
    }

    static void metadataStep() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        equal(md.getUserName(), USER, "user name");

        Set<String> schemas = new HashSet<>();
        try (ResultSet rs = md.getSchemas()) {
            while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
        }
        check(schemas.contains("public") && schemas.contains("pg_catalog"), "schemas: " + schemas);

        Set<String> tables = new HashSet<>();
        try (ResultSet rs = md.getTables(null, "public", "jdbc_%", new String[] {"TABLE"})) {
            while (rs.next()) {
                equal(rs.getString("TABLE_TYPE"), "TABLE", "TABLE_TYPE of " + rs.getString("TABLE_NAME"));
                tables.add(rs.getString("TABLE_NAME"));
            }
        }
        equal(tables, Set.of(TICKS, ENDLESS, SINK), "getTables(TABLE)");
        Set<String> views = new HashSet<>();
        try (ResultSet rs = md.getTables(null, "public", "jdbc_%", new String[] {"VIEW"})) {
            while (rs.next()) views.add(rs.getString("TABLE_NAME"));
        }
        equal(views, Set.of(VIEW), "getTables(VIEW)");

        // {column, java.sql.Types, TYPE_NAME, nullable}
        Object[][] expected = {
            {"id", Types.BIGINT, "int8", DatabaseMetaData.columnNoNulls},
            {"name", Types.VARCHAR, "text", DatabaseMetaData.columnNullable},
            {"price", Types.NUMERIC, "numeric", DatabaseMetaData.columnNullable},
            {"score", Types.DOUBLE, "float8", DatabaseMetaData.columnNullable},
            {"small", Types.SMALLINT, "int2", DatabaseMetaData.columnNullable},
            {"flag", Types.BIT, "bool", DatabaseMetaData.columnNullable},
            {"day", Types.DATE, "date", DatabaseMetaData.columnNullable},
            {"at", Types.TIMESTAMP, "timestamp", DatabaseMetaData.columnNullable},
            {"clock", Types.TIME, "time", DatabaseMetaData.columnNullable},
            {"blob", Types.BINARY, "bytea", DatabaseMetaData.columnNullable},
        };
        List<List<Object>> columns = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, "public", SINK, "%")) {
            while (rs.next()) {
                columns.add(List.of(rs.getString("COLUMN_NAME"), rs.getInt("DATA_TYPE"), rs.getString("TYPE_NAME"),
                        rs.getInt("NULLABLE")));
                equal(rs.getInt("ORDINAL_POSITION"), columns.size(), "ORDINAL_POSITION of " + rs.getString("COLUMN_NAME"));
            }
        }
        List<List<Object>> want = new ArrayList<>();
        for (Object[] e : expected) want.add(List.of(e));
        equal(columns, want, "getColumns");
        try (ResultSet rs = md.getColumns(null, "public", TICKS, "%")) {
            List<String> names = new ArrayList<>();
            while (rs.next()) names.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
            equal(names, List.of("counter int8", "subtask_index int8", "timestamp timestamp"), "getColumns of a source");
        }
        try (ResultSet rs = md.getPrimaryKeys(null, "public", TICKS)) {
            check(!rs.next(), "a Laminar table has no primary key");
        }
        try (ResultSet rs = md.getCatalogs()) {
            check(rs.next(), "a catalog");
            equal(rs.getString(1), "laminar", "catalog name");
        }
    }

    static void cleanupStep() throws Exception {
        execute("DROP VIEW " + VIEW);
        execute("DROP TABLE " + TICKS + ", " + ENDLESS + ", " + SINK);
        conn.close();
    }

    static void tlsLoginStep() throws Exception {
        check(SSLROOTCERT != null && !SSLROOTCERT.isEmpty(), "LAMINAR_SSLROOTCERT is not set");
        // sslmode=verify-full: the connection fails unless it is TLS with a verified certificate.
        try (Connection c = connect()) {
            equal(query(c, "SELECT 1, current_user"), List.of(List.of(1L, USER)), "SELECT 1, current_user");
        }
    }

    static void wrongPasswordStep() throws Exception {
        SQLException e = sqlstateOf(() -> connect("password", (PASSWORD == null ? "" : PASSWORD) + "-wrong").close(),
                "28P01", "wrong password");
        // pgJDBC sends '*' as the SCRAM user name: the server names the login user all the same.
        check(e.getMessage().toLowerCase().contains("password authentication failed for user \"" + USER.toLowerCase() + "\""),
                "message: " + e.getMessage());
    }

    public static void main(String[] args) {
        Object[][] loginSteps = {
            {"TLS and password login", (SqlRunnable) DriverTest::tlsLoginStep},
            {"wrong password refused", (SqlRunnable) DriverTest::wrongPasswordStep},
        };
        Object[][] allSteps = {
            {"connect", (SqlRunnable) DriverTest::connectStep},
            {"create tables", (SqlRunnable) DriverTest::setupStep},
            {"simple query, ResultSetMetaData", (SqlRunnable) DriverTest::simpleQueryStep},
            {"parameterised queries", (SqlRunnable) DriverTest::parametersStep},
            {"prepared statement reused (binary)", (SqlRunnable) DriverTest::preparedStatementStep},
            {"every type, text and binary", (SqlRunnable) DriverTest::typesStep},
            {"PostgreSQL column names (ResultSetMetaData)", (SqlRunnable) DriverTest::columnNamesStep},
            {"NULLs", (SqlRunnable) DriverTest::nullsStep},
            {"errors carry SQLSTATEs", (SqlRunnable) DriverTest::errorsStep},
            {"fetch size streams, close early", (SqlRunnable) DriverTest::streamStep},
            {"cancel a running query", (SqlRunnable) DriverTest::cancelStep},
            {"DECLARE / FETCH / CLOSE", (SqlRunnable) DriverTest::cursorStep},
            {"COPY TO STDOUT (CopyManager)", (SqlRunnable) DriverTest::copyStep},
            {"DatabaseMetaData", (SqlRunnable) DriverTest::metadataStep},
            {"drop tables", (SqlRunnable) DriverTest::cleanupStep},
        };
        Object[][] steps = args.length > 0 && args[0].equals("tls-login") ? loginSteps : allSteps;
        for (Object[] step : steps) {
            long started = System.nanoTime();
            try {
                ((SqlRunnable) step[1]).run();
            } catch (CheckFailed e) {
                System.err.println("jdbc: FAIL in '" + step[0] + "': " + e.getMessage());
                System.exit(1);
            } catch (Throwable e) {
                System.err.println("jdbc: FAIL in '" + step[0] + "': " + e);
                e.printStackTrace();
                System.exit(1);
            }
            System.out.printf("jdbc: ok   %s (%.2fs)%n", step[0], (System.nanoTime() - started) / 1e9);
        }
        System.out.println("jdbc: " + steps.length + " passed, 0 failed");
    }
}
