#!/usr/bin/env bash
# The demo: starts the local stack with the four rules of the seeds (quay, k8s, docker-hub
# with a secret, ghcr), maps examples/watch-list.txt to cached image URIs, validates every
# rule and its credential secret (then again against expected rules, to show drift), warms
# the watch list through the cache, brings the repositories the cache created to the
# desired settings (dry run, then fix), shows a second account refused, then pulling
# through the cache after `ptc fix` (`ptc probe`), and reports the cache's health. Then a
# queued run: the watch list planned into an SQS work queue (`ptc prewarm --enqueue`),
# followed (`ptc runs`), worked off by the prewarm function under the Lambda Runtime
# Interface Emulator (`ptc-local-queue`, Lambda's SQS event source mapping played against
# moto), and shown finished with every entry's outcome.
# Last, adoption: the seeds' rules in the formats teams point clusters with (`ptc map
# --format`, offline), `ptc scan` over examples/cluster (a rendered manifest and a Dockerfile),
# and its watch list piped into `ptc prewarm --image -`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -q -p ptc-cli
state=.stack/demo
.venv/bin/python tests/stack/stack.py up --seed demo --detach --state-dir "$state" >/dev/null
trap '.venv/bin/python tests/stack/stack.py down --state-dir "$state" >/dev/null' EXIT
eval "$(.venv/bin/python - "$state/stack.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
ups = ",".join(f"{h}={u['url']}" for h, u in info["upstreams"].items())
print(f"export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION={info['region']}")
print(f"export PTC_AWS_ENDPOINT_URL={info['aws_endpoint']} PTC_REGISTRY_ENDPOINT={info['registry_endpoint']}")
print(f"export PTC_UPSTREAM_ENDPOINTS={ups}")
PY
)"
echo "== local stack up: AWS API at $PTC_AWS_ENDPOINT_URL, registry at $PTC_REGISTRY_ENDPOINT"
echo
echo "== ptc map (rules read from the registry) over examples/watch-list.txt"
status=0
./target/debug/ptc map - < examples/watch-list.txt || status=$?
echo
echo "== two references as JSON (--output json)"
./target/debug/ptc map --output json nginx:1.25 gcr.io/distroless/static || true
echo "ptc map exited with $status (non-zero: the watch list has entries that cannot be cached, shown above)"
echo
echo "== ptc validate: every rule validated by ECR, its secret checked, metrics published"
./target/debug/ptc validate || true
echo
echo "== ptc validate with the rules the platform team expects (PTC_RULES): drift is reported"
PTC_RULES="quay=quay.io,k8s=registry.k8s.io,docker-hub=registry-1.docker.io+credential,ghcr=ghcr.io+credential,ecr-public=public.ecr.aws" \
  ./target/debug/ptc validate --no-metrics || echo "(exit code $?: a rule is missing)"
echo
echo "== ptc prewarm: the watch list pulled through the cache (manifests, each platform, layers), verified in ECR"
export PTC_WATCH_LIST="$(grep -v '^#' examples/watch-list.txt)"
./target/debug/ptc prewarm || echo "(exit code $?: entries that cannot be cached failed, with the reason)"
echo
echo "== ptc prewarm again: everything is cached, complete and fresh, told from ECR's API alone: no pull (0 manifest and 0 blob GETs), one upstream HEAD per image"
sleep 2
./target/debug/ptc prewarm || true
unset PTC_WATCH_LIST
echo
echo "== ptc fix --mode dry-run: the exact changes for the repositories the cache just created"
export PTC_REPOSITORY_TAGS="managed-by=ptc" PTC_PULL_PRINCIPALS="111122223333"
./target/debug/ptc fix --mode dry-run --repository docker-hub/library/nginx --repository k8s/pause || true
echo
echo "== ptc fix: fill mode adds what is missing on every repository under a rule prefix"
./target/debug/ptc fix | tail -1 || true
echo
echo "== ptc fix again: nothing left to do"
./target/debug/ptc fix | tail -1 || true
unset PTC_REPOSITORY_TAGS PTC_PULL_PRINCIPALS
echo
echo "== a second account pulls through the cache: cluster role of 222233334444 with the policy 'ptc iam consumer-policy' prints"
consumer_policy="$(./target/debug/ptc iam consumer-policy)"
role_arn="$(CONSUMER_POLICY="$consumer_policy" .venv/bin/python - "$PTC_AWS_ENDPOINT_URL" <<'PY'
import json, os, sys, urllib.request
def post(path, body):
    req = urllib.request.Request(f"{sys.argv[1]}/_stack/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    return json.load(urllib.request.urlopen(req, timeout=30))
# The cluster role in account B, and a tag upstream that the cache has never seen.
print(post("accounts/222233334444/roles", {"name": "cluster-nodes", "policy": json.loads(os.environ["CONSUMER_POLICY"])})["arn"])
post("upstreams/registry.k8s.io/tag", {"repository": "pause", "from": "3.9", "to": "3.9-b"})
PY
)"
probe=(./target/debug/ptc probe --consumer-role-arn "$role_arn" --image quay.io/coreos/etcd:v3.5.13
  --image registry.k8s.io/pause:3.9-b --image registry.k8s.io/pause:3.9)
echo "== ptc probe before the cache account grants it: each pull refused, naming the permission and who grants it"
"${probe[@]}" || echo "(exit code $?: refused)"
echo
echo "== ptc fix --mode enforce with account 222233334444 added to the pull principals (fill keeps a differing product statement, enforce rewrites it): the registry policy, templates and repository policies"
PTC_PULL_PRINCIPALS="111122223333,222233334444" ./target/debug/ptc fix --mode enforce | tail -1 || true
echo
echo "== ptc probe again: a new image, a new tag and a cached image all pull through the cache"
"${probe[@]}"
echo
echo "== ptc health: inventory and cost per prefix, watch-list coverage, outage readiness, metrics published"
export PTC_WATCH_LIST="$(grep -v '^#' examples/watch-list.txt)"
./target/debug/ptc health || echo "(exit code $?: the watch list has entries that cannot be cached, named above)"
echo
echo "== ptc health --outage quay.io, with argocd added to the watch list but never pulled"
PTC_WATCH_LIST="$PTC_WATCH_LIST quay.io/argoproj/argocd:v2.10.0" \
  ./target/debug/ptc health --outage quay.io --no-metrics || echo "(exit code $?: images above depend on quay.io being up)"
unset PTC_WATCH_LIST
echo
echo "== a queued run (issue 19): the work queue with its dead-letter queue (maxReceiveCount 3) and the runs' table, in the stack's moto"
cargo build --locked -q -p prewarm --bin prewarm -p ptc-tests --bin ptc-local-queue
eval "$(.venv/bin/python - "$PTC_AWS_ENDPOINT_URL" "$AWS_REGION" <<'PY'
import json, sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name=sys.argv[2],
          aws_access_key_id="demo", aws_secret_access_key="demo")
sqs, ddb = boto3.client("sqs", **kw), boto3.client("dynamodb", **kw)
dlq = sqs.create_queue(QueueName="ptc-demo-work-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue = sqs.create_queue(QueueName="ptc-demo-work", Attributes={
    "VisibilityTimeout": "120",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
try:
    ddb.create_table(TableName="ptc-demo-runs", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
except ddb.exceptions.ResourceInUseException:
    pass
print(f"export PTC_WORK_QUEUE_URL={queue} PTC_WORK_DLQ_URL={dlq} PTC_RUN_TABLE=ptc-demo-runs")
PY
)"
echo "work queue $PTC_WORK_QUEUE_URL, dead-letter queue $PTC_WORK_DLQ_URL, runs' table $PTC_RUN_TABLE"
echo
echo "== ptc prewarm --enqueue: the watch list planned into the queue (3 images of one upstream a message), nothing warmed here"
# The whole list, as the schedule plans it (the settings' list; discovery off here): a full
# run holds the job's lease. (`--image REF` would plan those images alone, beside it.)
export PTC_WATCH_LIST="$(grep -v '^#' examples/watch-list.txt | tr '\n' ' ')" PTC_DISCOVERY_DAYS=0
plan="$(PTC_QUEUE_IMAGES_PER_MESSAGE=3 ./target/debug/ptc prewarm --enqueue)"
echo "$plan"
run_id="$(sed -n 's/^run \(prewarm-[A-Za-z0-9-]*\) planned$/\1/p' <<<"$plan")"
test -n "$run_id"
echo
echo "== ptc prewarm --enqueue again while $run_id is in flight: nothing enqueued"
./target/debug/ptc prewarm --enqueue
echo
echo "== ptc runs $run_id: planned, nothing done yet, the messages waiting in the queue"
./target/debug/ptc runs "$run_id"
echo
echo "== ptc-local-queue: Lambda's SQS event source mapping played against moto, two prewarm functions under the Lambda Runtime Interface Emulator (batches of 10, partial batch failures)"
./target/debug/ptc-local-queue --queue-url "$PTC_WORK_QUEUE_URL" --dead-letter-url "$PTC_WORK_DLQ_URL" \
  --run-table "$PTC_RUN_TABLE" --function ./target/debug/prewarm --concurrency 2 --batch-size 10 --max-wall-secs 300
echo
echo "== ptc runs $run_id: finished, every entry with its outcome (counts by prefix; '(no rule or invalid)': entries that cannot be cached)"
./target/debug/ptc runs "$run_id"
echo
echo "== each entry's outcome, as the workers recorded it once in the runs' table"
.venv/bin/python - "$PTC_AWS_ENDPOINT_URL" "$AWS_REGION" "$PTC_RUN_TABLE" "$run_id" <<'PY'
import sys, boto3
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                   aws_access_key_id="demo", aws_secret_access_key="demo")
items = ddb.query(TableName=sys.argv[3], KeyConditionExpression="pk = :pk",
                  ExpressionAttributeValues={":pk": {"S": f"run#{sys.argv[4]}"}})["Items"]
width = max(len(i["item"]["S"]) for i in items)
for i in sorted(items, key=lambda i: i["item"]["S"]):
    reason = i.get("reason", {}).get("S", "")
    print(f'{i["item"]["S"]:<{width}}  {i["outcome"]["S"]:<13}  {reason[:100]}')
PY
echo
echo "== ptc runs: the latest runs"
./target/debug/ptc runs
echo
echo "== adoption (issue 20): the seeds' rules in the formats clusters are pointed with; no AWS call (--rule, --account and --region)"
seeds=(--rule quay=quay.io --rule k8s=registry.k8s.io --rule docker-hub=registry-1.docker.io --rule ghcr=ghcr.io
  --account 123456789012 --region eu-west-2)
echo "-- ptc map --format terraform-locals (one local per upstream, switched between the cache and the upstream)"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED=true \
  ./target/debug/ptc map "${seeds[@]}" --format terraform-locals
echo "-- ptc map --format registries-conf (CRI-O, podman, skopeo mirrors)"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED=true \
  ./target/debug/ptc map "${seeds[@]}" --format registries-conf
echo "-- ptc map --format helm-values for two references, one of which cannot be cached"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED=true \
  ./target/debug/ptc map "${seeds[@]}" --format helm-values nats:2.10.12-alpine gcr.io/distroless/static:nonroot
echo "(containerd-hosts, kustomize-images and kyverno: see the README)"
echo
echo "== ptc scan examples/cluster: every image of a rendered manifest and a Dockerfile, with its class (rules and host from the stack's ECR)"
./target/debug/ptc scan examples/cluster
echo
echo "== ptc scan examples/cluster --output watch-list | ptc prewarm --image -: the routable images, and nothing else, warmed (those of the watch list above are already fresh)"
./target/debug/ptc scan examples/cluster --output watch-list | ./target/debug/ptc prewarm --image -
