// oprec_fdw through pgJDBC (Debian's libpostgresql-jdbc-java), as Java BI
// tools reach it: metadata, server-side prepared statements (generic plans
// too), fetch sizes, the wrappers BI tools write, cancel, ids past 2^53 and
// joins with local tables.  Run by test/drivers/run.sh inside pg_virtualenv
// after it created the foreign tables; every result is compared with the
// API simulator's own data (/_sim/truth/...).  Prints one line per check,
// "ok - NAME" or "not ok - NAME: WHY"; run.sh counts them.

import java.math.BigDecimal;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.*;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;
import java.util.function.Predicate;

public class JdbcTest {
    static final String SIM = System.getenv("OPREC_SIM_URL");
    static final String P = "pgjdbc: ";
    static final long DAY_MS = 86400000L;
    static final String[][] FEISHU_COLS = {{"project_key", "text"}, {"work_item_id", "int8"},
        {"work_item_type_key", "text"}, {"operation_time", "timestamptz"}, {"operator", "text"},
        {"operator_type", "text"}, {"operation_type", "text"}, {"op_record_module", "text"},
        {"source_type", "text"}, {"source", "text"}, {"record_contents", "jsonb"}};
    static final String[][] HUAWEI_COLS = {{"project_id", "text"}, {"issue_id", "int8"},
        {"journal_id", "int8"}, {"created_on", "timestamptz"}, {"notes", "text"}, {"user_id", "int8"},
        {"user_name", "text"}, {"user_nick_name", "text"}, {"user_first_name", "text"},
        {"user_identifier", "text"}, {"detail_id", "int8"}, {"property", "text"}, {"field_name", "text"},
        {"operation", "text"}, {"old_value", "text"}, {"new_value", "text"}};

    // --- the simulator ------------------------------------------------------

    static final HttpClient HTTP = HttpClient.newHttpClient();

    static String sim(String method, String path, String body) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(SIM + path))
            .header("Content-Type", "application/json")
            .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
            .build();
        HttpResponse<String> resp = HTTP.send(req, HttpResponse.BodyHandlers.ofString());
        if (resp.statusCode() != 200) throw new IllegalStateException(path + " answered " + resp.statusCode());
        return resp.body();
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> simLines(String path) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String line : sim("GET", path, null).split("\n"))
            if (!line.isBlank()) out.add((Map<String, Object>) new Json(line).value());
        return out;
    }

    /** API requests logged since the last /_sim/reset whose api starts with api. */
    static long apiRequests(String api) throws Exception {
        return simLines("/_sim/requests").stream().filter(r -> ((String) r.get("api")).startsWith(api)).count();
    }

    /** A minimal JSON reader: objects, arrays, strings, exact numbers (BigDecimal). */
    static final class Json {
        final String s;
        int i;
        Json(String s) { this.s = s; }

        Object value() {
            skip();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new TreeMap<>();
                i++;
                for (skip(); s.charAt(i) != '}'; skip()) {
                    String k = (String) value();
                    skip(); i++;               // ':'
                    m.put(k, value());
                    skip();
                    if (s.charAt(i) == ',') i++;
                }
                i++;
                return m;
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                for (skip(); s.charAt(i) != ']'; skip()) {
                    l.add(value());
                    skip();
                    if (s.charAt(i) == ',') i++;
                }
                i++;
                return l;
            }
            if (c == '"') {
                StringBuilder b = new StringBuilder();
                for (i++; s.charAt(i) != '"'; i++) {
                    char ch = s.charAt(i);
                    if (ch != '\\') { b.append(ch); continue; }
                    ch = s.charAt(++i);
                    switch (ch) {
                        case 'n': b.append('\n'); break;
                        case 't': b.append('\t'); break;
                        case 'r': b.append('\r'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'u': b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16)); i += 4; break;
                        default: b.append(ch);
                    }
                }
                i++;
                return b.toString();
            }
            for (String word : new String[] {"true", "false", "null"})
                if (s.startsWith(word, i)) {
                    i += word.length();
                    return word.equals("null") ? null : Boolean.valueOf(word);
                }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            return new BigDecimal(s.substring(start, i));
        }

        void skip() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }
    }

    /** A JSON value as one string: keys sorted, numbers compared by value. */
    static String canon(Object v) {
        if (v instanceof Map) {
            StringJoiner j = new StringJoiner(",", "{", "}");
            ((Map<?, ?>) v).forEach((k, x) -> j.add(canon(k) + ":" + canon(x)));
            return j.toString();
        }
        if (v instanceof List) {
            StringJoiner j = new StringJoiner(",", "[", "]");
            for (Object x : (List<?>) v) j.add(canon(x));
            return j.toString();
        }
        if (v instanceof String) return '"' + ((String) v).replace("\\", "\\\\").replace("\"", "\\\"") + '"';
        if (v instanceof BigDecimal) return ((BigDecimal) v).stripTrailingZeros().toString();
        return String.valueOf(v);
    }

    // --- the truth: every row, each column as a string -----------------------

    static List<Map<String, String>> feishu = new ArrayList<>(), huawei = new ArrayList<>();
    static List<Long> ids, fetchIds, ids120, ids5, issues5, bigIds = new ArrayList<>();
    static long longest, t1, t2;

    static String num(Object v) { return v == null ? null : ((BigDecimal) v).toBigIntegerExact().toString(); }

    @SuppressWarnings("unchecked")
    static void loadTruth() throws Exception {
        for (Map<String, Object> r : simLines("/_sim/truth/feishu")) {
            if (!"proj_alpha".equals(r.get("project_key"))) continue;
            Map<String, String> row = new HashMap<>();
            for (String[] c : FEISHU_COLS) {
                Object v = r.get(c[0]);
                row.put(c[0], c[1].equals("jsonb") ? canon(v) : v instanceof BigDecimal ? num(v) : (String) v);
            }
            feishu.add(row);
        }
        for (Map<String, Object> h : simLines("/_sim/truth/huawei")) {
            if (!"c15cc54e338d4506afd9bd8103071ff0".equals(h.get("project_id"))) continue;
            Map<String, Object> e = (Map<String, Object>) h.get("entry"), user = (Map<String, Object>) e.get("user");
            Map<String, String> entry = new HashMap<>(Map.of("project_id", (String) h.get("project_id"),
                "issue_id", num(h.get("issue_id")), "journal_id", num(e.get("id")),
                "created_on", (String) e.get("created_on")));
            entry.put("notes", (String) e.get("notes"));
            entry.put("user_id", num(user.get("id")));
            for (String k : new String[] {"name", "nick_name", "first_name", "identifier"})
                entry.put("user_" + k, (String) user.get(k));
            List<Map<String, Object>> details = (List<Map<String, Object>>) e.get("details");
            if (details == null || details.isEmpty()) details = Collections.singletonList(Map.of());
            for (Map<String, Object> d : details) {
                Map<String, String> row = new HashMap<>(entry);
                row.put("detail_id", num(d.get("id")));
                row.put("field_name", (String) d.get("name"));
                for (String k : new String[] {"property", "operation", "old_value", "new_value"})
                    row.put(k, (String) d.get(k));
                huawei.add(row);
            }
        }

        // What the checks ask for, chosen from the data as psycopg2_test.py does.
        Map<Long, Integer> counts = new TreeMap<>();
        for (Map<String, String> r : feishu) counts.merge(Long.parseLong(r.get("work_item_id")), 1, Integer::sum);
        ids = new ArrayList<>(counts.keySet());
        fetchIds = ids.subList(0, 20);
        longest = Collections.max(counts.entrySet(), Map.Entry.comparingByValue()).getKey();
        for (long id : ids) if (id > (1L << 53)) bigIds.add(id);
        ids120 = ids.subList(0, 120);
        t1 = floorDay(medianTime(ids120));
        t2 = t1 + 12 * DAY_MS;
        TreeSet<Long> inWindow = new TreeSet<>();
        for (Map<String, String> r : feishu) {
            long id = Long.parseLong(r.get("work_item_id")), t = Long.parseLong(r.get("operation_time"));
            if (ids120.contains(id) && t1 <= t && t < t2) inWindow.add(id);
        }
        ids5 = new ArrayList<>(inWindow).subList(0, 5);
        TreeSet<Long> issues = new TreeSet<>();
        for (Map<String, String> r : huawei) issues.add(Long.parseLong(r.get("issue_id")));
        issues5 = new ArrayList<>(issues).subList(0, 5);
        if (bigIds.isEmpty()) throw new IllegalStateException("no work item id past 2^53 in the truth");
    }

    static long medianTime(Collection<Long> of) {
        List<Long> times = new ArrayList<>();
        for (Map<String, String> r : feishu)
            if (of.contains(Long.parseLong(r.get("work_item_id")))) times.add(Long.parseLong(r.get("operation_time")));
        Collections.sort(times);
        return times.get(times.size() / 2);
    }

    static long floorDay(long ms) { return Math.floorDiv(ms, DAY_MS) * DAY_MS; }

    static List<List<String>> rows(List<Map<String, String>> table, String[][] cols, Predicate<Map<String, String>> keep) {
        List<List<String>> out = new ArrayList<>();
        for (Map<String, String> r : table) {
            if (!keep.test(r)) continue;
            List<String> row = new ArrayList<>();
            for (String[] c : cols) row.add(r.get(c[0]));
            out.add(row);
        }
        return out;
    }

    static List<List<String>> feishuRows(Collection<Long> of, Long from, Long to) {
        Set<String> keys = new HashSet<>();
        for (long id : of) keys.add(Long.toString(id));
        return rows(feishu, FEISHU_COLS, r -> keys.contains(r.get("work_item_id"))
            && (from == null || from <= Long.parseLong(r.get("operation_time")) && Long.parseLong(r.get("operation_time")) < to));
    }

    static List<List<String>> huaweiRows(Collection<Long> of) {
        Set<String> keys = new HashSet<>();
        for (long id : of) keys.add(Long.toString(id));
        return rows(huawei, HUAWEI_COLS, r -> keys.contains(r.get("issue_id")));
    }

    /** 13 runs of (ids, start, end) as array_time_runs() of psycopg2_test.py. */
    static List<Object[]> arrayTimeRuns() {
        List<Object[]> runs = new ArrayList<>();
        for (int k = 0; k < 13; k++) {
            List<Long> of = new ArrayList<>();
            for (int j = 0; j < 4; j++) of.add(ids.get((4 * k + j) % ids.size()));
            long start = floorDay(medianTime(of));
            runs.add(new Object[] {of, start, start + (10 + k) * DAY_MS});
        }
        return runs;
    }

    // --- reading and comparing rows -----------------------------------------

    static List<List<String>> read(ResultSet rs) throws Exception {
        ResultSetMetaData md = rs.getMetaData();
        List<List<String>> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int c = 1; c <= md.getColumnCount(); c++) {
                String type = md.getColumnTypeName(c);
                if (type.equals("int8")) {
                    long v = rs.getLong(c);
                    row.add(rs.wasNull() ? null : Long.toString(v));
                } else if (type.equals("timestamptz")) {
                    OffsetDateTime v = rs.getObject(c, OffsetDateTime.class);
                    row.add(v == null ? null : Long.toString(v.toInstant().toEpochMilli()));
                } else if (type.equals("jsonb")) {
                    String v = rs.getString(c);
                    row.add(v == null ? null : canon(new Json(v).value()));
                } else {
                    row.add(rs.getString(c));
                }
            }
            out.add(row);
        }
        rs.close();
        return out;
    }

    static Map<List<String>, Integer> multiset(List<List<String>> rows) {
        Map<List<String>, Integer> m = new HashMap<>();
        for (List<String> r : rows) m.merge(r, 1, Integer::sum);
        return m;
    }

    static void sameRows(List<List<String>> got, List<List<String>> want) {
        if (want.isEmpty()) throw new AssertionError("the truth has no row for this query (bad test data)");
        Map<List<String>, Integer> g = multiset(got), w = multiset(want);
        if (g.equals(w)) return;
        int missing = 0, extra = 0;
        for (Map.Entry<List<String>, Integer> e : w.entrySet()) missing += Math.max(0, e.getValue() - g.getOrDefault(e.getKey(), 0));
        for (Map.Entry<List<String>, Integer> e : g.entrySet()) extra += Math.max(0, e.getValue() - w.getOrDefault(e.getKey(), 0));
        throw new AssertionError(got.size() + " rows, expected " + want.size() + ": " + missing + " missing, " + extra + " extra");
    }

    static void subset(List<List<String>> got, List<List<String>> want) {
        Map<List<String>, Integer> w = multiset(want);
        for (Map.Entry<List<String>, Integer> e : multiset(got).entrySet())
            expect(e.getValue() <= w.getOrDefault(e.getKey(), 0), "a row not in the truth: " + e.getKey());
    }

    static void expect(boolean cond, String why) { if (!cond) throw new AssertionError(why); }

    interface Check { String run() throws Exception; }

    static void check(String name, Check c) {
        try {
            String note = c.run();
            System.out.println("ok - " + name + (note == null ? "" : " (" + note + ")"));
        } catch (Throwable e) {
            String why = (e instanceof SQLException ? "SQLSTATE " + ((SQLException) e).getSQLState() + ": " : "")
                + (e instanceof AssertionError ? e.getMessage() : e.toString());
            why = why.replaceAll("\\s+", " ");
            System.out.println("not ok - " + name + ": " + why.substring(0, Math.min(600, why.length())));
        }
        System.out.flush();
    }

    static OffsetDateTime odt(long ms) { return Instant.ofEpochMilli(ms).atOffset(ZoneOffset.UTC); }

    static Connection conn;

    static List<List<String>> query(String sql, Object... params) throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            for (int k = 0; k < params.length; k++) ps.setObject(k + 1, params[k]);
            return read(ps.executeQuery());
        }
    }

    static void execute(String sql) throws Exception {
        try (Statement st = conn.createStatement()) { st.execute(sql); }
    }

    static void table(String name, List<Long> of) throws Exception {
        StringJoiner values = new StringJoiner(", ");
        for (long id : of) values.add("(" + id + ")");
        execute("DROP TABLE IF EXISTS " + name + "; CREATE TABLE " + name + " (id bigint); INSERT INTO " + name
            + " VALUES " + values + "; ANALYZE " + name);
    }

    // --- the checks ----------------------------------------------------------

    public static void main(String[] args) throws Exception {
        loadTruth();
        Properties props = new Properties();
        props.setProperty("user", System.getenv("PGUSER"));
        props.setProperty("password", System.getenv("PGPASSWORD"));
        props.setProperty("prepareThreshold", "1");     // named server-side statements from the first run
        conn = DriverManager.getConnection("jdbc:postgresql://localhost:" + System.getenv("PGPORT") + "/"
            + System.getenv("PGDATABASE"), props);
        table("my_items", ids5);
        table("my_items_120", ids120);
        table("my_issues", issues5);

        // 1. metadata
        check(P + "DatabaseMetaData.getTables(FOREIGN TABLE) and getColumns", () -> {
            DatabaseMetaData md = conn.getMetaData();
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"FOREIGN TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME") + "/" + rs.getString("TABLE_TYPE"));
            }
            Collections.sort(tables);
            expect(tables.equals(List.of("feishu_op_records/FOREIGN TABLE", "huawei_issue_records/FOREIGN TABLE")),
                "tables " + tables);
            for (Object[] t : new Object[][] {{"feishu_op_records", FEISHU_COLS}, {"huawei_issue_records", HUAWEI_COLS}}) {
                List<String> got = new ArrayList<>(), want = new ArrayList<>();
                try (ResultSet rs = md.getColumns(null, "public", (String) t[0], "%")) {
                    while (rs.next()) got.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME"));
                }
                for (String[] c : (String[][]) t[1]) want.add(c[0] + " " + c[1]);
                expect(got.equals(want), t[0] + " columns " + got);
            }
            return null;
        });

        // 2. server-side prepared statements: 10 runs with different values
        // (the planner may switch to the generic plan), 3 more with the
        // generic plan forced; pg_prepared_statements tells which were used
        check(P + "PreparedStatement work_item_id = ? (setLong), 13 ids", () -> {
            String sql = "SELECT * FROM feishu_op_records WHERE work_item_id = ?";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int k = 0; k < 13; k++) {
                    if (k == 10) execute("SET plan_cache_mode = force_generic_plan");
                    ps.setLong(1, ids.get(k));
                    sameRows(read(ps.executeQuery()), feishuRows(List.of(ids.get(k)), null, null));
                }
            } finally {
                execute("RESET plan_cache_mode");
            }
            return plans("%WHERE work_item_id = $1");
        });
        check(P + "PreparedStatement work_item_id = ANY (?) (createArrayOf) AND operation_time >= ? AND < ? (OffsetDateTime), 13 runs", () -> {
            String sql = "SELECT * FROM feishu_op_records WHERE work_item_id = ANY (?) AND operation_time >= ? AND operation_time < ?";
            List<Object[]> runs = arrayTimeRuns();
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int k = 0; k < runs.size(); k++) {
                    if (k == 10) execute("SET plan_cache_mode = force_generic_plan");
                    @SuppressWarnings("unchecked") List<Long> of = (List<Long>) runs.get(k)[0];
                    long from = (Long) runs.get(k)[1], to = (Long) runs.get(k)[2];
                    ps.setArray(1, conn.createArrayOf("bigint", of.toArray()));
                    ps.setObject(2, odt(from));
                    ps.setObject(3, odt(to));
                    sameRows(read(ps.executeQuery()), feishuRows(of, from, to));
                }
            } finally {
                execute("RESET plan_cache_mode");
            }
            return plans("%work_item_id = ANY ($1) AND operation_time >= $2 AND operation_time < $3");
        });

        // 3. a fetch size: a portal read 50 rows at a time
        check(P + "setFetchSize(50) with autocommit off over 20 work items", () -> {
            List<List<String>> want = feishuRows(fetchIds, null, null);
            expect(want.size() >= 200, "only " + want.size() + " rows in the truth for 20 work items");
            conn.setAutoCommit(false);
            List<List<String>> got;
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM feishu_op_records WHERE work_item_id = ANY (?)")) {
                ps.setFetchSize(50);
                ps.setArray(1, conn.createArrayOf("bigint", fetchIds.toArray()));
                got = read(ps.executeQuery());
                conn.commit();
            } finally {
                conn.rollback();
                conn.setAutoCommit(true);
            }
            sameRows(got, want);
            return got.size() + " rows";
        });

        // 4. the wrappers BI tools put around a query
        StringJoiner in = new StringJoiner(", ");
        for (long id : fetchIds) in.add(Long.toString(id));
        String inner = "SELECT * FROM feishu_op_records WHERE work_item_id IN (" + in + ")";
        check(P + "SELECT * FROM (query) sub LIMIT n and SELECT count(*) FROM (query) sub", () -> {
            List<List<String>> want = feishuRows(fetchIds, null, null), got = query("SELECT * FROM (" + inner + ") sub LIMIT 17");
            expect(got.size() == 17, "LIMIT 17 gave " + got.size() + " rows");
            subset(got, want);
            got = query("SELECT count(*) FROM (" + inner + ") sub");
            expect(got.get(0).get(0).equals(Integer.toString(want.size())), "count(*) gave " + got + ", the truth has " + want.size());
            return null;
        });
        check(P + "metadata probes without ids (LIMIT 0, getMetaData), LIMIT 5 over the longest history in one request", () -> {
            sim("POST", "/_sim/reset", null);
            List<String> want = new ArrayList<>();
            for (String[] c : FEISHU_COLS) want.add(c[0] + " " + c[1]);
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM (SELECT * FROM feishu_op_records) sub LIMIT 0")) {
                ResultSet rs = ps.executeQuery();
                expect(columns(rs.getMetaData()).equals(want) && !rs.next(), "LIMIT 0: wrong columns or rows");
            }
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM feishu_op_records")) {
                expect(columns(ps.getMetaData()).equals(want), "getMetaData: wrong columns");
            }
            List<List<String>> got = query("SELECT * FROM (SELECT * FROM feishu_op_records WHERE work_item_id = ?) sub LIMIT 5", longest);
            expect(got.size() == 5, "LIMIT 5 gave " + got.size() + " rows");
            subset(got, feishuRows(List.of(longest), null, null));
            long n = apiRequests("feishu");
            expect(n <= 1, n + " API requests for the probes and LIMIT 5");
            return n + " request";
        });

        // 5. Statement.cancel() while the API is slow
        check(P + "Statement.cancel() during a slow request: 57014, then the connection works", () -> {
            sim("POST", "/_sim/config", "{\"delay_ms\": 3000}");
            long started = System.nanoTime();
            double elapsed;
            try (Statement st = conn.createStatement()) {
                Thread canceller = new Thread(() -> {
                    try { Thread.sleep(500); st.cancel(); } catch (Exception e) { e.printStackTrace(); }
                });
                canceller.start();
                try {
                    st.executeQuery("SELECT count(*) FROM feishu_op_records WHERE work_item_id = " + ids.get(0));
                    throw new AssertionError("the query was not cancelled");
                } catch (SQLException e) {
                    elapsed = (System.nanoTime() - started) / 1e9;
                    expect("57014".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
                } finally {
                    canceller.join();
                    sim("POST", "/_sim/config", "{\"delay_ms\": 0}");
                }
            }
            expect(elapsed < 2.5, "the cancel took " + elapsed + " s");
            sameRows(query("SELECT * FROM feishu_op_records WHERE work_item_id = ?", ids.get(1)),
                feishuRows(List.of(ids.get(1)), null, null));
            return String.format("cancelled after %.2f s", elapsed);
        });

        // 6. ids past 2^53
        check(P + "work item ids past 2^53 arrive exact as long", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT * FROM feishu_op_records WHERE work_item_id = ANY (?)")) {
                for (long id : bigIds) {
                    ps.setArray(1, conn.createArrayOf("bigint", new Long[] {id}));
                    ResultSet rs = ps.executeQuery();
                    int n = 0;
                    for (; rs.next(); n++) {
                        expect(rs.getLong("work_item_id") == id, "read " + rs.getLong("work_item_id") + ", not " + id);
                        expect(Long.valueOf(id).equals(rs.getObject("work_item_id")), "getObject: " + rs.getObject("work_item_id"));
                    }
                    expect(n == feishuRows(List.of(id), null, null).size(), n + " rows for " + id);
                }
            }
            return bigIds.toString();
        });

        // 7. joins with local tables, as BI tools write them (the time range
        // as parameters, as JDBC tools send it)
        String window = " r.operation_time >= ? AND r.operation_time < ?";
        List<List<String>> feishu5 = feishuRows(ids5, t1, t2);
        Object[][] joins = {
            {"JOIN my_items (5 ids) with a 12-day window",
             "SELECT r.* FROM my_items m JOIN feishu_op_records r ON r.work_item_id = m.id WHERE" + window, feishu5},
            {"work_item_id IN (SELECT id FROM my_items)",
             "SELECT r.* FROM feishu_op_records r WHERE r.work_item_id IN (SELECT id FROM my_items) AND" + window, feishu5},
            {"EXISTS (SELECT 1 FROM my_items ...)",
             "SELECT r.* FROM feishu_op_records r WHERE EXISTS (SELECT 1 FROM my_items m WHERE m.id = r.work_item_id) AND" + window, feishu5},
        };
        for (Object[] j : joins) {
            @SuppressWarnings("unchecked") List<List<String>> want = (List<List<String>>) j[2];
            check(P + j[0], () -> { sameRows(query((String) j[1], odt(t1), odt(t2)), want); return null; });
        }
        check(P + "JOIN my_issues (5 ids) with huawei_issue_records", () -> {
            sameRows(query("SELECT r.* FROM my_issues m JOIN huawei_issue_records r ON r.issue_id = m.id"), huaweiRows(issues5));
            return null;
        });
        List<List<String>> want120 = feishuRows(ids120, t1, t2);
        long[] anyCount = {-1};
        check(P + "= ANY (ARRAY(SELECT id FROM my_items_120)) with a 12-day window", () -> {
            anyCount[0] = countedRequests("SELECT r.* FROM feishu_op_records r WHERE r.work_item_id = ANY (ARRAY(SELECT id FROM my_items_120)) AND" + window, want120);
            return anyCount[0] + " API requests";
        });
        check(P + "JOIN my_items_120 with a 12-day window, no more requests than = ANY (ARRAY(...))", () -> {
            long n = countedRequests("SELECT r.* FROM my_items_120 m JOIN feishu_op_records r ON r.work_item_id = m.id WHERE" + window, want120);
            expect(anyCount[0] >= 0, "no count for the = ANY (ARRAY(...)) form");
            expect(n <= anyCount[0], "the join made " + n + " API requests, = ANY (ARRAY(...)) " + anyCount[0]);
            return n + " API requests, = ANY (ARRAY(...)) " + anyCount[0];
        });
        conn.close();
    }

    static List<String> columns(ResultSetMetaData md) throws Exception {
        List<String> out = new ArrayList<>();
        for (int c = 1; c <= md.getColumnCount(); c++) out.add(md.getColumnName(c) + " " + md.getColumnTypeName(c));
        return out;
    }

    /** The generic and custom plans of this session's prepared statement like pattern. */
    static String plans(String pattern) throws Exception {
        List<List<String>> got = query("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE ?", pattern);
        expect(got.size() == 1, "prepared statements like " + pattern + ": " + got);
        List<String> p = got.get(0);
        int generic = Integer.parseInt(p.get(1)), custom = Integer.parseInt(p.get(2));
        expect(generic >= 3 && generic + custom == 13, generic + " generic, " + custom + " custom plans");
        return "server statement " + p.get(0) + ": " + generic + " generic, " + custom + " custom plans";
    }

    /** Runs the query with the 12-day window; the API requests it made. */
    static long countedRequests(String sql, List<List<String>> want) throws Exception {
        sim("POST", "/_sim/reset", null);
        sameRows(query(sql, odt(t1), odt(t2)), want);
        return apiRequests("feishu");
    }
}
