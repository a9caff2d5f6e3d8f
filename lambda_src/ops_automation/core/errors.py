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


def is_throttling(error: BaseException) -> bool:
    return isinstance(error, ClientError) and error_code(error) in THROTTLING_ERRORS
