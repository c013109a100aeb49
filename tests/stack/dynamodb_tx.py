"""DynamoDB transactions as the stack serves them: moto's `TransactWriteItems`, with two
changes that make it behave as DynamoDB documents and fast enough for thousands of writes.

- Rollback restores the items the transaction touched, not a copy of every table taken
  before it: moto 5.2's copy of the whole table for each action made a run's N-th outcome cost
  O(N) (a 20,000-entry run could not finish) and, between concurrent requests, restored stale
  tables (lost writes). The stack also serves DynamoDB one request at a time (stack.py).
- Conflicts: DynamoDB cancels a transaction that touches an item another transaction is
  writing at the same time, with the cancellation reason `TransactionConflict`
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
  `Conflicts.claim` models that for requests that arrive while another transaction on the
  same item waits for or holds the stack's lock, so that the clients' retries are exercised.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any


def install() -> None:
    """Replace moto's `DynamoDBBackend.transact_write_items` with one whose rollback restores
    the touched items (see the module). Called once, before the backend serves a request; the
    stack's lock keeps one request at a time."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "ptc_patched", False):
        return
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for item in transact_items:
            if not isinstance(item, dict) or len(item) != 1:
                continue
            _, op = next(iter(item.items()))
            table_name = op.get("TableName") if isinstance(op, dict) else None
            table = self.tables.get(table_name) if table_name else None
            key = _key(table, op) if table is not None else None
            if key is None:
                continue
            try:
                current = self.get_item(table_name, key)
            except Exception:
                continue
            saved.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        # moto's own rollback deep-copies each table first: made free here (a table copies
        # as itself), and the touched items are restored below instead.
        Table.__deepcopy__ = lambda table, memo: table
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(saved):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise
        finally:
            del Table.__deepcopy__

    transact_write_items.ptc_patched = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items


def _key(table, op: dict[str, Any]) -> dict[str, Any] | None:
    if "Key" in op:
        return op["Key"]
    attrs = op.get("Item")
    if not attrs or table.hash_key_attr not in attrs:
        return None
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in attrs:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


class Conflicts:
    """The items of the transactions waiting for or holding the lock (see the module)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[tuple[str, str], int] = {}

    @staticmethod
    def keys(body: bytes) -> list[tuple[str, str]]:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return []
        out = []
        for item in request.get("TransactItems", []):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            _, op = next(iter(item.items()))
            if not isinstance(op, dict):
                continue
            key = op.get("Key") or {k: v for k, v in (op.get("Item") or {}).items() if k in ("pk", "sk")}
            out.append((str(op.get("TableName")), json.dumps(key, sort_keys=True)))
        return out

    @staticmethod
    def single_key(target: str, body: bytes) -> tuple[str, str] | None:
        """The item a plain `UpdateItem`, `PutItem` or `DeleteItem` writes."""
        if not target.endswith((".UpdateItem", ".PutItem", ".DeleteItem")):
            return None
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None
        key = request.get("Key") or {k: v for k, v in (request.get("Item") or {}).items() if k in ("pk", "sk")}
        return (str(request.get("TableName")), json.dumps(key, sort_keys=True))

    def claimed(self, key: tuple[str, str]) -> bool:
        with self.lock:
            return bool(self.items.get(key))

    def claim(self, keys: list[tuple[str, str]]) -> list[int]:
        """Claim `keys`; the positions already claimed by another transaction (nothing is
        claimed then)."""
        with self.lock:
            taken = [i for i, k in enumerate(keys) if self.items.get(k)]
            if not taken:
                for k in keys:
                    self.items[k] = self.items.get(k, 0) + 1
            return taken

    def release(self, keys: list[tuple[str, str]]) -> None:
        with self.lock:
            for k in keys:
                left = self.items.get(k, 0) - 1
                if left > 0:
                    self.items[k] = left
                else:
                    self.items.pop(k, None)

    @staticmethod
    def cancelled(count: int, positions: list[int]) -> tuple[int, dict[str, str], bytes]:
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} if i in positions
                   else {"Code": "None"} for i in range(count)]
        body = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons ["
                       + ", ".join(r["Code"] for r in reasons) + "]",
            "CancellationReasons": reasons,
        }
        return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()
