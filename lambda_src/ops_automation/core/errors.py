"""Error types and the AWS error codes the core reasons about, in one place."""

from __future__ import annotations

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
