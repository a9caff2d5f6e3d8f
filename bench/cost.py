"""5. Projected monthly cost, line by line, from the measured calls of one daily cycle and a list-price table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DAYS = 30
HOURS_PER_MONTH = 730
GB = 1024**3


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    free: float  # always-free allowance per month, in the same unit as the quantity
    source: str


# us-east-1 list prices (checked for issue 5; see bench/RESULTS.md for the sources).
PRICES: dict[str, Price] = {
    "lambda_requests": Price(0.20 / 1e6, "request", 1e6, "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_seconds": Price(0.0000133334, "GB-second (arm64)", 400_000, "https://aws.amazon.com/lambda/pricing/"),
    "dynamodb_writes": Price(
        0.625 / 1e6, "write request unit", 0, "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "dynamodb_reads": Price(0.125 / 1e6, "read request unit", 0, "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "sqs_requests": Price(0.40 / 1e6, "request", 1e6, "https://aws.amazon.com/sqs/pricing/"),
    "logs_ingestion": Price(0.50 / GB, "byte", 5 * GB, "https://aws.amazon.com/cloudwatch/pricing/"),
    "custom_metrics": Price(
        0.30, "metric-month (prorated by the hour)", 10, "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "alarms": Price(0.10, "standard alarm-month", 10, "https://aws.amazon.com/cloudwatch/pricing/"),
    "sns_publishes": Price(0.50 / 1e6, "publish", 1e6, "https://aws.amazon.com/sns/pricing/"),
    "scheduler_invocations": Price(1.00 / 1e6, "invocation", 14e6, "https://aws.amazon.com/eventbridge/pricing/"),
    "eventbridge_aws_events": Price(0.0, "AWS service event", 0, "https://aws.amazon.com/eventbridge/pricing/"),
    # snapshot-copy: events one bus sends to another (the copy results forwarded from a destination region) "are
    # charged as custom events" (EventBridge user guide, eb-bus-to-bus).
    "eventbridge_custom_events": Price(1.00 / 1e6, "custom event", 0, "https://aws.amazon.com/eventbridge/pricing/"),
    # Not a line of any projection: stated next to the ebs-snapshot figures (storage is billed by EBS whichever
    # design makes the snapshots, per GB-month of the blocks each snapshot adds).
    "ebs_snapshot_storage": Price(0.05, "GB-month (standard tier)", 0, "https://aws.amazon.com/ebs/pricing/"),
    # Not a line of any projection: ssm-runcommand's output, which the instances write to the user's bucket (their
    # role's PutObject), priced apart on an assumed output size. S3 Standard in us-east-1, list prices not confirmed
    # on the pages stored for this repository; no free tier applied.
    "s3_put_requests": Price(0.005 / 1000, "PUT request (S3 Standard)", 0, "https://aws.amazon.com/s3/pricing/"),
    "s3_standard_storage": Price(0.023, "GB-month (S3 Standard, first 50 TB)", 0, "https://aws.amazon.com/s3/pricing/"),
}
EXCLUDED_PRICES = frozenset({"ebs_snapshot_storage", "s3_put_requests", "s3_standard_storage"})


def price_sources(*keys: str) -> str:
    """The sources of the prices of every projection line, and of `keys`."""
    used = [key for key in PRICES if key not in EXCLUDED_PRICES or key in keys]
    return ", ".join(sorted({PRICES[key].source for key in used}))


@dataclass(frozen=True)
class LatencyModel:
    """Stated, not measured on AWS: the duration Lambda bills for a call and for an invocation's own work."""

    ec2_call_s: float = 0.150  # also an SSM call's (ssm-runcommand): a control-plane API like EC2's
    other_call_s: float = 0.020
    invocation_s: float = 0.010
    memory_gb: float = 256 / 1024
    platform_log_bytes: int = 350  # START, END and REPORT lines of every invocation


@dataclass(frozen=True)
class CycleUsage:
    """What one daily cycle costs, per instance (`each`) and per cycle whatever the fleet (`fixed`)."""

    design: str
    ec2_calls_each: float
    other_calls_each: dict[str, float]  # "dynamodb.UpdateItem" -> calls per instance
    fixed_calls: dict[str, float]  # planner calls and the like, per cycle
    invocations_each: float
    invocations_fixed: float
    sqs_messages_each: float  # messages consumed by the event source mapping
    eventbridge_deliveries_each: float  # AMI events EventBridge puts on the queue
    log_bytes_each: float
    metric_names: int
    metric_hours_per_day: float  # hours of each day in which each metric receives data
    alarms: int
    idle_sqs_requests_per_month: float
    checker_invocations_per_month: float = 0  # the origin's per-minute checker
    scheduler_invocations_per_day: float = 1
    service_events: str = "AMI state"  # what the EventBridge rule forwards, for the line's name


@dataclass(frozen=True)
class Line:
    item: str
    quantity: float
    unit: str
    usd: float
    usd_after_free_tier: float


@dataclass(frozen=True)
class Projection:
    design: str
    instances: int
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return math.fsum(line.usd for line in self.lines)

    @property
    def total_after_free_tier(self) -> float:
        return math.fsum(line.usd_after_free_tier for line in self.lines)


def _line(item: str, price_key: str, quantity: float) -> Line:
    price = PRICES[price_key]
    return Line(item, quantity, price.per, quantity * price.usd, max(0.0, quantity - price.free) * price.usd)


def _calls(usage: CycleUsage, n: int, prefix: str) -> float:
    each = math.fsum(v for k, v in usage.other_calls_each.items() if k.startswith(prefix))
    fixed = math.fsum(v for k, v in usage.fixed_calls.items() if k.startswith(prefix))
    return each * n + fixed


def cycle_duration_s(usage: CycleUsage, n: int, latency: LatencyModel) -> float:
    """Billed Lambda seconds of one cycle (the checker's aside). SSM calls (ssm-runcommand's only) take an EC2
    call's time."""
    ssm = _calls(usage, n, "ssm.")
    ec2 = usage.ec2_calls_each * n + _calls(usage, n, "ec2.") + ssm
    others = (
        math.fsum(usage.other_calls_each.values()) * n
        + math.fsum(usage.fixed_calls.values())
        - _calls(usage, n, "ec2.")
    )
    others -= ssm
    invocations = usage.invocations_each * n + usage.invocations_fixed
    return ec2 * latency.ec2_call_s + others * latency.other_call_s + invocations * latency.invocation_s


def project(usage: CycleUsage, n: int, latency: LatencyModel | None = None, days: float = DAYS) -> Projection:
    """`days`: cycles a month (instance-scheduler: 22 weekdays of one start and one stop slot)."""
    latency = latency or LatencyModel()
    invocations = (usage.invocations_each * n + usage.invocations_fixed) * days + usage.checker_invocations_per_month
    gb_seconds = cycle_duration_s(usage, n, latency) * days * latency.memory_gb
    gb_seconds += usage.checker_invocations_per_month * latency.invocation_s * latency.memory_gb
    sqs = (
        _calls(usage, n, "sqs.") * days
        + 2 * usage.sqs_messages_each * n * days  # the event source mapping's receive and delete per message
        + usage.eventbridge_deliveries_each * n * days
        + usage.idle_sqs_requests_per_month
    )
    log_bytes = (usage.log_bytes_each * n * days) + invocations * latency.platform_log_bytes
    metric_months = usage.metric_names * usage.metric_hours_per_day * days / HOURS_PER_MONTH
    lines = [
        _line("Lambda requests", "lambda_requests", invocations),
        _line("Lambda duration (256 MB, arm64)", "lambda_gb_seconds", gb_seconds),
        _line("DynamoDB on-demand writes", "dynamodb_writes", _writes(usage, n) * days),
        _line("DynamoDB on-demand reads", "dynamodb_reads", _calls(usage, n, "dynamodb.GetItem") * days),
        _line("SQS requests (incl. idle long polls)", "sqs_requests", sqs),
        _line("CloudWatch Logs ingestion", "logs_ingestion", log_bytes),
        _line("CloudWatch custom metrics (EMF)", "custom_metrics", metric_months),
        _line("CloudWatch alarms", "alarms", usage.alarms),
        _line("SNS (alerts on failure only)", "sns_publishes", 0),
        _line("EventBridge Scheduler", "scheduler_invocations", usage.scheduler_invocations_per_day * days),
        _line(
            f"EventBridge {usage.service_events} events",
            "eventbridge_aws_events",
            usage.eventbridge_deliveries_each * n * days,
        ),
    ]
    return Projection(usage.design, n, lines)


def _writes(usage: CycleUsage, n: int) -> float:
    return _calls(usage, n, "dynamodb.UpdateItem") + _calls(usage, n, "dynamodb.PutItem")


# The event source mapping long-polls the queue even when it is empty: 5 pollers (Lambda scales down to 5 at low
# traffic, and its further optimisation to 2 is not available with maximum concurrency set), 20 s long polls.
ESM_POLLERS = 5
LONG_POLL_S = 20
IDLE_POLLS_PER_MONTH = ESM_POLLERS * DAYS * 86_400 / LONG_POLL_S
MINUTES_PER_MONTH = DAYS * 24 * 60
ISSUE_OLD_FIGURE_20 = 1.88  # issue 5 §4: the design before this issue, 20 instances, defaults


def money(usd: float) -> str:
    return f"${usd:,.2f}" if usd >= 0.01 or usd == 0 else f"${usd:.4f}"


def quantity(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:,.1f} k"
    return f"{value:,.2f}" if not math.isclose(value, round(value)) else f"{round(value):,}"


def table(ours: Projection, origin: Projection) -> str:
    """Markdown: each line of ours next to the origin design at the same fleet size."""
    rows = [
        "| line | ours: quantity/month | ours | ours after free tier | origin design | origin after free tier |",
        "|---|---|---|---|---|---|",
    ]
    for mine, theirs in zip(ours.lines, origin.lines, strict=True):
        rows.append(
            f"| {mine.item} | {quantity(mine.quantity)} {mine.unit} | {money(mine.usd)} | "
            f"{money(mine.usd_after_free_tier)} | {money(theirs.usd)} | {money(theirs.usd_after_free_tier)} |"
        )
    rows.append(
        f"| **total** | | **{money(ours.total)}** | **{money(ours.total_after_free_tier)}** | "
        f"**{money(origin.total)}** | **{money(origin.total_after_free_tier)}** |"
    )
    return "\n".join(rows)
