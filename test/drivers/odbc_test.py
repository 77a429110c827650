#!/usr/bin/python3
"""oprec_fdw through psqlODBC (Debian's odbc-postgresql, unixODBC) and
pyodbc, as ODBC BI tools reach it: rows of listed work items, ids past 2^53
and a LIMIT 0 probe.  Run by test/drivers/run.sh inside pg_virtualenv after
it created the foreign tables; compares with the simulator's truth through
the helpers of psycopg2_test.py.  Prints "ok - NAME" / "not ok - NAME: WHY".
"""
import os

import pyodbc

from psycopg2_test import FEISHU_COLS, Truth, check, expect, row_of, same_rows

P = "odbc: "


def main():
    truth = Truth()
    conn = pyodbc.connect("Driver=PostgreSQL Unicode;Server=localhost;Port={PGPORT};Database={PGDATABASE};"
                          "Uid={PGUSER};Pwd={PGPASSWORD}".format(**os.environ), autocommit=True)
    cur = conn.cursor()
    cur.execute("SET timezone = 'UTC'")      # psqlODBC gives timestamptz as local, naive datetimes
    jsonb = [k for k, (_, t) in enumerate(FEISHU_COLS) if t == "jsonb"]

    def fetch(sql, *params):
        cur.execute(sql, *params)
        return [row_of(tuple(r), jsonb) for r in cur.fetchall()]

    ids = truth.fetch_ids[:5] + truth.big_ids
    check(P + "rows of listed work items, ids past 2^53 included",
          lambda: same_rows(fetch("SELECT * FROM feishu_op_records WHERE work_item_id IN (%s)"
                                  % ", ".join("?" * len(ids)), *ids), truth.feishu_rows(ids)))

    def limit_0():
        cur.execute("SELECT * FROM (SELECT * FROM feishu_op_records) sub LIMIT 0")
        got = [d[0] for d in cur.description]
        expect(got == [c for c, _ in FEISHU_COLS] and cur.fetchall() == [], f"columns {got}")
    check(P + "LIMIT 0 probe without ids", limit_0)
    conn.close()


if __name__ == "__main__":
    main()
