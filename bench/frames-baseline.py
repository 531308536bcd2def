"""Polars baseline for `npm run bench -- frames`: the same operations as the server, on the same files.

Usage: python frames-baseline.py <work dir> <format: csv|parquet>
Prints one JSON object: operation -> median seconds of 3 rounds (Polars imported once, outside the timing).
"""
import json
import statistics
import sys
import time

import polars as pl

work, fmt = sys.argv[1], sys.argv[2]
path = f"{work}/v1.{fmt}"
edited_out = f"{work}/polars-edited.{fmt}"


def scan(p):
    return pl.scan_csv(p) if p.endswith(".csv") else pl.scan_parquet(p)


def first_page():
    scan(path).head(100).collect().to_dicts()
    scan(path).select(pl.len()).collect()


def filtered_page():
    q = scan(path).filter(pl.col("category") == 42)
    q.head(100).collect().to_dicts()
    q.select(pl.len()).collect()


def group_by():
    scan(path).group_by("category").agg(pl.len(), pl.col("score").mean()).collect()


def index():
    # Polars' counterpart of indexing: the whole frame in memory with a row id.
    return scan(path).with_row_index("_row").collect()


def edit_and_write():
    df = index()
    ids = list(range(0, 1_000_000, 1000))
    df = df.with_columns(pl.when(pl.col("id").is_in(ids)).then(pl.lit("edited")).otherwise(pl.col("tag")).alias("tag")).drop("_row")
    df.write_csv(edited_out) if fmt == "csv" else df.write_parquet(edited_out)


def diff():
    a, b = scan(path), scan(f"{work}/v2.{fmt}")
    joined = a.join(b, on="id", how="full", suffix="_b", coalesce=True)
    cols = [c for c in a.collect_schema().names() if c != "id"]
    changed = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_b")) for c in cols])
    joined.filter(changed).select(pl.len()).collect()


def median(fn):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


print(json.dumps({
    "first_page": median(first_page),
    "filtered_page": median(filtered_page),
    "group_by": median(group_by),
    "index": median(index),
    "edit_commit": median(edit_and_write),
    "batch_edit_commit": median(edit_and_write),
    "diff": median(diff),
}))
