"""Restore tests of AMI backups: launch the backup in an isolated subnet, wait for EC2's status checks (and, when
asked, an SSM validation command), then terminate it. The machinery (leases, ledger, retries, alerts, tagging
order) is core.restore's; this adapter knows only how an AMI becomes an instance and how that instance is judged.

AWS documents used here:
- RunInstances (parameters, ClientToken, NetworkInterfaces, TagSpecifications, BlockDeviceMappings):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
- Idempotency of RunInstances with a client token (<= 64 ASCII characters; same token and parameters: the same
  instance; other parameters: IdempotentParameterMismatch):
  https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html
- InstanceNetworkInterfaceSpecification.AssociatePublicIpAddress ("If launching into a default subnet, the default
  value is true": it is always set to false here):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceNetworkInterfaceSpecification.html
- DescribeInstanceStatus (IncludeAllInstances; only running instances otherwise) and InstanceStatusSummary
  (ok | impaired | insufficient-data | not-applicable | initializing):
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceStatus.html
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStatusSummary.html
- SSM SendCommand / GetCommandInvocation errors: InvalidInstanceId (agent not running or not registered yet, among
  others), InvocationDoesNotExist ("the command ID and managed node ID you specified didn't match any
  invocations"): https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html
  https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ..core import tagging
from ..core.errors import IMAGE_GONE_ERRORS, INSTANCE_GONE_ERRORS, error_code
from ..core.events import parse_time
from ..core.image_links import image_state, list_images
from ..core.observability import logger
from ..core.restore import (
    NOT_BACKUP_FAULT,
    Backup,
    RestoreConfigError,
    RestoreProgress,
    RestoreRecord,
    RestoreTestConfig,
    RestoreTestMessage,
    Result,
    restore_result_of,
)
from ..core.scope import Target
from ..core.targeting import chunked
from .decisions import restore_instance_type

# Instances a leftover sweep looks for: alive and billed (or holding volumes). shutting-down and terminated ones
# are on their way out already.
LEFTOVER_STATES = ("pending", "running", "stopping", "stopped")
# An instance that left `running` before passing has failed its test (it cannot pass any more by itself).
ENDED_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
# SSM command invocation statuses (GetCommandInvocation `Status`): still on its way, or passed.
COMMAND_RUNNING = frozenset({"Pending", "InProgress", "Delayed"})
COMMAND_PASSED = "Success"
# Validation outcomes (StatusDetails, spaces removed) that condemn the backup: the command ran and failed, or ran
# past its execution timeout. Every other terminal outcome is the set-up's (delivery, platform, permissions).
VALIDATION_BACKUP_FAULTS = frozenset({"Failed", "ExecutionTimedOut"})
SSM_UNREACHABLE = (
    "the validation command was not delivered: the test subnet needs the ssm, ssmmessages and ec2messages VPC "
    "endpoints and egress on 443 to them, and restore_test.instance_profile_name the AmazonSSMManagedInstanceCore "
    "permissions"
)
# StateReason codes of an instance that ended before passing for reasons that are not the backup's.
KMS_STATE_REASONS = frozenset({"Client.InternalError"})
NOT_BACKUP_STATE_REASONS = frozenset(
    {
        "Server.InsufficientInstanceCapacity",
        "Server.InternalError",
        "Client.VolumeLimitExceeded",
        "Client.UserInitiatedShutdown",
    }
)
# SSM answers these while the new instance's agent has not registered yet: the test is still starting.
AGENT_NOT_READY_ERRORS = frozenset({"InvalidInstanceId", "InvocationDoesNotExist"})
# SendCommand refusals of the set-up (SendCommand API reference, Errors): restore_test.validation_document or
# validation_parameters, or the worker's role; "restore test cannot run", not a failed AMI.
VALIDATION_REFUSED_ERRORS = frozenset(
    {
        "InvalidDocument",
        "InvalidDocumentVersion",
        "InvalidParameters",
        "UnsupportedPlatformType",
        "InvalidRole",
        "InvalidOutputFolder",
        "AccessDeniedException",
    }
)
TERMINATE_BATCH = 50
# How long after the launch a describe that does not know the instance yet is read as "not propagated" rather than
# "gone" (AWS gives no figure for its eventual consistency: an assumption).
LAUNCH_GRACE = timedelta(minutes=5)
# What the alert quotes of a validation command's output.
OUTPUT_EXCERPT = 1000


class AmiRestore:
    """RestoreAdapter of ami-backup. `ssm`: a client of the restore target (region and role), used only with a
    validation document."""

    resource_noun = "instance"
    # A small instance is `running` in about a minute and its status checks need a few more.
    first_check_seconds = 120
    poll_seconds = 60

    def __init__(self, config: RestoreTestConfig, policy: str, ssm: Any = None) -> None:
        self.config = config
        self.policy = policy
        self.ssm = ssm
        # prepare() describes the AMI and decides the instance type; launch() of the same invocation reuses both.
        self._prepared: dict[str, tuple[dict[str, Any], str]] = {}

    # --- planning -------------------------------------------------------------------------------------------

    def backups(self, ec2: Any, target: Target) -> list[Backup]:
        """The policy's AMIs in the target, one backup each, keyed by the instance they were made of."""
        found: list[Backup] = []
        for image in list_images(ec2, [{"Name": f"tag:{tagging.POLICY}", "Values": [self.policy]}]):
            backup = backup_of(image, self.policy)
            if backup is not None:
                found.append(backup)
        return found

    # --- a test ---------------------------------------------------------------------------------------------

    def prepare(self, ec2: Any, test: RestoreTestMessage) -> None:
        """Checks that make a test impossible whatever the backup: a security group that lets anything in (the
        restored copy must not be reachable), an instance type the AMI cannot run on."""
        self._check_security_group(ec2)
        if not self.config.allow_routed_subnet:
            self._check_subnet_routes(ec2)
        image = self._image(ec2, test.backup_ids[0])
        self._prepared[test.test_id] = (image, self._instance_type(ec2, image))

    def launch(self, ec2: Any, test: RestoreTestMessage, token: str, tags: Mapping[str, str]) -> tuple[str, ...]:
        prepared = self._prepared.pop(test.test_id, None)
        if prepared is None:
            image = self._image(ec2, test.backup_ids[0])
            prepared = (image, self._instance_type(ec2, image))
        image, instance_type = prepared
        request = run_instances_request(
            image,
            instance_type,
            token,
            tags,
            subnet_id=self.config.subnet_id,
            security_group_id=self.config.security_group_id,
            instance_profile_name=self.config.instance_profile_name if self.config.validation_document else None,
        )
        response = ec2.run_instances(**request)
        instance_ids = tuple(str(instance["InstanceId"]) for instance in response["Instances"])
        logger.info(
            "restore test instance launched",
            extra={"test_id": test.test_id, "image_id": image["ImageId"], "instance_ids": list(instance_ids)},
        )
        return instance_ids

    def observe(self, ec2: Any, record: RestoreRecord, now: datetime) -> RestoreProgress:
        instance_id = record.resource_ids[0]
        instance = _describe_instance(ec2, instance_id)
        if instance is None:
            # Right after RunInstances the new id may not be known to every describe yet (eventual consistency,
            # https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): missing means gone only
            # once the grace window is over.
            if now - record.started_at < LAUNCH_GRACE:
                return RestoreProgress("starting", details={"instance_id": instance_id, "instance_state": "unknown"})
            return RestoreProgress("failed", f"the instance {instance_id} disappeared before it passed")
        state = str(instance["State"]["Name"])
        details = {
            "instance_id": instance_id,
            "instance_state": state,
            "instance_type": str(instance.get("InstanceType", "")),
        }
        if state in ENDED_STATES:
            return ended_progress(state, instance.get("StateReason") or {}, details)
        if state != "running":
            return RestoreProgress("starting", details=details)
        checks = status_checks(_instance_status(ec2, instance_id))
        details.update({f"{name}_status": value for name, value in checks.items()})
        verdict = status_verdict(checks)
        if verdict == "failed":
            impaired = sorted(name for name, value in checks.items() if value == "impaired")
            return RestoreProgress("failed", f"status check impaired: {', '.join(impaired)}", details)
        if verdict == "starting":
            return RestoreProgress("starting", details=details)
        if not self.config.validation_document:
            return RestoreProgress("ready", details=details)
        return self._validate(instance_id, record, details)

    def clean_up(self, ec2: Any, resource_ids: Sequence[str]) -> None:
        """TerminateInstances; an instance already gone is done. Its volumes and network interface go with it
        (DeleteOnTermination set at launch)."""
        for chunk in chunked(list(resource_ids), TERMINATE_BATCH):
            try:
                ec2.terminate_instances(InstanceIds=chunk)
            except ClientError as error:
                if error_code(error) not in INSTANCE_GONE_ERRORS:
                    raise
                # One unknown id fails the whole call: the others one by one.
                for instance_id in chunk:
                    _terminate_one(ec2, instance_id)

    def leftovers(self, ec2: Any, cutoff: datetime) -> list[str]:
        """This policy's restore-test instances still alive that were launched before `cutoff`."""
        paginator = ec2.get_paginator("describe_instances")
        filters = [
            {"Name": f"tag:{tagging.POLICY}", "Values": [self.policy]},
            {"Name": "tag-key", "Values": [tagging.RESTORE_TEST]},
            {"Name": "instance-state-name", "Values": list(LEFTOVER_STATES)},
        ]
        found: list[str] = []
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": 1000}):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    if not tagging.is_owned(instance.get("Tags"), self.policy):
                        continue
                    if _as_utc(instance["LaunchTime"]) < cutoff:
                        found.append(str(instance["InstanceId"]))
        return sorted(found)

    def mark(self, ec2: Any, backup_ids: Sequence[str], result: Result, slot: str) -> None:
        """The result on the AMI itself: the planner skips passed backups and retention keeps the newest one."""
        tags = {tagging.RESTORE_RESULT: result, tagging.RESTORE_TESTED: slot}
        try:
            ec2.create_tags(Resources=list(backup_ids), Tags=tagging.tag_list(tags))
        except ClientError as error:
            if error_code(error) not in IMAGE_GONE_ERRORS:
                raise
            logger.info("restore result not tagged: the AMI is gone", extra={"backup_ids": list(backup_ids)})

    # --- helpers --------------------------------------------------------------------------------------------

    def _check_security_group(self, ec2: Any) -> None:
        group_id = self.config.security_group_id
        groups = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        ingress = [rule for group in groups for rule in group.get("IpPermissions", [])]
        if ingress:
            raise RestoreConfigError(
                f"restore_test.security_group_id={group_id!r} has {len(ingress)} ingress rule(s): a restored copy "
                "of a production instance must not be reachable; use a security group without ingress rules"
            )

    def _check_subnet_routes(self, ec2: Any) -> None:
        """The restored copy runs the production software with production data: its subnet must have no route out
        of the VPC. A subnet without its own route table association uses the VPC's main table ("Subnet route
        tables", https://docs.aws.amazon.com/vpc/latest/userguide/subnet-route-tables.html)."""
        subnet_id = self.config.subnet_id
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])[
            "RouteTables"
        ]
        if not tables:
            subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["Subnets"]
            if not subnets:
                raise RestoreConfigError(f"restore_test.subnet_id={subnet_id!r} does not exist in the restore region")
            main = [
                {"Name": "vpc-id", "Values": [subnets[0]["VpcId"]]},
                {"Name": "association.main", "Values": ["true"]},
            ]
            tables = ec2.describe_route_tables(Filters=main)["RouteTables"]
        routed = outbound_routes(route for table in tables for route in table.get("Routes", []))
        if routed:
            raise RestoreConfigError(
                f"restore_test.subnet_id={subnet_id!r} has a route out of the VPC ({'; '.join(routed)}): a restored "
                "copy of a production instance could reach (or be reached from) the outside; use an isolated subnet "
                "or set restore_test.allow_routed_subnet = true"
            )

    def _image(self, ec2: Any, image_id: str) -> dict[str, Any]:
        """The AMI by id; gone (or deregistered) raises EC2's own error, which the machinery reads as "backup
        gone"."""
        images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
        image = images[0] if images else None
        if image is None or image_state(image) is None:
            raise ClientError(
                {"Error": {"Code": "InvalidAMIID.NotFound", "Message": f"The image id '[{image_id}]' does not exist"}},
                "DescribeImages",
            )
        return dict(image)

    def _instance_type(self, ec2: Any, image: Mapping[str, Any]) -> str:
        override = self.config.instance_type
        architectures: tuple[str, ...] = ()
        if override:
            try:
                answer = ec2.describe_instance_types(InstanceTypes=[override])["InstanceTypes"]
            except ClientError as error:
                if error_code(error) != "InvalidInstanceType":
                    raise
                answer = []  # not offered in this region: named as such below
            architectures = tuple(answer[0]["ProcessorInfo"]["SupportedArchitectures"]) if answer else ()
        return restore_instance_type(
            str(image.get("Architecture", "x86_64")),
            bool(image.get("EnaSupport", False)),
            str(image.get("Platform") or image.get("PlatformDetails") or ""),
            override,
            architectures,
            boot_mode=str(image.get("BootMode") or ""),
        )

    def _validate(self, instance_id: str, record: RestoreRecord, details: dict[str, str]) -> RestoreProgress:
        """The validation document, run once on the instance; its invocation decides. While the agent has not
        registered (or the command is not delivered) the progress is marked not the backup's fault: a test that times
        out so (no SSM endpoints in the subnet, no egress to them, no instance profile) cannot run; it did not fail."""
        assert self.config.validation_document is not None
        command_id = record.details.get("command_id")
        waiting = {**details, NOT_BACKUP_FAULT: "true"}
        if not command_id:
            try:
                response = self.ssm.send_command(
                    InstanceIds=[instance_id],
                    DocumentName=self.config.validation_document,
                    Parameters={key: list(values) for key, values in self.config.validation_parameters.items()},
                    Comment=f"ops-automation restore test {record.test_id}"[:100],
                )
            except ClientError as error:
                code = error_code(error)
                if code in AGENT_NOT_READY_ERRORS:
                    return RestoreProgress(
                        "starting", SSM_UNREACHABLE, {**waiting, "validation": "agent not registered"}
                    )
                if code in VALIDATION_REFUSED_ERRORS:
                    # The document, its parameters or the role are wrong: no retry helps, and the AMI is not at fault.
                    reason = f"validation command refused: {code}: {error.response.get('Error', {}).get('Message', '')}"
                    return RestoreProgress("failed", reason, {**waiting, "validation": code})
                raise
            command_id = str(response["Command"]["CommandId"])
            return RestoreProgress(
                "starting", SSM_UNREACHABLE, {**waiting, "command_id": command_id}, remember={"command_id": command_id}
            )
        try:
            invocation = self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as error:
            if error_code(error) in AGENT_NOT_READY_ERRORS:
                return RestoreProgress("starting", SSM_UNREACHABLE, {**waiting, "command_id": command_id})
            raise
        return validation_progress(invocation, {**details, "command_id": command_id})


# ---------------------------------------------------------------------------------------------------------------
# Pure pieces
# ---------------------------------------------------------------------------------------------------------------


def backup_of(image: Mapping[str, Any], policy: str) -> Backup | None:
    """An AMI as a backup of its source instance; None for AMIs that are not this policy's backups (no ownership,
    no source instance) or are gone (deregistered, disabled)."""
    tags = tagging.tag_dict(image.get("Tags"))
    source = tags.get(tagging.SOURCE_INSTANCE)
    state = image_state(image)
    if not tagging.is_owned(tags, policy) or not source or state is None:
        return None
    return Backup(
        source_id=source,
        backup_ids=(str(image["ImageId"]),),
        created_at=parse_time(image["CreationDate"], "CreationDate"),
        tags=tags,
        good=state == "available",
        restore_result=restore_result_of(tags),
    )


# Route targets that leave the VPC (DescribeRouteTables `Route`: an internet or virtual private gateway in
# GatewayId, a NAT gateway, a transit gateway, a peering connection, an egress-only internet gateway, "the ID of
# the instance, such as a NAT instance", a network interface (an appliance), a Cloud WAN core network, a carrier or
# local gateway, and a Gateway Load Balancer endpoint: a vpce- target of an address range). `local` and gateway
# endpoints (vpce- targets of an S3/DynamoDB prefix list) stay inside AWS's network and are allowed.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Route.html
_OUTBOUND_ROUTE_KEYS = (
    "NatGatewayId",
    "TransitGatewayId",
    "VpcPeeringConnectionId",
    "EgressOnlyInternetGatewayId",
    "InstanceId",
    "NetworkInterfaceId",
    "CoreNetworkArn",
    "CarrierGatewayId",
    "LocalGatewayId",
)
_OUTBOUND_GATEWAYS = ("igw-", "vgw-")


def outbound_routes(routes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The active routes that leave the VPC, as "destination -> target"."""
    found: list[str] = []
    for route in routes:
        if route.get("State") == "blackhole":
            continue
        destination = str(
            route.get("DestinationCidrBlock")
            or route.get("DestinationIpv6CidrBlock")
            or route.get("DestinationPrefixListId")
            or "?"
        )
        gateway = str(route.get("GatewayId") or "")
        load_balancer_endpoint = gateway.startswith("vpce-") and not route.get("DestinationPrefixListId")
        targets = [gateway] if gateway.startswith(_OUTBOUND_GATEWAYS) or load_balancer_endpoint else []
        targets += [str(route[key]) for key in _OUTBOUND_ROUTE_KEYS if route.get(key)]
        found.extend(f"{destination} -> {target}" for target in targets)
    return found


def run_instances_request(
    image: Mapping[str, Any],
    instance_type: str,
    token: str,
    tags: Mapping[str, str],
    *,
    subnet_id: str,
    security_group_id: str,
    instance_profile_name: str | None,
) -> dict[str, Any]:
    """RunInstances arguments for one restore test: one instance of the AMI in the test subnet behind the test
    security group, no public address, no key pair, no user data; every volume and the network interface deleted
    with it; the instance, its volumes and its interface tagged at launch (IAM can require the tags, and a crash
    between launch and tagging cannot leave an untagged instance)."""
    tag_list = tagging.tag_list(tags)
    request: dict[str, Any] = {
        "ImageId": image["ImageId"],
        "InstanceType": instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": token,
        # The subnet and security group go on the interface: SubnetId/SecurityGroupIds beside NetworkInterfaces
        # are refused (InvalidParameterCombination), and AssociatePublicIpAddress exists only on an interface.
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": subnet_id,
                "Groups": [security_group_id],
                "AssociatePublicIpAddress": False,
                "DeleteOnTermination": True,
            }
        ],
        # A shutdown from inside the OS ends the test's instance instead of leaving it stopped (and billed for
        # its volumes).
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "TagSpecifications": [
            {"ResourceType": resource_type, "Tags": tag_list}
            for resource_type in ("instance", "volume", "network-interface")
        ],
    }
    mappings = delete_on_termination_mappings(image.get("BlockDeviceMappings", []))
    if mappings:
        request["BlockDeviceMappings"] = mappings
    if instance_profile_name:
        request["IamInstanceProfile"] = {"Name": instance_profile_name}
    return request


def delete_on_termination_mappings(mappings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The AMI's EBS mappings with DeleteOnTermination forced on. CreateImage records the source instance's own
    flags, and data volumes attached after launch keep false by default: launched as is, they would outlive the
    test instance. A launch mapping for a device the AMI maps changes only what it sets ("Block device mappings",
    update the mapping when launching an instance,
    https://docs.aws.amazon.com/ebs/latest/userguide/block-device-mapping-concepts.html): the device name and the
    flag, so snapshot, size, type and encryption stay the AMI's. Instance-store and suppressed (NoDevice) mappings
    are left to the AMI."""
    return [
        {"DeviceName": mapping["DeviceName"], "Ebs": {"DeleteOnTermination": True}}
        for mapping in mappings
        if isinstance(mapping.get("Ebs"), Mapping) and mapping.get("DeviceName") and "NoDevice" not in mapping
    ]


def status_checks(status: Mapping[str, Any] | None) -> dict[str, str]:
    """DescribeInstanceStatus of one instance as {check: status}: system, instance and (on instance types that
    report it) attached_ebs. No answer yet (a just-started instance) reads as initializing."""
    if status is None:
        return {"system": "initializing", "instance": "initializing"}
    checks = {
        "system": str(status.get("SystemStatus", {}).get("Status", "initializing")),
        "instance": str(status.get("InstanceStatus", {}).get("Status", "initializing")),
    }
    attached = status.get("AttachedEbsStatus", {}).get("Status")
    if attached:
        checks["attached_ebs"] = str(attached)
    return checks


def status_verdict(checks: Mapping[str, str]) -> str:
    """ready: every check ok (attached EBS may be not-applicable); failed: any impaired; starting otherwise
    (initializing, insufficient-data)."""
    if any(value == "impaired" for value in checks.values()):
        return "failed"
    settled = all(
        value == "ok" or (name == "attached_ebs" and value == "not-applicable") for name, value in checks.items()
    )
    return "ready" if settled else "starting"


def validation_progress(invocation: Mapping[str, Any], details: Mapping[str, str]) -> RestoreProgress:
    """GetCommandInvocation's answer as progress, by its StatusDetails ("StatusDetails can be one of the following
    values", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html): Success
    passes; In Progress waits; Pending and Delayed wait too, marked not the backup's fault (not delivered by the
    deadline = cannot run); Failed (a non-zero exit code) and Execution Timed Out fail the backup; Delivery Timed
    Out, Undeliverable, Invalid Platform, Access Denied, Cancelled, Terminated are the set-up's: failed, not the
    backup's fault."""
    status = str(invocation.get("Status", ""))
    detail = str(invocation.get("StatusDetails") or status).replace(" ", "")
    merged = {**details, "validation_status": detail or status}
    if status == COMMAND_PASSED:
        return RestoreProgress("ready", details=merged)
    if detail == "InProgress":
        return RestoreProgress("starting", details=merged)
    if status in COMMAND_RUNNING:
        return RestoreProgress("starting", SSM_UNREACHABLE, {**merged, NOT_BACKUP_FAULT: "true"})
    merged["validation_exit_code"] = str(invocation.get("ResponseCode", ""))
    output = str(invocation.get("StandardErrorContent") or invocation.get("StandardOutputContent") or "")
    if output:
        merged["validation_output"] = output[-OUTPUT_EXCERPT:]
    reason = f"validation command {detail or status or 'ended'} (exit code {merged['validation_exit_code']})"
    if detail in VALIDATION_BACKUP_FAULTS:
        return RestoreProgress("failed", reason, merged)
    return RestoreProgress("failed", f"{reason}; {SSM_UNREACHABLE}", {**merged, NOT_BACKUP_FAULT: "true"})


def ended_progress(state: str, state_reason: Mapping[str, Any], details: Mapping[str, str]) -> RestoreProgress:
    """An instance that left `running` (or never reached it) before passing, judged by its StateReason
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html): a launch EC2 ended for a KMS key
    the test may not use (Client.InternalError, Client.InvalidKMSKey.*), for capacity or AWS's own error
    (Server.InsufficientInstanceCapacity, Client.VolumeLimitExceeded, Server.InternalError), or an API call
    (Client.UserInitiatedShutdown: a person, or another delivery's clean-up) is no fault of the backup; anything else
    (the OS shut itself down, a snapshot of the AMI is gone...) fails it."""
    code = str(state_reason.get("Code") or "")
    message = str(state_reason.get("Message") or code)
    merged = {**details, "state_reason_code": code} if code else dict(details)
    reason = f"the instance went {state} before it passed its status checks" + (f" ({message})" if message else "")
    if code in KMS_STATE_REASONS or code.startswith("Client.InvalidKMSKey"):
        reason += (
            "; EBS could not use a KMS key of the AMI's snapshots (or the account's default EBS key): allow the "
            "worker role on it, see restore_test.kms_key_arns"
        )
        return RestoreProgress("failed", reason, {**merged, NOT_BACKUP_FAULT: "true"})
    if code in NOT_BACKUP_STATE_REASONS:
        return RestoreProgress("failed", reason, {**merged, NOT_BACKUP_FAULT: "true"})
    return RestoreProgress("failed", reason, merged)


def _describe_instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """A filter, not InstanceIds: an unknown id answers empty instead of failing."""
    response = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    instances = [instance for reservation in response["Reservations"] for instance in reservation["Instances"]]
    return dict(instances[0]) if instances else None


def _instance_status(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """None while EC2 has no status for it (just started, or the id not propagated yet): initializing."""
    try:
        response = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)
    except ClientError as error:
        if error_code(error) in INSTANCE_GONE_ERRORS:
            return None
        raise
    statuses = response.get("InstanceStatuses", [])
    return dict(statuses[0]) if statuses else None


def _terminate_one(ec2: Any, instance_id: str) -> None:
    try:
        ec2.terminate_instances(InstanceIds=[instance_id])
    except ClientError as error:
        if error_code(error) not in INSTANCE_GONE_ERRORS:
            raise


def _as_utc(moment: Any) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return parse_time(moment, "LaunchTime")
