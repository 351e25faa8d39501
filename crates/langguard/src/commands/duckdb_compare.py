"""The dashboard's aggregates in DuckDB, over LangGuard's own CSV export turned into Parquet.

Run by `langguard bench queries --duckdb`, which passes the CSV path, the runs per query and
the 30-day window; prints one line per figure in the bench's format.
"""

import statistics
import sys
import time

import duckdb

csv_path, parquet_path, runs, start_ms, end_ms = (
    sys.argv[1],
    sys.argv[2],
    int(sys.argv[3]),
    int(sys.argv[4]),
    int(sys.argv[5]),
)

con = duckdb.connect()
started = time.perf_counter()
con.execute(
    f"""COPY (SELECT * FROM read_csv('{csv_path}', header = true,
              types = {{'metadata': 'VARCHAR', 'path': 'VARCHAR', 'cost_source': 'VARCHAR'}}))
        TO '{parquet_path}' (FORMAT parquet)"""
)
print(f"{(time.perf_counter() - started) * 1e3:>9.1f} ms  DuckDB: CSV export to Parquet (once)")

WINDOW = f"created_at >= epoch_ms({start_ms}) AND created_at < epoch_ms({end_ms})"

QUERIES = [
    (
        "metrics over 30 days, exact percentiles",
        f"""SELECT count(*), count(*) FILTER (status = 'error'), count(*) FILTER (cached),
                   count(*) FILTER (status_code = 429), sum(tokens_in), sum(tokens_out),
                   sum(cost_usd), avg(duration_ms),
                   quantile_cont(duration_ms, [0.5, 0.9, 0.95, 0.99])
            FROM '{parquet_path}' WHERE {WINDOW}""",
    ),
    (
        "metrics over 30 days, approximate percentiles",
        f"""SELECT count(*), count(*) FILTER (status = 'error'), count(*) FILTER (cached),
                   count(*) FILTER (status_code = 429), sum(tokens_in), sum(tokens_out),
                   sum(cost_usd), avg(duration_ms),
                   approx_quantile(duration_ms, [0.5, 0.9, 0.95, 0.99])
            FROM '{parquet_path}' WHERE {WINDOW}""",
    ),
    (
        "hourly time series over 30 days, grouped by model",
        f"""SELECT model, date_trunc('hour', created_at) AS t, count(*),
                   count(*) FILTER (status = 'error'), count(*) FILTER (cached),
                   sum(tokens_in), sum(tokens_out), sum(cost_usd),
                   approx_quantile(duration_ms, [0.5, 0.95, 0.99])
            FROM '{parquet_path}' WHERE {WINDOW} GROUP BY ALL""",
    ),
    (
        "breakdown by model over 30 days",
        f"""SELECT model, count(*), count(*) FILTER (status = 'error'), sum(cost_usd),
                   approx_quantile(duration_ms, [0.5, 0.9, 0.95, 0.99])
            FROM '{parquet_path}' WHERE {WINDOW} GROUP BY model""",
    ),
]

for label, sql in QUERIES:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = con.execute(sql).fetchall()
        times.append((time.perf_counter() - started) * 1e3)
    # The row count shows both engines answered over the same data.
    detail = f"{rows[0][0]:,} requests" if len(rows) == 1 else f"{len(rows):,} rows"
    print(f"{statistics.median(times):>9.1f} ms  DuckDB: {label} ({detail})")
