"""moto made faithful to AWS where this project depends on it: every patch in one place.

One entry point, `faithful_aws()`, used around in-process moto in both forms:

* `mock_aws()` (tier-1 handler tests): `with mock_aws(), faithful_aws(clock) as fidelity: ...`
* the in-process `ThreadedMotoServer` of `scripts/local_aws.py` (tier 3 and `make demo`): the server answers
  from the same backends and response classes in this process, so the patches apply to what Terraform and the
  handlers reach over HTTP too. (A separate `moto_server` process would not see them.)

Every patch below changes moto only where moto differs from documented AWS behaviour, and its docstring names
the AWS document it follows (title and URL). Where the documents leave a quantity open (how long eventual
consistency lasts), the patch says which value it assumes and the value is a parameter. A patch that makes
the code under test pass rather than AWS behave is a defect: report it, do not bend it.

The patches (see each function's docstring for its source):

EC2 images and snapshots
  E1  CreateImage tags the image's snapshots from a `snapshot` TagSpecification (moto: NotImplementedError).
  E2  CreateImage rejects a name already used by an AMI of the account (`InvalidAMIName.Duplicate`).
  E3  CreateImage accepts only `running` or `stopped` instances; anything else (pending, stopping,
      shutting-down, terminated) is `IncorrectInstanceState`.
  E4  Images (and their snapshots) are stamped with the fidelity clock, not the wall clock.
  E5  Image states pending/failed on demand (`set_image_state`): moto makes every image available at once.
  E6  `block-device-mapping.snapshot-id` filter of DescribeImages, AMIs mapping more than their own snapshot
      (`share_snapshot`), DeleteSnapshot refusing any snapshot a registered AMI maps (`InvalidSnapshot.InUse`).
  E7  DeleteSnapshot right after DeregisterImage still fails with `InvalidSnapshot.InUse` for a while
      (eventual consistency; `snapshot_in_use_window`, measured on the fidelity clock).
  E8  DescribeImages omits disabled AMIs unless `IncludeDisabled=True` (also with `Owners=self`, image ids and
      every filter); DisableImage removes launch permissions; a disabled AMI still holds its snapshots.
  E9  DescribeImages keeps listing a deregistered AMI, with State `deregistered`, for a short while
      (`deregistered_listed_window`, on the fidelity clock).
  E10 DeregisterImage(DeleteAssociatedSnapshots=True) deletes the AMI's snapshots that no other AMI uses and
      reports each in `DeleteSnapshotResults` (moto ignores the flag and keeps them all).
Deployments and event flow
  D1  EventBridge delivers the whole event to a target, `account` included.
  D2  No SQS push to a Docker-run Lambda: the harness plays the Lambda poller.
  D3  The public Powertools for AWS Lambda layers exist.
  D4  SQS delays and visibility timeouts run on the fidelity clock when asked (`sqs_time=True` or
      `fidelity.simulated_time(clock)`).
Fault injection (not fidelity; explicit test helpers)
  `fail_create_image`, `deny_snapshot_deletion`, `set_instance_state`.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend, LayerVersion
from moto.awslambda.utils import split_layer_arn
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidSnapshotInUse
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.responses.amis import AmisResponse
from moto.events.utils import EventTemplateParser
from moto.sqs import models as sqs_models
from moto.sqs.models import sqs_backends

Clock = Callable[[], datetime]

DUPLICATE_NAME = "InvalidAMIName.Duplicate"
INCORRECT_STATE = "IncorrectInstanceState"
SNAPSHOT_IN_USE = "InvalidSnapshot.InUse"
UNAUTHORIZED = "UnauthorizedOperation"
SNAPSHOT_FILTER = "block-device-mapping.snapshot-id"
IMAGEABLE_STATES = frozenset({"running", "stopped"})
DISABLED = "disabled"
DEREGISTERED = "deregistered"
# EC2 instance state codes (DescribeInstances `InstanceState.Code`).
INSTANCE_STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}
# Assumed durations where AWS documents "a while" / "a short interval" (see E7, E9); both are parameters.
DEFAULT_SNAPSHOT_IN_USE_WINDOW = timedelta(seconds=60)
DEFAULT_DEREGISTERED_LISTED_WINDOW = timedelta(minutes=3)
# Publisher of the public Powertools for AWS Lambda (Python) layers in the commercial regions (D3).
POWERTOOLS_LAYER_ACCOUNT = "017000801446"


def _aware(moment: datetime) -> datetime:
    """moto works in naive UTC; test clocks may be aware. Compare everything as aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class _Deregistration:
    ami: Ami
    at: datetime
    snapshots: tuple[str, ...]


class MotoFidelity:
    """State of the patches, and the helpers tests use to set up AWS situations moto cannot reach by itself.

    The helper API of the former `tests/python/moto_aws_fidelity.MotoFidelity` is kept: `backend`,
    `set_image_state`, `share_snapshot`, `snapshot_of`, `snapshots_mapped_by`, `fail_create_image`,
    `create_image_attempts`, `clock`."""

    def __init__(
        self,
        clock: Clock | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        snapshot_in_use_window: timedelta = DEFAULT_SNAPSHOT_IN_USE_WINDOW,
        deregistered_listed_window: timedelta = DEFAULT_DEREGISTERED_LISTED_WINDOW,
    ) -> None:
        self.clock = clock
        self.sqs_clock: Clock | None = None
        self.account_id = account_id
        self.snapshot_in_use_window = snapshot_in_use_window
        self.deregistered_listed_window = deregistered_listed_window
        self.extra_snapshots: dict[str, list[str]] = {}
        self.create_image_faults: dict[str, str] = {}
        self.create_image_attempts: list[str] = []
        self.denied_snapshot_deletions: set[str] = set()
        # (account, region) -> image id -> what was deregistered, when.
        self.deregistrations: dict[tuple[str, str], dict[str, _Deregistration]] = {}

    def forget(self) -> None:
        """Drop what the patches remembered about resources (after moto's own reset); clocks stay."""
        self.extra_snapshots.clear()
        self.create_image_faults.clear()
        self.create_image_attempts.clear()
        self.denied_snapshot_deletions.clear()
        self.deregistrations.clear()

    # -- time ----------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The fidelity clock (the test's clock if one was given, else the wall clock), aware UTC."""
        return _aware(self.clock()) if self.clock is not None else datetime.now(UTC)

    @contextmanager
    def simulated_time(self, clock: Clock, *, sqs: bool = True) -> Iterator[MotoFidelity]:
        """Run EC2 timestamps and eventual-consistency windows (and, with `sqs`, SQS delays and visibility
        timeouts) on `clock` for the duration of the block; restores the previous clocks afterwards."""
        saved = (self.clock, self.sqs_clock)
        self.clock = clock
        self.sqs_clock = clock if sqs else saved[1]
        try:
            yield self
        finally:
            self.clock, self.sqs_clock = saved

    # -- helpers (setup and fault injection) ---------------------------------------------------------------

    def backend(self, region: str) -> Any:
        return ec2_backends[self.account_id][region]

    def set_image_state(self, region: str, image_id: str, state: str) -> None:
        """E5: put an image in `pending` or `failed` (or back to `available`), as AWS reports it while its
        snapshots are in progress or after they broke. For `disabled` use `disable_image`."""
        self.backend(region).amis[image_id].state = state

    def set_instance_state(self, region: str, instance_id: str, state: str) -> None:
        """Put an instance in a state moto never holds still (`pending`, `stopping`, `shutting-down`): moto's
        StopInstances/StartInstances jump straight to the end state."""
        instance = self.backend(region).get_instance(instance_id)
        instance._state.name = state
        instance._state.code = INSTANCE_STATE_CODES[state]

    def disable_image(self, region: str, image_id: str) -> None:
        """E8: the same as the DisableImage API (which boto3 can call on moto directly)."""
        self.backend(region).disable_image(image_id)

    def share_snapshot(self, region: str, image_id: str, snapshot_id: str) -> None:
        """E6: make `image_id` map `snapshot_id` too (the snapshot of another AMI), as an AMI registered with
        that snapshot does in AWS."""
        self.backend(region).amis[image_id]  # KeyError for an unknown image: fail the test early
        self.extra_snapshots.setdefault(image_id, []).append(snapshot_id)

    def snapshot_of(self, region: str, image_id: str) -> str:
        """The snapshot CreateImage made for `image_id` (also while it is listed as deregistered)."""
        backend = self.backend(region)
        ami = backend.amis.get(image_id) or self._deregistrations(backend)[image_id].ami
        return str(ami.ebs_snapshot.id)

    def snapshots_mapped_by(self, ami: Ami) -> list[str]:
        return [ami.ebs_snapshot.id, *self.extra_snapshots.get(ami.id, [])]

    def fail_create_image(self, instance_id: str, error_code: str | None) -> None:
        """Fault injection, not a fidelity fix: CreateImage for this instance answers `error_code` (None: heal).
        Inside moto, so botocore's retry handling sees the error exactly as it would from AWS."""
        if error_code is None:
            self.create_image_faults.pop(instance_id, None)
        else:
            self.create_image_faults[instance_id] = error_code

    def deny_snapshot_deletion(self, snapshot_id: str, denied: bool = True) -> None:
        """Fault injection: the caller lacks `ec2:DeleteSnapshot` on this snapshot (e.g. its ownership tags do
        not match the policy's conditions, which moto's IAM enforcement cannot evaluate). DeleteSnapshot
        answers `UnauthorizedOperation`; DeregisterImage(DeleteAssociatedSnapshots) reports
        `missing-permissions` for it."""
        if denied:
            self.denied_snapshot_deletions.add(snapshot_id)
        else:
            self.denied_snapshot_deletions.discard(snapshot_id)

    # -- model ---------------------------------------------------------------------------------------------

    def _deregistrations(self, backend: Any) -> dict[str, _Deregistration]:
        return self.deregistrations.setdefault((backend.account_id, backend.region_name), {})

    def _within(self, moment: datetime, window: timedelta) -> bool:
        return self.now() - moment < window

    def registered_users(self, backend: Any, snapshot_id: str, *, besides: str | None = None) -> list[str]:
        """Registered AMIs (any state, disabled included) mapping `snapshot_id`, other than `besides`."""
        return [
            ami.id
            for ami in backend.amis.values()
            if ami.id != besides and snapshot_id in self.snapshots_mapped_by(ami)
        ]

    def recently_deregistered_users(self, backend: Any, snapshot_id: str) -> list[str]:
        """AMIs deregistered less than `snapshot_in_use_window` ago that mapped `snapshot_id` (E7)."""
        return [
            image_id
            for image_id, record in self._deregistrations(backend).items()
            if snapshot_id in record.snapshots and self._within(record.at, self.snapshot_in_use_window)
        ]

    def listed_deregistered(self, backend: Any) -> dict[str, Ami]:
        """Deregistered AMIs DescribeImages still lists (E9)."""
        return {
            image_id: record.ami
            for image_id, record in self._deregistrations(backend).items()
            if self._within(record.at, self.deregistered_listed_window)
        }

    def describe_images(
        self,
        backend: Any,
        ami_ids: list[str],
        filters: dict[str, Any],
        exec_users: list[str],
        owners: list[str],
        include_disabled: bool,
    ) -> list[Ami]:
        """DescribeImages as AWS answers it (E6, E8, E9); moto's own selection logic for ids, owners,
        executable users and the filters it knows."""
        remaining = dict(filters or {})
        wanted = remaining.pop(SNAPSHOT_FILTER, None)
        listed = self.listed_deregistered(backend)
        view = SimpleNamespace(
            amis={**backend.amis, **listed},
            deleted_amis=[image_id for image_id in backend.deleted_amis if image_id not in listed],
            account_id=backend.account_id,
        )
        images: list[Ami] = _ORIGINAL["describe_images"](
            view, ami_ids=ami_ids, filters=remaining, exec_users=exec_users, owners=owners
        )
        if wanted is not None:
            images = [ami for ami in images if set(self.snapshots_mapped_by(ami)) & set(wanted)]
        if not include_disabled:
            images = [ami for ami in images if ami.state != DISABLED]
        return images


_ORIGINAL: dict[str, Any] = {
    "create_image": AmiBackend.create_image,
    "describe_images": AmiBackend.describe_images,
    "deregister_image": AmiBackend.deregister_image,
    "disable_image": AmiBackend.disable_image,
    "delete_snapshot": EBSBackend.delete_snapshot,
    "create_event_source_mapping": LambdaBackend.create_event_source_mapping,
    "layers_versions_by_arn": LambdaBackend.layers_versions_by_arn,
    "unix_time": sqs_models.unix_time,
    "unix_time_millis": sqs_models.unix_time_millis,
}


# ---------------------------------------------------------------------------------------------------------------
# EC2 images and snapshots
# ---------------------------------------------------------------------------------------------------------------


def _create_image(fidelity: MotoFidelity) -> Callable[..., Ami]:
    def create_image(
        self: Any, instance_id: str, name: str, description: str, tag_specifications: list[dict[str, Any]]
    ) -> Ami:
        """E1-E4. CreateImage as AWS answers it.

        E1 - "CreateImage - Amazon Elastic Compute Cloud" (TagSpecifications: "The tags to apply to the AMI and
        snapshots on creation. You can tag the AMI, the snapshots, or both."),
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html - moto raises
        NotImplementedError for ResourceType `snapshot`; here the snapshot tags go on the image's snapshot.

        E2 - "Error codes for the Amazon EC2 API" (`InvalidAMIName.Duplicate`: the AMI name is already in use
        by an AMI you own), https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html - moto accepts
        duplicates. Registered AMIs count, disabled ones included; deregistered ones free their name.

        E3 - same CreateImage page: "Creates an Amazon EBS-backed AMI from an Amazon EBS-backed instance that
        is either running or stopped." Every other state (pending, stopping, shutting-down, terminated) is
        `IncorrectInstanceState` ("Error codes for the Amazon EC2 API", above: the instance is in an incorrect
        state for the requested operation). moto images terminated instances; the former patch wrongly
        accepted `stopping`.

        E4 - moto stamps the image (and its snapshot) with the wall clock; here with the fidelity clock, so a
        simulated week shows one backup per day.
        """
        fidelity.create_image_attempts.append(instance_id)
        if instance_id in fidelity.create_image_faults:
            raise EC2ClientError(fidelity.create_image_faults[instance_id], "injected fault")
        instance = self.get_instance(instance_id)
        if instance.state not in IMAGEABLE_STATES:
            raise EC2ClientError(
                INCORRECT_STATE,
                f"The instance '{instance_id}' is not in a state from which it can be imaged "
                f"(state: {instance.state}; CreateImage needs running or stopped).",
            )
        if any(ami.name == name and ami.owner_id == self.account_id for ami in self.amis.values()):
            raise EC2ClientError(DUPLICATE_NAME, f"AMI name {name} is already in use by AMI")
        snapshot_tags = [
            tag for spec in tag_specifications if spec["ResourceType"] == "snapshot" for tag in spec["Tags"]
        ]
        others = [spec for spec in tag_specifications if spec["ResourceType"] != "snapshot"]
        ami = _ORIGINAL["create_image"](self, instance_id, name, description, others)
        if fidelity.clock is not None:
            stamp = fidelity.now().replace(tzinfo=None)  # moto keeps naive UTC
            ami.creation_date = stamp
            ami.ebs_snapshot.start_time = stamp
        for tag in snapshot_tags:
            ami.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return ami

    return create_image


def _deregister_image(fidelity: MotoFidelity) -> Callable[..., None]:
    def deregister_image(self: Any, ami_id: str) -> None:
        """E7/E9 bookkeeping: remember what was deregistered and when (fidelity clock), so DescribeImages can
        list it as `deregistered` and DeleteSnapshot can still refuse its snapshots for a while."""
        ami = self.amis.get(ami_id)
        snapshots = tuple(fidelity.snapshots_mapped_by(ami)) if ami is not None else ()
        _ORIGINAL["deregister_image"](self, ami_id)
        if ami is not None:
            ami.state = DEREGISTERED
            fidelity._deregistrations(self)[ami_id] = _Deregistration(ami, fidelity.now(), snapshots)

    return deregister_image


def _disable_image(fidelity: MotoFidelity) -> Callable[..., None]:
    def disable_image(self: Any, ami_id: str) -> None:
        """E8. "DisableImage - Amazon Elastic Compute Cloud": "Sets the AMI state to disabled and removes all
        launch permissions from the AMI", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DisableImage.html
        - moto sets the state but keeps the launch permissions."""
        _ORIGINAL["disable_image"](self, ami_id)
        self.amis[ami_id].launch_permissions.clear()

    return disable_image


def _delete_snapshot(fidelity: MotoFidelity) -> Callable[..., Any]:
    def delete_snapshot(self: Any, snapshot_id: str) -> Any:
        """E6, E7, E8. DeleteSnapshot refuses a snapshot an AMI still uses.

        E6 - "DeleteSnapshot - Amazon Elastic Compute Cloud": "You cannot delete a snapshot of the root device
        of an EBS volume used by a registered AMI. You must first deregister the AMI before you can delete the
        snapshot.", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSnapshot.html - moto only
        refuses the snapshot an AMI was created with; here every registered AMI mapping it counts
        (`InvalidSnapshot.InUse`).

        E8 - "Disable an Amazon EC2 AMI": "You can't delete snapshots associated with disabled AMIs. Attempting
        to delete an associated snapshot results in the snapshot is currently in use error.",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/disable-an-ami.html - disabled AMIs stay in the
        backend's registered AMIs, so they count as users here.

        E7 - "Eventual consistency in the Amazon EC2 API": "the result of an API command you run that affects
        your Amazon EC2 resources might not be immediately visible to all subsequent commands you run",
        https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html - observed (REFERENCE.md 3a):
        DeleteSnapshot right after DeregisterImage often fails with `InvalidSnapshot.InUse`. Modelled: for
        `snapshot_in_use_window` (default 60 s, an assumption; AWS names no figure) after the AMI's
        deregistration, measured on the fidelity clock, DeleteSnapshot of its snapshots fails; then it
        succeeds unless another registered AMI maps the snapshot.
        """
        if snapshot_id in fidelity.denied_snapshot_deletions:
            raise EC2ClientError(
                UNAUTHORIZED, f"You are not authorized to perform this operation (ec2:DeleteSnapshot {snapshot_id})."
            )
        users = fidelity.registered_users(self, snapshot_id) or fidelity.recently_deregistered_users(self, snapshot_id)
        if users:
            raise InvalidSnapshotInUse(snapshot_id, users[0])
        return _ORIGINAL["delete_snapshot"](self, snapshot_id)

    return delete_snapshot


def _describe_images_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_images(self: AmisResponse) -> ActionResult:
        """E6, E8, E9. DescribeImages at the API level, so the HTTP server honours the parameters too.

        E6 - "DescribeImages - Amazon Elastic Compute Cloud" (filter `block-device-mapping.snapshot-id`: the
        ID of the snapshot used for the Amazon EBS volume),
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html - moto has no such
        filter; here an image matches when any of its mappings uses any of the filter's snapshot ids.

        E8 - same page, IncludeDisabled: "Specifies whether to include disabled AMIs. Default: No disabled
        AMIs are included in the response."; "DisableImage - Amazon Elastic Compute Cloud": "A disabled AMI
        does not appear in DescribeImages API calls by default.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DisableImage.html; "Disable an Amazon EC2
        AMI": "A disabled AMI does not appear under the Owned by me console filter",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/disable-an-ami.html. Unlike IncludeDeprecated
        ("If you are the AMI owner, all deprecated AMIs appear in the response regardless"), the documents make
        no exception for the owner, for ImageIds, for a `state=disabled` filter or for the snapshot-id filter:
        disabled AMIs are left out of every answer unless IncludeDisabled=True. moto ignores IncludeDisabled
        and lists them.

        E9 - same DescribeImages page: "Recently deregistered images appear in the returned results for a
        short interval and then return empty results." The Image `State` enumeration has `deregistered`; and
        "Deregister an Amazon EC2 AMI" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/deregister-ami.html):
        "It might take a few minutes before the console removes the AMI from the list". Modelled: for
        `deregistered_listed_window` (default 3 minutes, an assumption) after DeregisterImage, on the fidelity
        clock, the AMI is listed - by id, by owner and by filters, tags and mappings as before - with State
        `deregistered`. Code that lists images must skip that state. moto drops the image at once.
        """
        self.error_on_dryrun()
        images = fidelity.describe_images(
            self.ec2_backend,
            ami_ids=self._get_param("ImageIds", []),
            filters=self._filters_from_querystring(),
            exec_users=self._get_param("ExecutableUsers", []),
            owners=self._get_param("Owners", []),
            include_disabled=bool(self._get_bool_param("IncludeDisabled", False)),
        )
        return ActionResult({"Images": images})

    return describe_images


def _deregister_image_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def deregister_image(self: AmisResponse) -> ActionResult:
        """E10. DeregisterImage with DeleteAssociatedSnapshots, emulated (moto ignores the flag).

        "DeregisterImage - Amazon Elastic Compute Cloud": "When deregistering an EBS-backed AMI, you can
        optionally delete its associated snapshots at the same time. However, if a snapshot is associated with
        multiple AMIs, it won't be deleted even if specified for deletion, although the AMI will still be
        deregistered." DeleteAssociatedSnapshots "Default: The snapshots are not deleted."; the response's
        DeleteSnapshotResults: "The deletion result for each snapshot associated with the AMI, including the
        snapshot ID and its success or error code.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeregisterImage.html
        "DeleteSnapshotReturnCode": `success`; `skipped` ("associated with other AMIs"); `missing-permissions`
        ("the role lacks DeleteSnapshot permissions" - the caller needs ec2:DeleteSnapshot on each snapshot,
        with its tag conditions, besides ec2:DeregisterImage); `internal-error`; `client-error`,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSnapshotReturnCode.html

        Emulated: the AMI is deregistered in every case; each snapshot it mapped is `skipped` when another
        registered AMI (disabled ones included) maps it, `missing-permissions` when `deny_snapshot_deletion`
        marked it, else deleted (`success`) - AWS deletes them as part of the call, so the eventual-consistency
        window of E7 does not apply to them. Without the flag the response has no DeleteSnapshotResults and
        nothing is deleted.
        """
        image_id = self._get_param("ImageId")
        delete_snapshots = bool(self._get_bool_param("DeleteAssociatedSnapshots", False))
        self.error_on_dryrun()
        backend = self.ec2_backend
        ami = backend.amis.get(image_id)
        snapshots = fidelity.snapshots_mapped_by(ami) if ami is not None else []
        backend.deregister_image(image_id)
        result: dict[str, Any] = {"Return": True}
        if delete_snapshots:
            outcomes = []
            for snapshot_id in snapshots:
                if fidelity.registered_users(backend, snapshot_id, besides=image_id):
                    code = "skipped"
                elif snapshot_id in fidelity.denied_snapshot_deletions:
                    code = "missing-permissions"
                elif snapshot_id not in backend.snapshots:
                    code = "client-error"
                else:
                    _ORIGINAL["delete_snapshot"](backend, snapshot_id)
                    code = "success"
                outcomes.append({"SnapshotId": snapshot_id, "ReturnCode": code})
            result["DeleteSnapshotResults"] = outcomes
        return ActionResult(result)

    return deregister_image


# ---------------------------------------------------------------------------------------------------------------
# Deployments and the event flow
# ---------------------------------------------------------------------------------------------------------------


def _event_template_with_account() -> str:
    """D1. "Event structure reference" (Amazon EventBridge User Guide): the fields "appear in all events
    delivered to an event bus", `account` among them - "The 12-digit number identifying an AWS account.",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html - moto's default target
    input template drops `account`; EventBridge delivers the whole event."""
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' in template:
        return template
    if '"version": "0",' not in template:
        raise RuntimeError(f"unexpected moto event template, cannot add the account field: {template}")
    return template.replace('"version": "0",', '"version": "0", "account": "<account>",')


def _create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> Any:
    """D2. "How Lambda processes records from stream and queue-based event sources": "Within an event source
    mapping, resources called event pollers actively poll for new messages and invoke functions",
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html - moto instead hands every
    SQS message synchronously to a Docker-run Lambda as soon as it is sent. There is no Docker here, and the
    failed hand-overs would count as receives and push messages into the DLQ. The harness plays the poller
    (receive, invoke the handler, delete what it reports done), so the push is removed."""
    mapping = _ORIGINAL["create_event_source_mapping"](self, spec)
    for queue in sqs_backends[self.account_id][self.region_name].queues.values():
        queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
    return mapping


def _empty_zip_base64() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _layers_versions_by_arn(self: LambdaBackend, layer_version_arn: str) -> LayerVersion | None:
    """D3. "Installation - Powertools for AWS Lambda (Python)", Lambda Layer: public layers
    `arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-{arch}:{version}` in
    every commercial region, https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/ -
    moto only knows layers published in its own accounts and rejects a function that names one of these."""
    found = _ORIGINAL["layers_versions_by_arn"](self, layer_version_arn)
    arn = split_layer_arn(layer_version_arn)
    if found is not None or arn.account != POWERTOOLS_LAYER_ACCOUNT:
        return found
    layer = LayerVersion(  # type: ignore[abstract]
        {"LayerName": arn.layer_name, "Content": {"ZipFile": _empty_zip_base64()}},
        account_id=arn.account,
        region=arn.region,
    )
    layer.version = int(arn.version)
    return layer


def _sqs_time(fidelity: MotoFidelity, millis: bool) -> Callable[..., float]:
    def unix_time(*args: Any) -> float:
        """D4. "Amazon SQS delay queues" ("any messages that you send to the queue remain invisible to
        consumers for the duration of the delay period"; maximum 15 minutes),
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html, and
        "Amazon SQS visibility timeout",
        https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
        - not a moto defect but simulated time: with an SQS clock set, moto measures sent times, delays and
        visibility timeouts on it, so a delayed message comes due when the simulated clock passes its delay
        instead of after 15 real minutes. Without one, moto's own clock."""
        if fidelity.sqs_clock is None or args:
            return float(_ORIGINAL["unix_time_millis" if millis else "unix_time"](*args))
        seconds = _aware(fidelity.sqs_clock()).timestamp()
        return seconds * 1000 if millis else seconds

    return unix_time


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------

_ACTIVE: list[MotoFidelity] = []


@contextmanager
def faithful_aws(
    clock: Clock | None = None,
    *,
    sqs_time: bool = False,
    snapshot_in_use_window: timedelta = DEFAULT_SNAPSHOT_IN_USE_WINDOW,
    deregistered_listed_window: timedelta = DEFAULT_DEREGISTERED_LISTED_WINDOW,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> Iterator[MotoFidelity]:
    """Install every patch for the duration of the block; yields the `MotoFidelity` with the helpers.

    `clock` (a callable returning a datetime; naive means UTC) stamps images and measures the
    eventual-consistency windows; None means the wall clock. `sqs_time=True` runs SQS on `clock` too (D4).
    The windows of E7 and E9 are parameters; `timedelta(0)` switches one off. Not re-entrant: patch once, and
    use `fidelity.simulated_time(clock)` to change clocks inside (as tests/e2e/scenario.py does inside the
    server of scripts/local_aws.py)."""
    if _ACTIVE:
        raise RuntimeError("faithful_aws() is already active; use its fidelity.simulated_time(clock) instead")
    if sqs_time and clock is None:
        raise ValueError("sqs_time=True needs a clock")
    fidelity = MotoFidelity(
        clock,
        account_id,
        snapshot_in_use_window=snapshot_in_use_window,
        deregistered_listed_window=deregistered_listed_window,
    )
    fidelity.sqs_clock = clock if sqs_time else None
    with ExitStack() as stack:
        patch = stack.enter_context
        # EC2 images and snapshots (backend level: shared by mock_aws and the HTTP server)
        patch(mock.patch.object(AmiBackend, "create_image", _create_image(fidelity)))
        patch(mock.patch.object(AmiBackend, "deregister_image", _deregister_image(fidelity)))
        patch(mock.patch.object(AmiBackend, "disable_image", _disable_image(fidelity)))
        patch(mock.patch.object(EBSBackend, "delete_snapshot", _delete_snapshot(fidelity)))
        patch(mock.patch.object(Ami, "block_device_mappings", property(_block_device_mappings(fidelity))))
        # EC2 API parameters moto does not read (response level: both paths parse requests here)
        patch(mock.patch.object(AmisResponse, "describe_images", _describe_images_response(fidelity)))
        patch(mock.patch.object(AmisResponse, "deregister_image", _deregister_image_response(fidelity)))
        # Deployments and the event flow
        patch(mock.patch.object(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", _event_template_with_account()))
        patch(mock.patch.object(LambdaBackend, "create_event_source_mapping", _create_event_source_mapping))
        patch(mock.patch.object(LambdaBackend, "layers_versions_by_arn", _layers_versions_by_arn))
        patch(mock.patch.object(sqs_models, "unix_time_millis", _sqs_time(fidelity, millis=True)))
        patch(mock.patch.object(sqs_models, "unix_time", _sqs_time(fidelity, millis=False)))
        _ACTIVE.append(fidelity)
        try:
            yield fidelity
        finally:
            _ACTIVE.remove(fidelity)


def _block_device_mappings(fidelity: MotoFidelity) -> Callable[[Ami], list[dict[str, Any]]]:
    original = Ami.block_device_mappings

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        """E6: the mappings of `share_snapshot` appear in DescribeImages' BlockDeviceMappings."""
        mappings = list(original.fget(self))  # type: ignore[attr-defined]
        for index, snapshot_id in enumerate(fidelity.extra_snapshots.get(self.id, [])):
            mappings.append({"DeviceName": f"/dev/sd{chr(ord('f') + index)}", "Ebs": {"SnapshotId": snapshot_id}})
        return mappings

    return block_device_mappings
