"""Corpora: many sessions at once, as tables people query (docs/corpus.md).

:mod:`.sources` finds the sessions under some paths (local, ``file://`` or any fsspec URL) and
hashes their inputs; :mod:`.task` analyses one session as ``mutecheck analyze`` does, into table
rows; :mod:`.tables` declares the tables (sessions, findings, streams, packets) and writes them
as Parquet, for ``batch``, ``analyze --parquet`` and ``streams --parquet`` alike; :mod:`.run`
plans a batch (what is unchanged since the last one), runs one Dask task per session, and
rewrites the tables. It sits above the report floor (it uses report.json's document) and below
the command line.
"""
