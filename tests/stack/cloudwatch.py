"""CloudWatch over the Smithy RPC v2 CBOR protocol, which the current aws-sdk-cloudwatch
speaks and moto does not. Metrics are kept in memory and readable back through
ListMetrics, GetMetricStatistics and GetMetricData, so tests assert on what the SDK sent.

Limits enforced as documented for PutMetricData: at most 1,000 metric data items and
1 MB (1,048,576 bytes) of request body, 30 dimensions, no NaN or infinity, valid units."""

from __future__ import annotations

import datetime as dt
import gzip
import math
import threading

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
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (region, namespace, name, frozenset(dims)) -> list of (timestamp, value, unit)
        self.data: dict[tuple, list[tuple[float, float, str]]] = {}
        self.put_calls = 0
        self.throttle_next = 0
        self.fail_next = 0

    def reset(self) -> None:
        with self.lock:
            self.data.clear()
            self.put_calls = 0
            self.throttle_next = 0
            self.fail_next = 0

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
        return Response(
            cbor2.dumps(result, datetime_as_timestamp=True),
            status,
            headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
        )

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
