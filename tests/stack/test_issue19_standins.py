"""Tests of the stand-ins of issue 19 (the work queue): DynamoDB's atomic writes under
concurrency, which moto alone does not give. Run with the stack's venv:

    .venv/bin/python -m unittest discover -s tests/stack -p 'test_*.py'

(`cargo test -p ptc-tests --lib` runs them too: tests/src/lib.rs, `stack_python_tests`.)
"""

from __future__ import annotations

import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_cross_account import StackTestCase  # noqa: E402


class AtomicCounters(StackTestCase):
    def test_concurrent_transactions_lose_no_add(self):
        """Sixteen threads each write 25 conditional puts with two ADDs on one item, as the
        workers record outcomes: the counters are exactly 400 (DynamoDB applies each
        transaction atomically; moto's backend alone lost updates)."""
        ddb = self.client("dynamodb")
        table = "ptc-runs-atomic"
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName=table, Item={"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}, "done": {"N": "0"}})

        def worker(w: int) -> None:
            client = self.client("dynamodb")
            for i in range(25):
                client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": {"pk": {"S": "run#r"}, "sk": {"S": f"item#{w}-{i}"}},
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Update": {"TableName": table, "Key": {"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}},
                                "UpdateExpression": "ADD done :one, #n :one", "ExpressionAttributeNames": {"#n": "n|quay|warmed"},
                                "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                ])

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        item = ddb.get_item(TableName=table, Key={"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}}, ConsistentRead=True)["Item"]
        self.assertEqual((item["done"]["N"], item["n|quay|warmed"]["N"]), ("400", "400"))


if __name__ == "__main__":
    unittest.main()
