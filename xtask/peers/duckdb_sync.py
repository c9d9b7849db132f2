"""DuckDB peer for `cargo xtask bench --peers`.

Usage: duckdb_sync.py POSTGRES_URL SQLITE_PATH VENV STATEMENT...

Runs each STATEMENT (`INSERT INTO lite.<table> SELECT .. FROM pg.<table>`) into the
existing target tables of SQLITE_PATH with DuckDB's postgres and sqlite extensions, loaded from the
PyPI extension wheels' files (no download, no autoload), in one transaction.
Prints `seconds=S`: the time of the copy alone, without the extension loading.
"""

import glob
import os
import sys
import time

import duckdb


def extension(venv, name):
    pattern = os.path.join(
        venv, "lib", "python*", "site-packages", "duckdb_extension_" + name,
        "extensions", "v" + duckdb.__version__, name + ".duckdb_extension",
    )
    found = glob.glob(pattern)
    if not found:
        sys.exit("no extension file matches " + pattern)
    return found[0]


def literal(text):
    """A SQL string literal: ATTACH takes no parameters."""
    return "'" + text.replace("'", "''") + "'"


def main():
    url, target, venv = sys.argv[1:4]
    statements = sys.argv[4:]
    connection = duckdb.connect(config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    connection.execute("LOAD '%s'" % extension(venv, "postgres_scanner"))
    connection.execute("LOAD '%s'" % extension(venv, "sqlite_scanner"))
    started = time.perf_counter()
    connection.execute("ATTACH %s AS pg (TYPE postgres, READ_ONLY)" % literal(url))
    connection.execute("ATTACH %s AS lite (TYPE sqlite)" % literal(target))
    connection.execute("BEGIN")
    for statement in statements:
        connection.execute(statement)
    connection.execute("COMMIT")
    connection.execute("DETACH lite")
    print("seconds=%f" % (time.perf_counter() - started))


if __name__ == "__main__":
    main()
