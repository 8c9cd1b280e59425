#!/usr/bin/env python3
"""The medians of a bench script's rounds: one summary row per cell.

    bench/summarize.py RAW_CSV OUT_CSV KEY[,KEY...]

RAW_CSV has one row per run (echo.sh, http.sh, static.sh write them: a
`round` column and the measured ones); a cell is the rows that agree on
every KEY column (e.g. client,server,conns,pipeline). For each cell, in the
order the cells first appear:

- the KEY columns and `rounds` (how many rows the cell has);
- `per_cpu_median/min/max` and `rps_median/min/max`;
- `server_cpu_median`, `p99_median` (over the rounds that have one; `-`
  when none do: only some clients report a p99), `errors` (the sum);
- when RAW has them: `foreign_median/max`, `user_share_median`;
- `client_us_median`.

The median of an even count is the mean of the two middle values, as
lib.sh's `spread`; `-` and `nan` (not measured in that round) are left out. Numbers are written with 6 significant digits.
"""

import csv
import sys


def median(values):
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def numbers(rows, column):
    out = []
    for r in rows:
        try:
            value = float(r[column])
        except (KeyError, ValueError):
            continue
        if value == value:  # a nan is a value the run could not measure
            out.append(value)
    return out


def fmt(value):
    return "-" if value is None else f"{value:.6g}"


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    raw_path, out_path, keys = argv[1], argv[2], argv[3].split(",")
    with open(raw_path, newline="") as f:
        reader = csv.DictReader(f)
        have = set(reader.fieldnames or [])
        rows = list(reader)
    missing = [k for k in keys if k not in have]
    if missing:
        sys.exit(f"{raw_path} has no column {', '.join(missing)}")
    cells = {}
    for r in rows:
        cells.setdefault(tuple(r[k] for k in keys), []).append(r)

    header = keys + ["rounds"]
    header += ["per_cpu_median", "per_cpu_min", "per_cpu_max", "rps_median", "rps_min", "rps_max"]
    header += ["server_cpu_median", "p99_median", "errors"]
    extras = [c for c in ("foreign", "user_share") if c in have]
    if "foreign" in extras:
        header += ["foreign_median", "foreign_max"]
    if "user_share" in extras:
        header += ["user_share_median"]
    header += ["client_us_median"]

    with open(out_path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for key, cell in cells.items():
            per_cpu = numbers(cell, "per_cpu_s")
            rps = numbers(cell, "rps")
            row = list(key) + [len(cell)]
            row += [fmt(median(per_cpu)), fmt(min(per_cpu, default=None)), fmt(max(per_cpu, default=None))]
            row += [fmt(median(rps)), fmt(min(rps, default=None)), fmt(max(rps, default=None))]
            row += [fmt(median(numbers(cell, "server_cpu_s"))), fmt(median(numbers(cell, "p99_us")))]
            row += [fmt(sum(numbers(cell, "errors")))]
            if "foreign" in extras:
                foreign = numbers(cell, "foreign")
                row += [fmt(median(foreign)), fmt(max(foreign, default=None))]
            if "user_share" in extras:
                row += [fmt(median(numbers(cell, "user_share")))]
            row += [fmt(median(numbers(cell, "client_us_per_req")))]
            out.writerow(row)


if __name__ == "__main__":
    main(sys.argv)
