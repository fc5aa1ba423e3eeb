"""Reads a CSV export from standard input with Python's csv module (RFC 4180 dialect, as
spreadsheets and pandas read it) and prints it as JSON: {"header": [...], "rows": [{...}]},
each cell with the export's formula neutralisation undone (one leading apostrophe dropped).
Fails on a row whose length differs from the header's."""

import csv
import io
import json
import sys


def unneutralise(cell):
    return cell[1:] if cell.startswith("'") else cell


def main():
    text = sys.stdin.buffer.read().decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader)
    rows = []
    for number, row in enumerate(reader, start=2):
        if len(row) != len(header):
            sys.exit(f"row {number} has {len(row)} cells, the header {len(header)}")
        rows.append({name: unneutralise(cell) for name, cell in zip(header, row)})
    raw = [row for row in csv.reader(io.StringIO(text, newline=""))][1:]
    json.dump({"header": header, "rows": rows, "raw": raw}, sys.stdout)


main()
