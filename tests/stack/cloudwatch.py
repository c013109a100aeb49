"""CloudWatch over the Smithy RPC v2 CBOR protocol, which the current aws-sdk-cloudwatch
speaks and moto does not. Metrics are kept in memory and readable back through
ListMetrics, GetMetricStatistics and GetMetricData, so tests assert on what the SDK sent.

Limits enforced as documented for PutMetricData: at most 1,000 metric data items and
1 MB (1,048,576 bytes) of request body, 30 dimensions, no NaN or infinity, valid units.

Alarms (PutMetricAlarm, DescribeAlarms, DeleteAlarms) are kept in memory per region.
PutMetricAlarm accepts or refuses an alarm as CloudWatch documents it; each rule in
`validate_alarm` names the page it comes from (SEARCH expressions, for one, are refused:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-search-expressions.html).
The error codes are the ones CloudWatch is reported to answer with (mostly ValidationError).

DescribeAlarms evaluates each alarm when it is called, from the stored metric data. This is
a simplification of
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation :
periods are windows [now-k*P, now-(k-1)*P) ending now (not aligned to period boundaries); a
period's data point is the statistic over the data points with exactly the alarm's namespace,
name and dimensions (and unit, when the alarm sets one), or the value of the alarm's metric
math expression; a period without one is missing. ALARM when at least DatapointsToAlarm
(default EvaluationPeriods) of the evaluated data points breach, else OK.

Missing data follows "How alarm state is evaluated when data is missing"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-evaluating-missing-data):
"CloudWatch attempts to retrieve a higher number of data points than specified by Evaluation
Periods ... The timeframe of the data points that it attempts to retrieve is the evaluation
range". When the range holds at least EvaluationPeriods real data points, the alarm is
evaluated on the most recent of them and TreatMissingData "is not needed and is ignored";
otherwise every real data point of the range ("no matter when they were reported") is
evaluated together with as few missing ones as make up EvaluationPeriods, and TreatMissingData
decides for those: breaching and notBreaching count them as such, missing and ignore leave them
out (no real data point at all: INSUFFICIENT_DATA for missing, the previous state for ignore).
The documentation does not give the size of the range ("depends on the length of the alarm
period and whether it is based on a metric with standard resolution or high resolution"); its
one example retrieves "the 5 most recent data points" for EvaluationPeriods 3, so the stand-in
takes EvaluationPeriods + 2 periods for every alarm (EVALUATION_RANGE_EXTRA), the smallest
reading consistent with that example. Consequence, as on CloudWatch: an alarm on a plain metric
whose last data point is a period or two older than its EvaluationPeriods still sees that data
point (a SampleCount heartbeat stays OK), whereas FILL(m, 0) leaves no period missing, so the
most recent periods are the filled ones. The documentation's rows where a lone breaching data
point makes a "missing" alarm INSUFFICIENT_DATA (or ALARM) are not modelled: such an alarm is OK
below DatapointsToAlarm. No retroactive re-evaluation of late data, no evaluation delay, no
actions are run.

Metric math is evaluated for MetricStat entries, arithmetic over ids and numbers (+ - * / and
parentheses) and FILL(x, number)
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-functions-list:
"Fills the missing values of a time series"): a period where x is missing takes the number.
Anything else (FILL with REPEAT or LINEAR, whose exact filling the documentation read here does
not spell out; other functions; anomaly detection bands; Metrics Insights queries; percentiles
other than pNN; PromQL) evaluates to INSUFFICIENT_DATA with a reason saying the stand-in cannot
evaluate it."""

from __future__ import annotations

import ast
import datetime as dt
import gzip
import math
import operator
import re
import threading
import time

import cbor2
from werkzeug.wrappers import Request, Response

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}
MAX_BODY = 1_048_576


class CloudWatchError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class CloudWatch:
    def __init__(self, account: str = "123456789012") -> None:
        self.account = account
        self.lock = threading.Lock()
        # (region, namespace, name, frozenset(dims)) -> list of (timestamp, value, unit)
        self.data: dict[tuple, list[tuple[float, float, str]]] = {}
        self.put_calls = 0
        self.throttle_next = 0
        self.fail_next = 0
        # region -> alarm name -> {"definition": the accepted request, "period": seconds,
        # "state": (value, reason, timestamp), "updated": timestamp}
        self.alarms: dict[str, dict[str, dict]] = {}

    def reset(self) -> None:
        with self.lock:
            self.data.clear()
            self.alarms.clear()
            self.put_calls = 0
            self.throttle_next = 0
            self.fail_next = 0

    def age(self, namespace: str, seconds: float) -> int:
        """Move every data point of `namespace` `seconds` into the past, as if the runs that
        published them had happened that long ago (tests of alarms over several periods and
        of heartbeats: time passes without waiting). Returns the number of points moved."""
        moved = 0
        with self.lock:
            for key, points in self.data.items():
                if key[1] == namespace:
                    self.data[key] = [(ts - seconds, value, unit) for ts, value, unit in points]
                    moved += len(points)
        return moved

    def handle(self, request: Request, region: str) -> Response:
        operation = request.path.rsplit("/", 1)[-1]
        try:
            raw = request.get_data()
            if request.headers.get("Content-Encoding", "").lower() == "gzip":
                # The SDK gzips PutMetricData bodies (request compression), as CloudWatch allows.
                raw = gzip.decompress(raw)
            if len(raw) > MAX_BODY:
                raise CloudWatchError("RequestEntityTooLarge", f"Request size {len(raw)} exceeded {MAX_BODY} bytes", 413)
            try:
                body = cbor2.loads(raw) if raw else {}
            except (cbor2.CBORDecodeError, ValueError) as exc:
                raise CloudWatchError("SerializationException", f"request body is not CBOR: {exc}") from exc
            handler = getattr(self, f"op_{operation}", None)
            if handler is None:
                raise CloudWatchError("UnknownOperationException", f"operation {operation} is not implemented by the stack")
            result = handler(body, region)
            status = 200
        except CloudWatchError as err:
            result = {"__type": f"com.amazonaws.cloudwatch#{err.code}", "message": err.message}
            status = err.status
        headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}
        if status >= 400:
            # CloudWatch is awsQueryCompatible: the SDK takes the error code from this header.
            headers["x-amzn-query-error"] = f"{result['__type'].rsplit('#', 1)[1]};{'Sender' if status < 500 else 'Receiver'}"
        return Response(cbor2.dumps(result, datetime_as_timestamp=True), status, headers=headers)

    # -- operations -----------------------------------------------------------
    def op_PutMetricData(self, body: dict, region: str) -> dict:
        with self.lock:
            self.put_calls += 1
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise CloudWatchError("Throttling", "Rate exceeded", 400)
            if self.fail_next > 0:
                self.fail_next -= 1
                raise CloudWatchError("InternalServiceError", "injected failure", 500)
        namespace = body.get("Namespace")
        if not namespace or namespace.startswith("AWS/"):
            raise CloudWatchError("InvalidParameterValue", f"The value {namespace!r} for parameter Namespace is invalid.")
        items = body.get("MetricData") or []
        if not items:
            raise CloudWatchError("MissingParameter", "The parameter MetricData is required.")
        if len(items) > 1000:
            raise CloudWatchError("InvalidParameterValue", f"The collection MetricData must not have a size greater than 1000 (got {len(items)}).")
        staged = []
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        for i, item in enumerate(items):
            name = item.get("MetricName")
            if not name:
                raise CloudWatchError("MissingParameter", f"The parameter MetricData.member.{i + 1}.MetricName is required.")
            dims = item.get("Dimensions") or []
            if len(dims) > 30:
                raise CloudWatchError("InvalidParameterValue", f"MetricData.member.{i + 1}.Dimensions has more than 30 dimensions.")
            unit = item.get("Unit", "None")
            if unit not in UNITS:
                raise CloudWatchError("InvalidParameterValue", f"The value {unit} for parameter MetricData.member.{i + 1}.Unit is invalid.")
            values = []
            if "Value" in item:
                values.append(item["Value"])
            values += item.get("Values") or []
            if "StatisticValues" in item:
                sv = item["StatisticValues"]
                values += [sv["Sum"] / sv["SampleCount"]] if sv.get("SampleCount") else []
            for v in values:
                if not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v):
                    raise CloudWatchError("InvalidParameterValue", f"The value {v} for parameter MetricData.member.{i + 1}.Value is invalid.")
            ts = item.get("Timestamp", now)
            if isinstance(ts, dt.datetime):
                ts = ts.timestamp()
            key = (region, namespace, name, frozenset((d["Name"], d["Value"]) for d in dims))
            staged += [(key, (ts, float(v), unit)) for v in values]
        with self.lock:
            for key, point in staged:
                self.data.setdefault(key, []).append(point)
        return {}

    def op_ListMetrics(self, body: dict, region: str) -> dict:
        namespace = body.get("Namespace")
        name = body.get("MetricName")
        want = {(d["Name"], d.get("Value")) for d in body.get("Dimensions") or []}
        out = []
        with self.lock:
            for (r, ns, n, dims) in self.data:
                if r != region or (namespace and ns != namespace) or (name and n != name):
                    continue
                names = {d[0] for d in dims}
                if any(wn not in names or (wv is not None and (wn, wv) not in dims) for wn, wv in want):
                    continue
                out.append({"Namespace": ns, "MetricName": n, "Dimensions": [{"Name": a, "Value": b} for a, b in sorted(dims)]})
        return {"Metrics": out}

    def _points(self, region, namespace, name, dims, start, end):
        key = (region, namespace, name, frozenset((d["Name"], d["Value"]) for d in dims or []))
        with self.lock:
            return [p for p in self.data.get(key, []) if start <= p[0] < end]

    @staticmethod
    def _ts(value) -> float:
        return value.timestamp() if isinstance(value, dt.datetime) else float(value)

    @staticmethod
    def _stat(values: list[float], stat: str) -> float:
        return {
            "Sum": sum(values),
            "Average": sum(values) / len(values),
            "Minimum": min(values),
            "Maximum": max(values),
            "SampleCount": float(len(values)),
        }[stat]

    def op_GetMetricStatistics(self, body: dict, region: str) -> dict:
        start, end = self._ts(body["StartTime"]), self._ts(body["EndTime"])
        period = int(body.get("Period", 60))
        stats = body.get("Statistics") or ["Sum"]
        points = self._points(region, body["Namespace"], body["MetricName"], body.get("Dimensions"), start, end)
        buckets: dict[float, list] = {}
        for ts, value, unit in points:
            buckets.setdefault(start + ((ts - start) // period) * period, []).append((value, unit))
        datapoints = []
        for bucket_start, vals in sorted(buckets.items()):
            values = [v for v, _ in vals]
            dp = {"Timestamp": dt.datetime.fromtimestamp(bucket_start, dt.timezone.utc), "Unit": vals[-1][1]}
            for stat in stats:
                dp[stat] = self._stat(values, stat)
            datapoints.append(dp)
        return {"Label": body["MetricName"], "Datapoints": datapoints}

    def op_GetMetricData(self, body: dict, region: str) -> dict:
        start, end = self._ts(body["StartTime"]), self._ts(body["EndTime"])
        results = []
        for query in body.get("MetricDataQueries") or []:
            stat = query.get("MetricStat")
            if not stat:
                raise CloudWatchError("InvalidParameterValue", "the stack supports MetricStat queries only")
            metric = stat["Metric"]
            period = int(stat.get("Period", 60))
            points = self._points(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"), start, end)
            buckets: dict[float, list[float]] = {}
            for ts, value, _ in points:
                buckets.setdefault(start + ((ts - start) // period) * period, []).append(value)
            ordered = sorted(buckets.items(), reverse=True)
            results.append({
                "Id": query["Id"],
                "Label": metric["MetricName"],
                "Timestamps": [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t, _ in ordered],
                "Values": [self._stat(v, stat["Stat"]) for _, v in ordered],
                "StatusCode": "Complete",
            })
        return {"MetricDataResults": results}

    # -- alarms ---------------------------------------------------------------
    def op_PutMetricAlarm(self, body: dict, region: str) -> dict:
        definition, period = validate_alarm(body)
        now = time.time()
        with self.lock:
            alarms = self.alarms.setdefault(region, {})
            old = alarms.get(definition["AlarmName"])
            # "When this operation creates an alarm, the alarm state is immediately set to
            # INSUFFICIENT_DATA ... When you update an existing alarm, its state is left
            # unchanged" (API_PutMetricAlarm).
            state = old["state"] if old else {"value": "INSUFFICIENT_DATA", "reason": "Unchecked: Initial alarm creation",
                                              "updated": now, "transitioned": now}
            alarms[definition["AlarmName"]] = {"definition": definition, "period": period, "state": state, "configured": now}
        return {}

    def op_DescribeAlarms(self, body: dict, region: str) -> dict:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
        names, prefix = body.get("AlarmNames"), body.get("AlarmNamePrefix")
        if names is not None and prefix is not None:
            raise CloudWatchError("InvalidParameterCombination", "AlarmNamePrefix cannot be specified with AlarmNames.")
        if names is not None and len(names) > 100:
            raise _constraint(len(names), "alarmNames", "Member must have length less than or equal to 100")
        max_records = body.get("MaxRecords", 50)
        if not 1 <= max_records <= 100:
            raise _constraint(max_records, "maxRecords", "Member must have value between 1 and 100")
        try:
            start = int(body.get("NextToken") or 0)
        except ValueError:
            raise CloudWatchError("InvalidNextToken", "The next token specified is invalid.") from None
        # "If you omit this parameter, only metric alarms are returned".
        types = body.get("AlarmTypes") or ["MetricAlarm"]
        with self.lock:
            selected = [(n, r) for n, r in sorted(self.alarms.get(region, {}).items())
                        if (names is None or n in names) and (prefix is None or n.startswith(prefix))]
        if "MetricAlarm" not in types:
            selected = []
        now = time.time()
        out = []
        for name, record in selected:
            value, reason = self._evaluate(region, record, now)
            with self.lock:
                state = record["state"]
                if (value, reason) != (state["value"], state["reason"]):
                    record["state"] = {"value": value, "reason": reason, "updated": now,
                                       "transitioned": now if value != state["value"] else state["transitioned"]}
                state = record["state"]
            definition = record["definition"]
            if body.get("StateValue") and state["value"] != body["StateValue"]:
                continue
            actions = [a for k in ("OKActions", "AlarmActions", "InsufficientDataActions") for a in definition.get(k, [])]
            if body.get("ActionPrefix") and not any(a.startswith(body["ActionPrefix"]) for a in actions):
                continue
            alarm = {k: definition[k] for k in ALARM_FIELDS if k in definition}
            alarm.update({
                "AlarmArn": f"arn:aws:cloudwatch:{region}:{self.account}:alarm:{name}",
                "AlarmConfigurationUpdatedTimestamp": _datetime(record["configured"]),
                "ActionsEnabled": definition.get("ActionsEnabled", True),
                "StateValue": state["value"],
                "StateReason": state["reason"],
                "StateUpdatedTimestamp": _datetime(state["updated"]),
                "StateTransitionedTimestamp": _datetime(state["transitioned"]),
            })
            out.append(alarm)
        result: dict = {"MetricAlarms": out[start:start + max_records], "CompositeAlarms": []}
        if start + max_records < len(out):
            result["NextToken"] = str(start + max_records)
        return result

    def op_DeleteAlarms(self, body: dict, region: str) -> dict:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html :
        # up to 100 names; "If you specify any incorrect alarm names, the alarms you specify
        # with correct names are still deleted" (and ResourceNotFound is the documented error).
        names = body.get("AlarmNames")
        if names is None:
            raise CloudWatchError("MissingParameter", "The parameter AlarmNames is required.")
        if len(names) > 100:
            raise _constraint(len(names), "alarmNames", "Member must have length less than or equal to 100")
        with self.lock:
            alarms = self.alarms.setdefault(region, {})
            unknown = [n for n in names if alarms.pop(n, None) is None]
        if unknown:
            raise CloudWatchError("ResourceNotFound", f"{', '.join(unknown)} not found", 404)
        return {}

    # -- alarm evaluation -------------------------------------------------------
    def _evaluate(self, region: str, record: dict, now: float) -> tuple[str, str]:
        """(StateValue, StateReason) of an alarm now, from the stored metric data."""
        alarm, period = record["definition"], record["period"]
        n = alarm.get("EvaluationPeriods", 1)
        m = alarm.get("DatapointsToAlarm", n)
        try:
            if "EvaluationCriteria" in alarm:
                raise CannotEvaluate("EvaluationCriteria (PromQL) alarms are not evaluated")
            compare = STATIC_OPERATORS.get(alarm["ComparisonOperator"])
            if compare is None:
                raise CannotEvaluate(f"comparison {alarm['ComparisonOperator']} (anomaly detection)")
            # The evaluation range: EvaluationPeriods + EVALUATION_RANGE_EXTRA periods, the most
            # recent first (see the module docstring).
            windows = [(now - k * period, now - (k - 1) * period) for k in range(1, n + EVALUATION_RANGE_EXTRA + 1)]
            series = [self._alarm_value(region, alarm, start, end) for start, end in windows]
        except CannotEvaluate as exc:
            return "INSUFFICIENT_DATA", f"The stack's CloudWatch stand-in cannot evaluate this alarm: {exc}."
        treat = alarm.get("TreatMissingData", "missing")
        if alarm.get("Namespace") == "AWS/DynamoDB":
            treat = "ignore"  # "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing data"
        present = [v for v in series if v is not None]
        threshold = alarm["Threshold"]
        # "If some data points in the evaluation range are missing, but the number of existing
        # data points retrieved is equal to or more than the alarm's Evaluation Periods,
        # CloudWatch evaluates the alarm state based on the most recent existing data points
        # that were successfully retrieved. In this case, the value you set for how to treat
        # missing data is not needed and is ignored." (AlarmThatSendsEmail.html#alarms-evaluating-missing-data)
        if len(present) >= n:
            evaluated = present[:n]
            flags = [compare(v, threshold) for v in evaluated]
            shown = ", ".join(f"{v:g}" for v in evaluated)
            how = f"the {n} most recent of the {len(present)} data points in the evaluation range of {len(series)} periods"
        else:
            if not present and treat in ("missing", "ignore"):
                if treat == "ignore":
                    return record["state"]["value"], record["state"]["reason"]
                return "INSUFFICIENT_DATA", (f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown "
                                             f"(no data point in the evaluation range of {len(series)} periods).")
            # "... fills in the missing data points with the result you specified for how to
            # treat missing data, and then evaluates the alarm. However, any real data points in
            # the evaluation range, no matter when they were reported, are included in the
            # evaluation. CloudWatch uses missing data points only as few times as possible."
            filled = n - len(present)
            flags = [compare(v, threshold) for v in present]
            if treat in ("breaching", "notBreaching"):
                flags += [treat == "breaching"] * filled
            shown = ", ".join([f"{v:g}" for v in present] + [f"missing ({treat})"] * filled)
            found = f"the {len(present)} data point{'s' if len(present) != 1 else ''}" if present else "no data point"
            how = f"{found} in the evaluation range of {len(series)} periods, {filled} missing"
        breaching = sum(flags)
        state = "ALARM" if breaching >= m else "OK"
        return state, (f"Threshold {'Crossed' if state == 'ALARM' else 'not crossed'}: {breaching} out of the last {n} "
                       f"datapoints [{shown}] {'was' if breaching == 1 else 'were'} {OPERATOR_WORDS[alarm['ComparisonOperator']]} "
                       f"the threshold ({threshold:g}) ({how}; TreatMissingData {treat}; minimum {m} breaching "
                       f"datapoint{'s' if m > 1 else ''} for ALARM).")

    def _alarm_value(self, region: str, alarm: dict, start: float, end: float) -> float | None:
        if "Metrics" in alarm:
            queries = {q["Id"]: q for q in alarm["Metrics"]}
            target = next(q for q in alarm["Metrics"] if q.get("ReturnData", True))
            return self._query_value(region, queries, target["Id"], start, end, ())
        stat = alarm.get("Statistic") or alarm["ExtendedStatistic"]
        return self._window_stat(region, alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions"), alarm.get("Unit"),
                                 stat, start, end)

    def _window_stat(self, region, namespace, name, dims, unit, stat, start, end) -> float | None:
        values = [v for _, v, u in self._points(region, namespace, name, dims, start, end) if unit is None or u == unit]
        # No data point in the period: the data point is missing (for SampleCount too).
        return _alarm_stat(values, stat) if values else None

    def _query_value(self, region: str, queries: dict, qid: str, start: float, end: float, seen: tuple) -> float | None:
        if qid not in queries:
            raise CannotEvaluate(f"{qid} is not an id of the metrics list")
        query = queries[qid]
        if "MetricStat" in query:
            ms = query["MetricStat"]
            metric = ms["Metric"]
            return self._window_stat(region, metric["Namespace"], metric["MetricName"], metric.get("Dimensions"),
                                     ms.get("Unit"), ms["Stat"], start, end)
        if qid in seen:
            raise CannotEvaluate(f"expression {qid} refers to itself")
        tree = _arithmetic(query["Expression"])
        return _compute(tree, lambda ref: self._query_value(region, queries, ref, start, end, seen + (qid,)))


# -- alarm rules ----------------------------------------------------------------
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
STATIC_OPERATORS = {
    "GreaterThanOrEqualToThreshold": operator.ge, "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt, "LessThanOrEqualToThreshold": operator.le,
}
OPERATOR_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to",
}
ANOMALY_OPERATORS = ("LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold")
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
METRIC_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
ACTION_ARN = re.compile(r"arn:[^:\s]+:[^:\s]+:[^:\s]*:[^:\s]*:\S+")
# The "Valid values" of AlarmActions, OKActions and InsufficientDataActions (API_PutMetricAlarm),
# in any partition (arn:aws, arn:aws-cn, arn:aws-us-gov...).
_ARN = r"arn:aws(?:-[a-z]+)*:"
_REGION, _ACCOUNT = r"[a-z0-9-]+", r"\d{12}"
ACTION_TYPES = (
    # "arn:aws:automate:region:ec2:stop" (terminate, reboot, recover)
    ("EC2 action", re.compile(rf"{_ARN}automate:{_REGION}:ec2:(?:stop|terminate|reboot|recover)")),
    # "arn:aws:swf:region:account-id:action/actions/AWS_EC2.InstanceId.Stop/1.0" (Terminate, Reboot, Recover)
    ("EC2 action", re.compile(rf"{_ARN}swf:{_REGION}:{_ACCOUNT}:action/actions/AWS_EC2\.InstanceId\.(?:Stop|Terminate|Reboot|Recover)/1\.0")),
    # "arn:aws:autoscaling:region:account-id:scalingPolicy:policy-id:autoScalingGroupName/...:policyName/..."
    # (Application Auto Scaling policies have the same prefix:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html)
    ("Auto Scaling policy", re.compile(rf"{_ARN}autoscaling:{_REGION}:{_ACCOUNT}:scalingPolicy:\S+")),
    # "arn:aws:lambda:region:account-id:function:function-name" (":version-number", ":alias-name")
    ("Lambda function", re.compile(rf"{_ARN}lambda:{_REGION}:{_ACCOUNT}:function:[A-Za-z0-9_-]+(?::[A-Za-z0-9$_-]+)?")),
    # "arn:aws:sns:region:account-id:sns-topic-name"
    ("SNS topic", re.compile(rf"{_ARN}sns:{_REGION}:{_ACCOUNT}:[^:\s]+")),
    # "arn:aws:ssm:region:account-id:opsitem:severity#CATEGORY=category-name"
    ("Systems Manager OpsItem", re.compile(rf"{_ARN}ssm:{_REGION}:{_ACCOUNT}:opsitem:[^#:\s]+(?:#CATEGORY=\S+)?")),
    # "arn:aws:ssm-incidents::account-id:responseplan/response-plan-name"
    ("Incident Manager response plan", re.compile(rf"{_ARN}ssm-incidents::{_ACCOUNT}:responseplan/\S+")),
)
ALARM_ONLY_ACTION_TYPES = (
    # "arn:aws:aiops:region:account-id:investigation-group:investigation-group-id" (AlarmActions only)
    ("Amazon Q Developer investigation group", re.compile(rf"{_ARN}aiops:{_REGION}:{_ACCOUNT}:investigation-group:\S+")),
)
SINGLE_METRIC_FIELDS = ("MetricName", "Namespace", "Dimensions", "Period", "Unit", "Statistic", "ExtendedStatistic")
# The MetricAlarm members DescribeAlarms returns from the stored definition.
ALARM_FIELDS = (
    "AlarmName", "AlarmDescription", "OKActions", "AlarmActions", "InsufficientDataActions", "MetricName",
    "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile",
    "Metrics", "ThresholdMetricId", "EvaluationCriteria", "EvaluationInterval",
)
MAX_RANGE = 604_800           # seconds: Period x EvaluationPeriods, any alarm
MAX_RANGE_SHORT_PERIOD = 86_400  # ... when Period < 3,600 s
MAX_RANGE_INSIGHTS = 10_800   # ... of a Metrics Insights alarm (the latest 3 hours)
# Periods of the evaluation range beyond EvaluationPeriods: "CloudWatch retrieves the 5 most
# recent data points" for EvaluationPeriods 3, the one size the documentation gives
# (AlarmThatSendsEmail.html#alarms-evaluating-missing-data); see the module docstring.
EVALUATION_RANGE_EXTRA = 2


class CannotEvaluate(Exception):
    pass


def _datetime(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _constraint(value, member: str, rule: str) -> CloudWatchError:
    """A service-model constraint violation, in the words CloudWatch uses for them."""
    return CloudWatchError("ValidationError", f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}")


def _length(value: str, member: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise _constraint(value, member, f"Member must have length between {low} and {high}")


def _enum(value: str, member: str, allowed) -> None:
    if value not in allowed:
        raise _constraint(value, member, f"Member must satisfy enum value set: [{', '.join(allowed)}]")


def _period_ok(period: int) -> bool:
    # "Valid values are 10, 20, 30, and any multiple of 60." (API_PutMetricAlarm, Period)
    return period in (10, 20, 30) or (period > 0 and period % 60 == 0)


def _check_period(period: int, member: str) -> None:
    # Code and message as CloudWatch answers: "Period must be 10, 30 or a multiple of 60
    # (Service: AmazonCloudWatch; Status Code: 400; Error Code: ValidationError)"
    # (https://github.com/awsdocs/aws-cloudformation-user-guide/pull/777); 20 is valid since.
    if not _period_ok(period):
        raise CloudWatchError("ValidationError", f"{member} must be 10, 20, 30 or a multiple of 60 (got {period}).")


def _extended_statistic_ok(value: str) -> bool:
    # API_PutMetricAlarm, ExtendedStatistic: "p90, tm90, tc90, ts90, wm90, IQM, PR(n:m),
    # TC(X%:X%), TM(X%:X%), TS(X%:X%), WM(X%:X%) where X is between 10 and 90 inclusive";
    # percentiles "between p0.0 and p100" (API_MetricAlarm).
    short = re.fullmatch(r"(?:p|tm|tc|ts|wm)(\d{1,3}(?:\.\d+)?)", value)
    if short:
        return 0 <= float(short.group(1)) <= 100
    if value == "IQM":
        return True
    if re.fullmatch(r"PR\((-?\d+(?:\.\d+)?)?:(-?\d+(?:\.\d+)?)?\)", value):
        return value != "PR(:)"
    trimmed = re.fullmatch(r"(?:TC|TM|TS|WM)\((\d{1,3}(?:\.\d+)?)%:(\d{1,3}(?:\.\d+)?)%\)", value)
    return bool(trimmed) and all(10 <= float(x) <= 90 for x in trimmed.groups())


def _check_dimensions(dims: list, member: str) -> None:
    # API_PutMetricAlarm Dimensions: at most 30; API_Dimension: Name 1-255, Value 1-1024.
    if len(dims) > 30:
        raise _constraint(len(dims), member, "Member must have length less than or equal to 30")
    for i, d in enumerate(dims):
        if "Name" not in d or "Value" not in d:
            raise CloudWatchError("MissingParameter", f"The parameter {member}.member.{i + 1}.Name and Value are required.")
        _length(d["Name"], f"{member}.{i + 1}.member.name", 1, 255)
        _length(d["Value"], f"{member}.{i + 1}.member.value", 1, 1024)


def _expression_ids(expression: str) -> set[str]:
    """The ids a metric math expression refers to: the lowercase-initial names that are not
    inside quotes and not function names (functions are upper case: SUM, FILL, IF...)."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", " ", expression)
    return {m.group(1) for m in re.finditer(r"(?<![\w.])([a-z][a-zA-Z0-9_]*)\b(?!\s*\()", text)}


def validate_alarm(body: dict) -> tuple[dict, int | None]:
    """The alarm as stored and its period in seconds; CloudWatchError when CloudWatch refuses it.

    The codes: CloudWatch answers ValidationError to these rules in every public report found
    (e.g. "Exactly one element of the metrics list should return data",
    https://github.com/hashicorp/terraform-provider-aws/issues/29894; "Statistic should not be
    set if list of Metrics is set", https://github.com/aws-cloudformation/cfn-lint/issues/766;
    "DatapointsToAlarm must be less than or equal to EvaluationPeriods",
    https://github.com/hashicorp/terraform/issues/24070; "SEARCH is not supported on Metric
    Alarms", https://github.com/RoboFinSystems/robosystems/pull/1131). MissingParameter is used
    for the members the service model requires, InvalidParameterCombination for Statistic
    with ExtendedStatistic (no public report found; the common error for parameters "that must
    not be used together", API_PutMetricAlarm > Common Errors).

    API_X below is https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_X.html
    (the member constraints are those of the service model the API reference prints)."""
    alarm = dict(body)
    # -- members and their constraints (API_PutMetricAlarm) ----------------------------------
    name = alarm.get("AlarmName")
    if not name:
        raise CloudWatchError("MissingParameter", "The parameter AlarmName is required.")
    _length(name, "alarmName", 1, 255)
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        # "The name must contain only UTF-8 characters, and can't contain ASCII control characters"
        raise CloudWatchError("ValidationError", "AlarmName can't contain ASCII control characters.")
    if "AlarmDescription" in alarm:
        _length(alarm["AlarmDescription"], "alarmDescription", 0, 1024)
    for key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        actions = alarm.get(key) or []
        # ResourceList: at most 5 items of 1-1024 characters, "each action is specified as an ARN".
        if len(actions) > 5:
            raise _constraint(len(actions), key[0].lower() + key[1:], "Member must have length less than or equal to 5")
        for action in actions:
            _length(action, key[0].lower() + key[1:] + ".member", 1, 1024)
            if not ACTION_ARN.fullmatch(action):
                raise CloudWatchError("ValidationError", f"Invalid arn syntax: {action} ({key}: each action is specified as an ARN)")
            # "Valid values": the EC2, Auto Scaling, Lambda, SNS and Systems Manager actions, and
            # (AlarmActions only) an Amazon Q Developer investigation group
            # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html,
            # AlarmActions, OKActions, InsufficientDataActions). An SQS queue, for one, is none.
            kinds = ACTION_TYPES + (ALARM_ONLY_ACTION_TYPES if key == "AlarmActions" else ())
            if not any(pattern.fullmatch(action) for _, pattern in kinds):
                raise CloudWatchError("ValidationError", f"{key}: {action} is not a valid alarm action (valid: {', '.join(kind for kind, _ in kinds)}).")
    if "TreatMissingData" in alarm:
        # "Valid Values: breaching | notBreaching | ignore | missing"
        _enum(alarm["TreatMissingData"], "treatMissingData", TREAT_MISSING_DATA)
    if "EvaluateLowSampleCountPercentile" in alarm:
        _enum(alarm["EvaluateLowSampleCountPercentile"], "evaluateLowSampleCountPercentile", ("evaluate", "ignore"))
    sources = [k for k in ("MetricName", "Metrics", "EvaluationCriteria") if k in alarm]
    if "EvaluationCriteria" in alarm:
        # PromQL alarms: "you must specify either MetricName, a Metrics array, or an
        # EvaluationCriteria" (API_PutMetricAlarm, MetricName). Stored, not evaluated.
        if len(sources) > 1:
            raise CloudWatchError("ValidationError", "EvaluationCriteria should not be set with MetricName or Metrics.")
        return alarm, alarm.get("EvaluationInterval", 60)

    # -- evaluation settings -------------------------------------------------------------------
    if "EvaluationPeriods" not in alarm:
        raise CloudWatchError("MissingParameter", "The parameter EvaluationPeriods is required.")
    n = alarm["EvaluationPeriods"]
    if n < 1:
        raise _constraint(n, "evaluationPeriods", "Member must have value greater than or equal to 1")
    if "DatapointsToAlarm" in alarm:
        # DatapointsToAlarm: min 1; it is the M of "M out of N", N being EvaluationPeriods
        # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation).
        if alarm["DatapointsToAlarm"] < 1:
            raise _constraint(alarm["DatapointsToAlarm"], "datapointsToAlarm", "Member must have value greater than or equal to 1")
        if alarm["DatapointsToAlarm"] > n:
            raise CloudWatchError("ValidationError", "DatapointsToAlarm must be less than or equal to EvaluationPeriods")
    if "ComparisonOperator" not in alarm:
        raise CloudWatchError("MissingParameter", "The parameter ComparisonOperator is required.")
    comparison = alarm["ComparisonOperator"]
    _enum(comparison, "comparisonOperator", tuple(STATIC_OPERATORS) + ANOMALY_OPERATORS)
    # "The values LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold, and
    # GreaterThanUpperThreshold are used only for alarms based on anomaly detection models";
    # Threshold "is required for alarms based on static thresholds, but should not be used for
    # alarms based on anomaly detection models"; ThresholdMetricId: "make this value match the
    # ID of the ANOMALY_DETECTION_BAND function" (API_PutMetricAlarm).
    threshold_id = alarm.get("ThresholdMetricId")
    if comparison in ANOMALY_OPERATORS:
        if threshold_id is None:
            raise CloudWatchError("ValidationError", f"ComparisonOperator {comparison} requires ThresholdMetricId (an anomaly detection band).")
        if "Threshold" in alarm:
            raise CloudWatchError("ValidationError", "Threshold should not be set for an alarm based on an anomaly detection model (ThresholdMetricId).")
    else:
        if threshold_id is not None:
            raise CloudWatchError("ValidationError", f"ThresholdMetricId is used only with the anomaly detection comparison operators, not {comparison}.")
        if "Threshold" not in alarm:
            raise CloudWatchError("ValidationError", "Threshold must not be null (required for an alarm with a static threshold).")
        alarm["Threshold"] = float(alarm["Threshold"])

    if "Metrics" in alarm:
        period = _validate_metrics(alarm)
    else:
        period = _validate_single_metric(alarm)

    # -- the evaluation range ------------------------------------------------------------------
    # "An alarm's total current evaluation period can be no longer than seven days, so Period
    # multiplied by EvaluationPeriods can't be more than 604,800 seconds. For alarms with a
    # period of less than one hour (3,600 seconds), the total evaluation period can't be longer
    # than one day (86,400 seconds)." (API_PutMetricAlarm, Period)
    if period * n > MAX_RANGE:
        raise CloudWatchError("ValidationError", f"Metrics cannot be checked across more than 7 days (EvaluationPeriods * Period must be <= {MAX_RANGE}; got {n} * {period}).")
    if period < 3600 and period * n > MAX_RANGE_SHORT_PERIOD:
        raise CloudWatchError("ValidationError", f"Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= {MAX_RANGE_SHORT_PERIOD} when Period < 3600; got {n} * {period}).")
    return alarm, period


def _validate_single_metric(alarm: dict) -> int:
    # "For each PutMetricAlarm operation, you must specify either MetricName or a Metrics array"
    # (API_PutMetricAlarm, Metrics); CloudWatch's words: "MetricName must not be null"
    # (https://github.com/aws-cloudformation/cfn-lint/pull/771).
    if "MetricName" not in alarm:
        raise CloudWatchError("ValidationError", "MetricName must not be null (an alarm needs MetricName or a Metrics array).")
    if "Namespace" not in alarm:
        raise CloudWatchError("ValidationError", "Namespace must not be null.")
    _length(alarm["MetricName"], "metricName", 1, 255)
    _length(alarm["Namespace"], "namespace", 1, 255)
    if alarm["Namespace"].startswith(":"):
        raise _constraint(alarm["Namespace"], "namespace", "Member must satisfy regular expression pattern: [^:].*")
    _check_dimensions(alarm.get("Dimensions") or [], "dimensions")
    if "Unit" in alarm:
        _enum(alarm["Unit"], "unit", sorted(UNITS))
    # "When you call PutMetricAlarm and specify a MetricName, you must specify either Statistic
    # or ExtendedStatistic but not both." (API_PutMetricAlarm, Statistic)
    if "Statistic" in alarm and "ExtendedStatistic" in alarm:
        raise CloudWatchError("InvalidParameterCombination", "Statistic and ExtendedStatistic cannot both be set.")
    if "Statistic" in alarm:
        _enum(alarm["Statistic"], "statistic", STATISTICS)
    elif "ExtendedStatistic" in alarm:
        if not _extended_statistic_ok(alarm["ExtendedStatistic"]):
            raise CloudWatchError("ValidationError", f"ExtendedStatistic {alarm['ExtendedStatistic']!r} is not valid (p90, tm90, tc90, ts90, wm90, IQM, PR(n:m), TC/TM/TS/WM(X%:X%)).")
    else:
        raise CloudWatchError("ValidationError", "Either Statistic or ExtendedStatistic must be set for an alarm on MetricName.")
    # "Period is required for alarms based on static thresholds." ("Period must not be null",
    # https://github.com/hashicorp/terraform-provider-aws/issues/11011)
    if "Period" not in alarm:
        raise CloudWatchError("ValidationError", "Period must not be null.")
    _check_period(alarm["Period"], "Period")
    return alarm["Period"]


def _validate_metrics(alarm: dict) -> int:
    # "If you use the Metrics parameter, you cannot include the Namespace, MetricName,
    # Dimensions, Period, Unit, Statistic, or ExtendedStatistic parameters of PutMetricAlarm in
    # the same operation." (API_PutMetricAlarm, Metrics)
    for key in SINGLE_METRIC_FIELDS:
        if key in alarm:
            raise CloudWatchError("ValidationError", f"{key} should not be set if list of Metrics is set.")
    queries = alarm["Metrics"]
    # "A single PutMetricAlarm call can include up to 20 MetricDataQuery structures in the array.
    # The 20 structures can include as many as 10 structures that contain a MetricStat parameter
    # ..., and as many as 10 structures that contain the Expression parameter"
    # (API_MetricDataQuery); "Alarms based on metric math expressions can reference a maximum
    # of 10 metrics" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html).
    if len(queries) > 20:
        raise _constraint(len(queries), "metrics", "Member must have length less than or equal to 20")
    stats = [q for q in queries if "MetricStat" in q]
    expressions = [q for q in queries if "Expression" in q]
    if len(stats) > 10:
        raise CloudWatchError("ValidationError", f"Alarms on math expressions cannot contain more than 10 individual metrics (got {len(stats)} MetricStat entries).")
    if len(expressions) > 10:
        raise CloudWatchError("ValidationError", f"Alarms on math expressions cannot contain more than 10 expressions (got {len(expressions)}).")
    ids = []
    for i, q in enumerate(queries):
        member = f"metrics.{i + 1}.member"
        # Id: required, 1-255; "The valid characters are letters, numbers, and underscore. The
        # first character must be a lowercase letter." ... "must be unique" (API_MetricDataQuery)
        if "Id" not in q:
            raise CloudWatchError("MissingParameter", f"The parameter Metrics.member.{i + 1}.Id is required.")
        _length(q["Id"], f"{member}.id", 1, 255)
        if not METRIC_ID.fullmatch(q["Id"]):
            raise CloudWatchError("ValidationError", f"Invalid metrics list: Id {q['Id']!r} must start with a lowercase letter and contain only letters, numbers and underscores.")
        if q["Id"] in ids:
            raise CloudWatchError("ValidationError", f"Invalid metrics list: the Id {q['Id']!r} is not unique.")
        ids.append(q["Id"])
        # "Within one MetricDataQuery object, you must specify either Expression or MetricStat
        # but not both." (API_MetricDataQuery)
        if ("MetricStat" in q) == ("Expression" in q):
            raise CloudWatchError("ValidationError", f"Invalid metrics list: {q['Id']} must have exactly one of MetricStat or Expression.")
        if "Period" in q:
            _check_period(q["Period"], f"Metrics[{q['Id']}].Period")
        if "MetricStat" in q:
            _validate_metric_stat(q["MetricStat"], q["Id"], member)
        else:
            _length(q["Expression"], f"{member}.expression", 1, 2048)
    # "You can't create an alarm based on the SEARCH expression. This is because search
    # expressions return multiple time series, and an alarm based on a math expression can watch
    # only one time series."
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-search-expressions.html);
    # CloudWatch answers "SEARCH is not supported on Metric Alarms".
    for q in expressions:
        if re.search(r"\bSEARCH\s*\(", q["Expression"], re.IGNORECASE):
            raise CloudWatchError("ValidationError", f"SEARCH is not supported on Metric Alarms (Metrics[{q['Id']}]: {q['Expression']}).")
    # Metrics Insights: "Each GetMetricData operation can have only one query"; "Only the latest
    # 3 hours of data can be used for evaluating the alarm's conditions"
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-limits.html,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html); the query
    # carries its own Period
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Metrics_Insights_Alarm.html).
    insights = [q for q in expressions if q["Expression"].lstrip().upper().startswith("SELECT")]
    if len(insights) > 1:
        raise CloudWatchError("ValidationError", "Invalid metrics list: an alarm can have only one Metrics Insights query.")
    for q in insights:
        if "Period" not in q:
            raise CloudWatchError("ValidationError", f"Period must not be null (the Metrics Insights query {q['Id']}).")
        if q["Period"] * alarm["EvaluationPeriods"] > MAX_RANGE_INSIGHTS:
            raise CloudWatchError("ValidationError", f"A Metrics Insights alarm evaluates only the latest 3 hours of data: Period * EvaluationPeriods must be <= {MAX_RANGE_INSIGHTS} (got {q['Period']} * {alarm['EvaluationPeriods']}).")
    # A math expression uses "the Id of the other metrics or queries to refer to those metrics"
    # (API_MetricDataQuery, Expression): each id it names must be in the array.
    for q in expressions:
        if q in insights:
            continue
        unknown = sorted(_expression_ids(q["Expression"]) - set(ids))
        if unknown:
            raise CloudWatchError("ValidationError", f"Invalid metrics list: the expression of {q['Id']} refers to {', '.join(unknown)}, not in the metrics list.")
    # "Any expression used in a PutMetricAlarm operation must return a single time series"
    # (API_MetricDataQuery); "The final result of any math expression must be a single time
    # series or an array of time series. Some functions produce a scalar number ... it can't be
    # the final expression result", and METRICS(), SORT, SLICE and ANOMALY_DETECTION_BAND return
    # an array ("TS[]") while AVG, MAX, MIN, SUM, STDDEV and DATAPOINT_COUNT of an array, FIRST
    # and LAST return one time series
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-functions-list).
    # The anomaly detection band an alarm names as ThresholdMetricId is the documented exception
    # (API_PutMetricAlarm, ThresholdMetricId). An expression the stand-in cannot type is let
    # through.
    skip = {q["Id"] for q in insights} | ({alarm["ThresholdMetricId"]} if "ThresholdMetricId" in alarm else set())
    for qid, (shape, why) in _expression_shapes(queries, skip).items():
        expression = next(q["Expression"] for q in expressions if q["Id"] == qid)
        if shape == TS_ARRAY:
            raise CloudWatchError("ValidationError", f"Invalid metrics list: the expression of {qid} ({expression}) returns an array of time series ({why}); an expression of an alarm must return a single time series.")
        if shape == S:
            raise CloudWatchError("ValidationError", f"Invalid metrics list: the expression of {qid} ({expression}) returns a scalar ({why}), not a time series; an expression of an alarm must return a single time series.")
    # "When used in PutMetricAlarm, specify true for the one expression result to use as the
    # alarm. For all other metrics and expressions ..., specify ReturnData as False"; omitted,
    # ReturnData is true ("If you omit this, the default of true is used", API_MetricDataQuery).
    returned = [q for q in queries if q.get("ReturnData", True)]
    if len(returned) != 1:
        raise CloudWatchError("ValidationError", f"Exactly one element of the metrics list should return data (ReturnData true or omitted: {', '.join(q['Id'] for q in returned) or 'none'}).")
    # "A math expression used for an alarm can include as many as 10 metrics. Each metric must
    # be using the same period." (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-data-queries.html)
    periods = sorted({q["MetricStat"]["Period"] for q in stats})
    if len(periods) > 1:
        raise CloudWatchError("ValidationError", f"Invalid metrics list: every metric of the alarm must use the same period (got {periods}).")
    threshold_id = alarm.get("ThresholdMetricId")
    if threshold_id is not None:
        band = next((q for q in expressions if q["Id"] == threshold_id), None)
        if band is None or "ANOMALY_DETECTION_BAND" not in band["Expression"].upper():
            raise CloudWatchError("ValidationError", f"ThresholdMetricId {threshold_id} must be the Id of the ANOMALY_DETECTION_BAND expression in Metrics.")
    target = returned[0]
    period = target.get("Period") or target.get("MetricStat", {}).get("Period") or (periods[0] if periods else None)
    if period is None:
        raise CloudWatchError("ValidationError", f"Period must not be null (Metrics[{target['Id']}] has no Period and no metric to take it from).")
    return period


def _validate_metric_stat(ms: dict, qid: str, member: str) -> None:
    # API_MetricStat: Metric, Period and Stat are required; API_Metric: Namespace, MetricName,
    # Dimensions (<= 30); Unit a StandardUnit; Stat a statistic or an extended statistic.
    for key in ("Metric", "Period", "Stat"):
        if key not in ms:
            raise CloudWatchError("MissingParameter", f"The parameter Metrics[{qid}].MetricStat.{key} is required.")
    metric = ms["Metric"]
    for key in ("Namespace", "MetricName"):
        if not metric.get(key):
            raise CloudWatchError("ValidationError", f"{key} must not be null (Metrics[{qid}].MetricStat.Metric).")
    _length(metric["Namespace"], f"{member}.metricStat.metric.namespace", 1, 255)
    _length(metric["MetricName"], f"{member}.metricStat.metric.metricName", 1, 255)
    _check_dimensions(metric.get("Dimensions") or [], f"{member}.metricStat.metric.dimensions")
    _check_period(ms["Period"], f"Metrics[{qid}].MetricStat.Period")
    if ms["Stat"] not in STATISTICS and not _extended_statistic_ok(ms["Stat"]):
        raise CloudWatchError("ValidationError", f"Metrics[{qid}].MetricStat.Stat {ms['Stat']!r} is not a CloudWatch statistic.")
    if "Unit" in ms:
        _enum(ms["Unit"], f"{member}.metricStat.unit", sorted(UNITS))


# -- evaluation helpers ----------------------------------------------------------
def _alarm_stat(values: list[float], stat: str) -> float:
    if stat in STATISTICS:
        return CloudWatch._stat(values, stat)
    percentile = re.fullmatch(r"p(\d{1,3}(?:\.\d+)?)", stat)
    if percentile:
        ordered = sorted(values)
        rank = math.ceil(float(percentile.group(1)) / 100 * len(ordered))
        return ordered[min(max(rank, 1), len(ordered)) - 1]
    raise CannotEvaluate(f"statistic {stat}")


ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant,
              ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def _parse(expression: str) -> ast.AST | None:
    """A metric math expression as a Python expression tree: functions are calls, arrays
    ([m1, m2]) lists, AND/&& and OR/|| Python's and/or, ^ a power. None when it does not parse
    so (an id that is a Python keyword, syntax metric math does not have)."""
    parts = re.split(r"('[^']*'|\"[^\"]*\")", expression.strip().replace("\u201c", '"').replace("\u201d", '"'))
    for i in range(0, len(parts), 2):  # outside quotes
        parts[i] = re.sub(r"\|\||\bOR\b", " or ", re.sub(r"&&|\bAND\b", " and ", parts[i])).replace("^", "**")
    try:
        return ast.parse("".join(parts), mode="eval").body
    except SyntaxError:
        return None


def _number(node: ast.AST) -> float | None:
    """The value of a numeric literal (possibly negated), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _arithmetic(expression: str) -> ast.AST:
    """The expression when the stand-in can evaluate it: arithmetic over ids and numbers
    (+ - * / and parentheses) and FILL(x, number)."""
    tree = _parse(expression)
    if tree is None:
        raise CannotEvaluate(f"expression {expression!r}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _check_fill(node, expression)
            continue
        bad_constant = isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float)))
        if not isinstance(node, ARITHMETIC) or bad_constant:
            raise CannotEvaluate(f"expression {expression!r} (only + - * / over ids and numbers, and FILL(x, number), are evaluated)")
    return tree


def _check_fill(node: ast.Call, expression: str) -> None:
    # FILL: "Arguments: TS, [S | REPEAT | LINEAR]"; "Fills the missing values of a time series"
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-functions-list).
    # Only the scalar filler is evaluated; REPEAT and LINEAR are not (the stand-in does not
    # know how CloudWatch fills the range's edges with them).
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if name != "FILL":
        raise CannotEvaluate(f"expression {expression!r} (function {name})")
    if len(node.args) != 2 or node.keywords:
        raise CannotEvaluate(f"expression {expression!r} (FILL takes a time series and a filler)")
    if _number(node.args[1]) is None:
        filler = node.args[1].id if isinstance(node.args[1], ast.Name) else ast.unparse(node.args[1])
        raise CannotEvaluate(f"expression {expression!r} (FILL with {filler}: only a number is evaluated as the filler)")


def _compute(node: ast.AST, value_of) -> float | None:
    """The value of an evaluable expression (see _arithmetic) for one period; None (missing)
    when an operand is missing."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return value_of(node.id)
    if isinstance(node, ast.Call):
        # FILL(x, number): the period's value of x, or the number where x is missing.
        value = _compute(node.args[0], value_of)
        return _number(node.args[1]) if value is None else value
    if isinstance(node, ast.UnaryOp):
        v = _compute(node.operand, value_of)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    left, right = _compute(node.left, value_of), _compute(node.right, value_of)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Div):
        return None if right == 0 else left / right
    return {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}[type(node.op)](left, right)


# -- what a metric math expression returns ----------------------------------------------
# The data types of https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html#metric-math-syntax-datatypes :
# "S represents a scalar number", "TS is a time series", "TS[] is an array of time series";
# each function's "Return type" is the one of its row in "Functions supported for metric math".
S, TS, TS_ARRAY = 0, 1, 2
ARRAY_FUNCTIONS = {"METRICS", "SORT", "ANOMALY_DETECTION_BAND"}                 # -> TS[]
SERIES_FUNCTIONS = {"IF", "TIME_SERIES", "SERVICE_QUOTA", "INSIGHT_RULE_METRIC",   # -> TS
                    "FIRST", "LAST"}
SCALAR_FUNCTIONS = {"PERIOD", "METRIC_COUNT"}                                       # -> S
# "The AVG of a single time series returns a scalar ... The AVG of an array of time series
# returns a single time series" (likewise MAX, MIN, SUM, STDDEV, DATAPOINT_COUNT).
REDUCERS = {"AVG", "MAX", "MIN", "SUM", "STDDEV", "DATAPOINT_COUNT"}              # TS -> S, TS[] -> TS
ELEMENTWISE = {"ABS", "CEIL", "FLOOR", "LOG", "LOG10", "DIFF", "DIFF_TIME", "RATE", "RUNNING_SUM",  # TS -> TS,
               "FILL", "REMOVE_EMPTY", "MINUTE", "HOUR", "DAY", "DATE", "MONTH", "YEAR", "EPOCH"}  # TS[] -> TS[]


def _shape(node: ast.AST, shape_of_id) -> tuple[int | None, str]:
    """(S, TS or TS_ARRAY, and what made it so) of an expression tree; (None, "") when the
    stand-in cannot tell (a function it does not know, a keyword argument such as REPEAT)."""
    if isinstance(node, ast.Constant):
        return (S, "a number") if _number(node) is not None else (None, "")
    if isinstance(node, ast.Name):
        return shape_of_id(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return TS_ARRAY, "an array [...]"
    if isinstance(node, ast.UnaryOp):
        return _shape(node.operand, shape_of_id)
    if isinstance(node, (ast.BinOp, ast.Compare, ast.BoolOp)):
        # Arithmetic: "S, S S, TS TS, TS S, TS[] TS, TS[]"; comparisons and logical operators
        # between a pair of time series or of scalars: the widest operand decides.
        operands = ([node.left, node.right] if isinstance(node, ast.BinOp)
                    else [node.left, *node.comparators] if isinstance(node, ast.Compare) else node.values)
        shapes = [_shape(o, shape_of_id) for o in operands]
        return (None, "") if any(s is None for s, _ in shapes) else max(shapes, key=lambda s: s[0])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in ARRAY_FUNCTIONS:
            return TS_ARRAY, name
        if name == "SLICE":
            # "Return type: TS[] TS" -- a single series when the literal range is one long
            # (SLICE(x, n, n+1)); an array otherwise.
            bounds = [_number(a) for a in node.args[1:3]]
            return (TS, name) if len(bounds) == 2 and None not in bounds and bounds[1] - bounds[0] == 1 else (TS_ARRAY, name)
        if name in SERIES_FUNCTIONS:
            return TS, name
        if name in SCALAR_FUNCTIONS:
            return S, name
        first = _shape(node.args[0], shape_of_id) if node.args else (None, "")
        if name in REDUCERS:
            return {TS_ARRAY: (TS, name), TS: (S, name)}.get(first[0], (None, ""))
        if name in ELEMENTWISE:
            return first
    return None, ""


def _expression_shapes(queries: list[dict], skip: set[str]) -> dict[str, tuple[int | None, str]]:
    """The shape of each math expression of a metrics list but those in `skip`."""
    by_id = {q["Id"]: q for q in queries}
    shapes: dict[str, tuple[int | None, str]] = {}

    def of_id(qid: str, seen: tuple = ()) -> tuple[int | None, str]:
        query = by_id.get(qid)
        if query is None or qid in seen:
            return None, ""  # a keyword (REPEAT, ASC, AVG as SORT's function...) or a cycle
        if "MetricStat" in query:
            return TS, qid
        if qid not in shapes:
            tree = _parse(query["Expression"])
            shapes[qid] = (None, "") if tree is None else _shape(tree, lambda ref: of_id(ref, seen + (qid,)))
        return shapes[qid]

    return {q["Id"]: of_id(q["Id"]) for q in queries if "Expression" in q and q["Id"] not in skip}
