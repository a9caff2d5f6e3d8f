"""Error types and the AWS error codes the core reasons about, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

# EC2 throttles per account and region (token buckets shared with every workload of the account); other services
# use their own spellings. All of them mean "later", never "never".
THROTTLING_ERRORS = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestThrottled",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
IMAGE_GONE_ERRORS = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
SNAPSHOT_GONE_ERRORS = frozenset({"InvalidSnapshot.NotFound"})
# DeleteSnapshot right after DeregisterImage often answers InUse (eventual consistency): retried, never "kept".
SNAPSHOT_IN_USE = "InvalidSnapshot.InUse"
INSTANCE_GONE_ERRORS = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
INCORRECT_INSTANCE_STATE = "IncorrectInstanceState"
DUPLICATE_AMI_NAME = "InvalidAMIName.Duplicate"
VOLUME_GONE_ERRORS = frozenset({"InvalidVolume.NotFound", "InvalidVolumeID.Malformed"})
# The regional snapshot quota does not pass until someone raises it or deletes snapshots (alerted).
SNAPSHOT_QUOTA_ERRORS = frozenset({"SnapshotLimitExceeded"})
# A volume accepts a new snapshot only every 15 seconds and holds at most 5 pending ones (1 for st1/sc1); the
# IncorrectState/InvalidState errors mean "the previous snapshot request on this volume has not completed", and the
# region holds a limited number of pending snapshots (EC2 API error codes). All pass by themselves and are not the
# account's API throttling: retried, never the slot's end.
SNAPSHOT_RATE_ERRORS = frozenset(
    {
        "SnapshotCreationPerVolumeRateExceeded",
        "ConcurrentSnapshotLimitExceeded",
        "IncorrectState",
        "InvalidState",
        "PendingSnapshotLimitExceeded",
    }
)

# Why one account x region of a fanned-out policy cannot be listed at all, for good: retrying the slot cannot help,
# so it is alerted once and dropped (core.planner `plan_scope`). Only errors of the calls that concern the TARGET
# are judged so, by the operation that failed (ClientError.operation_name); an error of the hub's own calls (SQS,
# DynamoDB, SNS; STS's RegionDisabledException or InvalidClientTokenId, which concern the hub's STS region, AssumeRole
# always running there) is raised: SQS retries the item and the dead-letter alert names it on give-up.
# - STS AssumeRole answers AccessDenied when the role does not exist or its trust policy does not allow the caller
#   ("Troubleshoot IAM roles", https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html).
# - A read in a region not enabled for the account: AuthFailure ("AWS was not able to validate the provided access
#   credentials") or OptInRequired ("You are not authorized to use the requested service", EC2 API error codes);
#   other services: InvalidClientTokenId / UnrecognizedClientException.
# - An SCP or the role's policy denies the read: UnauthorizedOperation (EC2), AccessDenied(Exception) elsewhere.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
ASSUME_ROLE = "AssumeRole"
REGION_NOT_ENABLED_ERRORS = frozenset(
    {"AuthFailure", "OptInRequired", "InvalidClientTokenId", "UnrecognizedClientException"}
)
DENIED_ERRORS = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
# The IAM prefix of a target-side read, by its operation name (for the reason's action); EC2 otherwise.
_READ_SERVICES = (("DescribeDB", "rds"), ("DescribeAutoScaling", "autoscaling"), ("DescribeScaling", "autoscaling"))


@dataclass(frozen=True)
class ScopeFailure:
    """A permanent failure of one scope. `whole_account`: AssumeRole failed, so every region of the account fails
    alike (alerted once per account and slot); otherwise once per account, region and slot."""

    code: str
    reason: str
    whole_account: bool

    def describe(self) -> str:
        return f"{self.code}: {self.reason}"


def is_target_read(operation: str) -> bool:
    """The reads a scope makes in the target account (EC2/RDS/Auto Scaling Describe*, DescribeRegions); no call of
    the hub in a scope worker's path is a Describe."""
    return operation.startswith("Describe")


def action_of(operation: str) -> str:
    service = next((name for prefix, name in _READ_SERVICES if operation.startswith(prefix)), "ec2")
    return f"{service}:{operation}"


def scope_failure(error: BaseException, role_arn: str) -> ScopeFailure | None:
    """Why a scope can never be listed, worded by the operation that failed, or None: retried (transient, or not
    the target's error)."""
    if not isinstance(error, ClientError):
        return None
    code, operation = error_code(error), error.operation_name
    if operation == ASSUME_ROLE:
        if code != "AccessDenied":
            return None
        return ScopeFailure(
            code,
            f"AssumeRole of {role_arn} was refused: the role is missing or its trust policy does not allow this"
            " function (or, if every account reports this, the hub's own policy refuses it: target_organization_id,"
            " a permissions boundary or an SCP on the hub)",
            True,
        )
    if not is_target_read(operation):
        return None
    if code in REGION_NOT_ENABLED_ERRORS:
        return ScopeFailure(code, f"the region is not enabled for the account ({operation} refused)", False)
    if code in DENIED_ERRORS:
        action = action_of(operation)
        return ScopeFailure(code, f"{action} is denied by an SCP or the role's policy ({role_arn})", False)
    return None


class InvalidInputError(ValueError):
    """A user-supplied identifier, filter or setting is malformed; names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class ConfigError(InvalidInputError):
    """A configuration variable is missing or malformed; the field is the environment variable's name."""

    @property
    def variable(self) -> str:
        return self.field


class MalformedEventError(ValueError):
    """A payload that no handler can act on; the reason says which field is wrong."""


class PartialFailure(RuntimeError):
    """Some targets could not be handled; the rest were. Raised last so the invocation is retried and alarms."""

    def __init__(self, failures: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"{len(failures)} failure(s): " + "; ".join(failures))
        self.failures = tuple(failures)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def made_nothing(error: ClientError) -> bool:
    """Whether a refused request certainly created nothing: a client error (4xx) or a throttle. A 5xx or a lost
    response leaves the outcome unknown."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
    return status < 500 or error_code(error) in THROTTLING_ERRORS


def is_throttling(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) in THROTTLING_ERRORS
