"""moto's server (`moto_server`), with one performance fix for DynamoDB.

moto 5.2.5 answers a Query on a table's own key by listing and sorting
*every item of the table*, then keeping those of the requested partition:
each Query costs O(n log n) in the table's size, so a test that writes
200,000 history items and pages through them runs for hours. Here the
candidate list is the requested partition alone. The results are the same
items in the same order (the original filters down to exactly these and
sorts them by range key itself); index queries, scans and everything else
are moto's own code, untouched.

Usage: python3 scripts/moto_server.py -H 127.0.0.1 -p PORT (moto_server's flags).
"""

import sys
import threading

from moto.dynamodb.models.table import Table
from moto.server import main

_query = Table.query
_all_items = Table.all_items
_partition = threading.local()


def _query_one_partition(self, hash_key, *args, **kwargs):
    # moto's own caller passes index_name as the 8th positional argument.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name or hash_key is None:
        return _query(self, hash_key, *args, **kwargs)
    _partition.key = hash_key
    try:
        return _query(self, hash_key, *args, **kwargs)
    finally:
        _partition.key = None


def _all_items_of_partition(self):
    key = getattr(_partition, "key", None)
    if key is None or not self.range_key_attr:
        return _all_items(self)
    return list(self.items.get(key, {}).values())


Table.query = _query_one_partition
Table.all_items = _all_items_of_partition

if __name__ == "__main__":
    sys.exit(main())
