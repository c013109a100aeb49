"""Tests of the stand-ins of issue 19 (the work queue): DynamoDB's atomic writes under
concurrency, which moto alone does not give. Run with the stack's venv:

    .venv/bin/python -m unittest discover -s tests/stack -p 'test_*.py'

(`cargo test -p ptc-tests --lib` runs them too: tests/src/lib.rs, `stack_python_tests`.)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_cross_account import StackTestCase  # noqa: E402


class Issue19Case(StackTestCase):
    """StackTestCase's helpers on a stack of this module's own (test_cross_account stops the
    shared one when its module ends)."""

    stack = None
    state_dir = None

    @classmethod
    def setUpClass(cls):
        import logging
        import tempfile

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from stack import Stack

        if Issue19Case.stack is None:
            Issue19Case.state_dir = tempfile.mkdtemp(prefix="ptc-stack-issue19-")
            Issue19Case.stack = Stack(Issue19Case.state_dir)
            Issue19Case.stack.start()
        cls.info = Issue19Case.stack.info()

    def tearDown(self):
        pass


def tearDownModule():
    import shutil

    if Issue19Case.stack is not None:
        Issue19Case.stack.stop()
        shutil.rmtree(Issue19Case.state_dir, ignore_errors=True)
        Issue19Case.stack = None


class AtomicCounters(Issue19Case):
    def test_concurrent_transactions_lose_no_add(self):
        """Sixteen threads each write 25 conditional puts with two ADDs on one item, as the
        workers record outcomes, retrying a TransactionConflict: the counters are exactly 400
        (DynamoDB applies each transaction atomically; moto's backend alone lost updates)."""
        ddb = self.client("dynamodb")
        table = "ptc-runs-atomic"
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName=table, Item={"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}, "done": {"N": "0"}})

        conflicts: list[int] = []

        def worker(w: int) -> None:
            client = self.client("dynamodb")
            for i in range(25):
                for _attempt in range(200):
                    try:
                        write(client, w, i)
                        break
                    except client.exceptions.TransactionCanceledException as exc:
                        codes = [r["Code"] for r in exc.response["CancellationReasons"]]
                        assert "TransactionConflict" in codes, codes
                        conflicts.append(1)

        def write(client, w: int, i: int) -> None:
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
        # Writers at the same time on the run's record conflict, as on DynamoDB, and retry.
        self.assertGreater(len(conflicts), 0)


class Transactions(Issue19Case):
    def table(self, name: str) -> str:
        ddb = self.client("dynamodb")
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return name

    def test_a_cancelled_transaction_leaves_nothing_and_keeps_the_rest(self):
        """All or nothing: a transaction whose second put fails its condition writes neither,
        and the table's other items stay (the rollback restores the touched items only)."""
        ddb = self.client("dynamodb")
        table = self.table("ptc-tx-rollback")
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"N": "1"}})
        ddb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "v": {"N": "1"}})
        with self.assertRaises(Exception) as ctx:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "ADD v :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        reasons = [r["Code"] for r in ctx.exception.response["CancellationReasons"]]
        self.assertEqual(reasons, ["None", "None", "ConditionalCheckFailed"])
        items = ddb.scan(TableName=table)["Items"]
        self.assertEqual(sorted((i["pk"]["S"], i["v"]["N"]) for i in items), [("a", "1"), ("b", "1")])

    def test_a_transaction_costs_the_same_in_a_large_table(self):
        """moto copied every table for each action of a transaction: the 3,000th write cost
        3,000 times the first. With the item-level rollback it stays flat."""
        import time

        ddb = self.client("dynamodb")
        table = self.table("ptc-tx-large")

        def write(i: int) -> float:
            start = time.monotonic()
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "run#r"}, "sk": {"S": f"item#{i}#{j}"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}} for j in range(10)
            ])
            return time.monotonic() - start

        first = sum(write(i) for i in range(20)) / 20
        for i in range(20, 300):
            write(i)
        late = sum(write(i) for i in range(300, 320)) / 20
        # 3,000 items in the table: without the patch each action copied them all (about 20x
        # the first writes' time here); allow noise.
        self.assertLess(late, first * 4 + 0.02, (first, late))

    def test_conflicting_claims_are_named_by_position(self):
        from dynamodb_tx import Conflicts

        conflicts = Conflicts()
        body = json.dumps({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "run#r"}, "sk": {"S": "item#a"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}}}},
        ]}).encode()
        other = json.dumps({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "run#r"}, "sk": {"S": "item#b"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}}}},
        ]}).encode()
        first = Conflicts.keys(body)
        self.assertEqual(conflicts.claim(first), [])
        self.assertEqual(conflicts.claim(Conflicts.keys(other)), [1], "the run's record is being written")
        status, _, answer = Conflicts.cancelled(2, [1])
        self.assertEqual(status, 400)
        self.assertEqual([r["Code"] for r in json.loads(answer)["CancellationReasons"]], ["None", "TransactionConflict"])
        # A plain UpdateItem of the run's record while a transaction writes it conflicts too.
        update = json.dumps({"TableName": "t", "Key": {"pk": {"S": "job#prewarm"}, "sk": {"S": "run#r"}}}).encode()
        single = Conflicts.single_key("DynamoDB_20120810.UpdateItem", update)
        self.assertTrue(conflicts.claimed(single))
        self.assertIsNone(Conflicts.single_key("DynamoDB_20120810.GetItem", update))
        conflicts.release(first)
        self.assertFalse(conflicts.claimed(single))
        self.assertEqual(conflicts.claim(Conflicts.keys(other)), [])


if __name__ == "__main__":
    unittest.main()
