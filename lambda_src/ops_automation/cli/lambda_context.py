"""The Lambda context object a handler (and Powertools) reads, for running the functions' code outside Lambda."""

from __future__ import annotations

from dataclasses import dataclass

# `plan` sweeps run with Lambda's maximum timeout as their budget: the deployed function would stop there too.
LAMBDA_MAX_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class LocalContext:
    function_name: str
    region: str
    account: str
    memory_limit_in_mb: int = 256
    timeout_seconds: int = LAMBDA_MAX_TIMEOUT_SECONDS
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    function_version: str = "$LATEST"
    log_stream_name: str = "ops-automation-cli"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000
