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
EBS snapshots (CreateSnapshot, CreateSnapshots, DescribeSnapshots, DeleteSnapshot)
  E11 Snapshots of CreateSnapshot/CreateSnapshots start `pending` (Progress "0%") with StartTime on the fidelity
      clock and become `completed` `snapshot_completion_time` later (default 10 minutes, an assumption), unless a
      test pins a state (`set_snapshot_state`: pending, completed, error with a StateMessage, recoverable,
      recovering); an error in a multi-volume set puts its other pending snapshots in error too; the
      CreateSnapshots answer carries each snapshot's State. Snapshots of CreateImage keep moto's behaviour.
  E12 CreateSnapshots honours ExcludeDataVolumeIds (moto ignores it; the root volume or more than 40 ids fail),
      CopyTagsFromSource=volume (moto ignores it), and fails when nothing is left to snapshot.
  E13 A new snapshot of a volume less than 15 s after the previous one fails with
      `SnapshotCreationPerVolumeRateExceeded` (fidelity clock).
  E14 A volume holds at most 5 pending or failed (`error`) snapshots (1 for st1/sc1), those deleted while pending
      included until they would have completed; the next request fails with `ConcurrentSnapshotLimitExceeded`.
  E15 A locked snapshot (`lock_snapshot`, governance or compliance) cannot be deleted until it is unlocked or its
      lock expires; a lock placed while pending is cancelled if the snapshot fails. The error code is not
      documented: `OperationNotPermitted` is assumed (`fidelity.locked_snapshot_error`).
  E16 Malformed ids: CreateSnapshot `InvalidVolumeID.Malformed`, CreateSnapshots `InvalidInstanceID.Malformed`
      (moto answers NotFound).
  E17 DescribeLockedSnapshots (moto: not implemented) answers the locks of `lock_snapshot`, expired ones with
      LockState `expired`.
  E18 CopySnapshot gives the copy an arbitrary VolumeId (`vol-ffffffff`; moto reuses the source's volume) and a
      StartTime on the fidelity clock (pending phase: E25).
  E19 CreateImage snapshots the instance's root volume: the snapshot's VolumeId and VolumeSize, and the AMI's root
      mapping (VolumeSize, VolumeType), are the root volume's (moto: a phantom 15 GiB `standard` volume). The
      description stays moto's `Created by CreateImage(i-…) for ami-…`; AWS publishes no form, and the form with
      ` from vol-…` is observed too: `fidelity.create_image_description_with_volume = True` writes that one.
  E20 CopyImage writes EC2's description on the destination AMI's snapshot (`Copied for DestinationAmi ami-… from
      SourceAmi ami-… for SourceSnapshot snap-…. Task created on <epoch ms, with commas>.`; an observed form, AWS
      publishes none), gives it an arbitrary VolumeId (`vol-ffffffff`) and the source's VolumeSize, stamps the AMI
      and snapshot on the fidelity clock, applies TagSpecifications (`image`, `snapshot`; any other type fails)
      and CopyImageTags (moto: "Auto-created snapshot for AMI …", no tags).
Copies across Regions and accounts (CopySnapshot, CopyImage, ModifySnapshotAttribute, DescribeSnapshots)
  E25 A CopySnapshot copy (made in the Region of the request, as moto already does) starts `pending` ("0%") and is
      `completed` `snapshot_copy_time` later (default 30 minutes, an assumption), unless pinned (`set_snapshot_state`)
      or made to end in `error` with a StateMessage (`end_copy_in_error`); moto: `completed` at once.
  E26 Only a `completed` source can be copied: a pending or failed one is refused with `IncorrectState` (code not
      documented: `fidelity.incomplete_source_error`); an unknown source stays `InvalidSnapshot.NotFound`.
  E27 At most 20 pending CopySnapshot copies per account and destination Region (`fidelity.concurrent_snapshot_copies`);
      the next request fails with `ResourceLimitExceeded`.
  E28 Encryption and sharing of copies: Encrypted=true encrypts a copy of an unencrypted source, an encrypted source's
      copy stays encrypted, with KmsKeyId or else the Region's default EBS key (moto: Encrypted ignored, no key);
      KmsKeyId without encryption is `InvalidParameterCombination` (code assumed). A snapshot another account shared
      with the caller (CreateVolumePermission user id or `all`) can be copied, and DescribeSnapshots lists it
      (SnapshotIds, OwnerIds, RestorableByUserIds honoured); moto finds only the caller's own snapshots.
  E29 ModifySnapshotAttribute refuses to share a snapshot encrypted with the AWS managed key `alias/aws/ebs`, and to
      share an encrypted snapshot publicly (`OperationNotPermitted`, observed, not documented:
      `fidelity.managed_key_share_error`); moto shares anything.
  E30 A KMS key the caller may not use (`deny_kms_key`: destination key, default key or the source's key): the copy
      is made and is `error` at once with StateMessage `fidelity.kms_denied_message` (a CopyImage AMI `failed`, its
      StateReason Code `CustomerKeyHasBeenRevoked`); with `fidelity.kms_denial_fails_request = True` the request
      fails with `CustomerKeyHasBeenRevoked` instead. AWS documents the code, not which of the two happens.
  E31 CopyImage honours ClientToken: the same token answers the first ImageId; other parameters with it fail with
      `IdempotentParameterMismatch` (moto: a new AMI each time).
  E32 A CopyImage AMI is `pending`, its snapshot `pending` ("0%"), for `image_copy_time` (default 30 minutes, an
      assumption), then `available`/`completed` (moto: available at once); `set_image_state` still pins the AMI.
      Encrypted/KmsKeyId encrypt the copy's snapshot as E28 (moto ignores them).
  Checked, moto already matches: CopySnapshot and CopyImage look the source up in SourceRegion and make the copy in
  the Region of the request only; CopySnapshot applies its `snapshot` TagSpecifications and Description.
Filters, Recycle Bin, snapshot tiers
  E21 EC2 filter values match as AWS documents: `*` any run, `?` exactly one character, a backslash escapes the
      next character, everything else literal (moto: fnmatch, where `[...]` is a character class and a backslash no
      escape).
  E22 ListImagesInRecycleBin (moto: not implemented) answers the AMIs `recycle_image` deregistered into the
      emulated Recycle Bin until `purge_recycled_image` or their RecycleBinExitTime (fidelity clock); ImageIds (at
      most 20), MaxResults (1-1000), NextToken. A binned AMI is deregistered (DescribeImages as E9); its snapshots
      can be deleted (AWS documents that this makes the AMI unrecoverable, no refusal).
  E23 DescribeSnapshotTierStatus filters `last-tiering-operation` (moto: FilterNotImplementedError) and pages
      with MaxResults/NextToken; ModifySnapshotTier (and `archive_snapshot`, optionally backdated with `at`)
      stamp LastTieringStartTime and ArchivalCompleteTime on the fidelity clock.
  E24 DescribeSnapshots pages by MaxResults/NextToken (moto answers every snapshot in one page whatever MaxResults).
  Checked, moto already matches: CreateSnapshot/CreateSnapshots tag the snapshots from a `snapshot`
  TagSpecification and set Description; ExcludeBootVolume; unknown or deleted volume `InvalidVolume.NotFound`,
  unknown instance `InvalidInstanceID.NotFound`; an archived snapshot (`archive_snapshot`) shows StorageTier
  `archive` and can be deleted (AWS documents only a charge for the rest of the 90-day minimum).
EC2 instances (StartInstances, StopInstances)
  E33 State changes take time when asked: StartInstances puts a stopped instance in `pending`, StopInstances a running
      one in `stopping`, for `instance_start_time` / `instance_stop_time` on the fidelity clock, then `running` /
      `stopped` (both durations are assumptions and default to 0: moto's immediate end state, which existing tests
      rely on); `set_instance_state` still pins any state.
  E34 The ids and states of a batch: a malformed id fails with `InvalidInstanceID.Malformed` (moto: NotFound); a
      terminated or shutting-down instance with `IncorrectInstanceState` (moto starts or stops it); an instance already
      in the desired state (or on its way) is answered with CurrentState = PreviousState and left alone (moto answers
      pending/stopping and restamps it). Any refusal fails the whole request and acts on none (AWS documents no
      partial answer; moto's NotFound already does so).
  E35 A start that falls back: with an encrypted volume whose KMS key the caller may not use (`deny_kms_key`), the
      instance goes `pending`, then `stopped` with StateReason `Client.InternalError` / `Client.InternalError: Client
      error on launch` (moto: running).
  E36 StopInstances(Hibernate=True) of an instance not enabled for hibernation fails with
      `UnsupportedHibernationConfiguration` (moto ignores Hibernate); StopInstances of a Spot Instance of a one-time
      request (RunInstances' default; `persistent_spot` marks the others) fails with `UnsupportedOperation` (moto
      stops it).
  Checked, moto already matches: an unknown id fails the whole request with `InvalidInstanceID.NotFound`;
  `disableApiStop` refuses StopInstances (`OperationNotPermitted`; now checked before any instance is acted on).
Restore tests (RunInstances, DescribeInstanceStatus, CreateVolume, DeleteVolume)
  E56 RunInstances honours ClientToken: the same token (account, Region, zone) answers the first reservation, launches
      nothing; other parameters with it fail with `IdempotentParameterMismatch` (moto launches again) - "Ensuring
      idempotency in Amazon EC2 API requests", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html.
  E57 RunInstances refuses an instance type whose SupportedArchitectures (DescribeInstanceTypes) lack the AMI's
      architecture: `InvalidParameterValue` with the observed message (not documented; code
      `fidelity.architecture_mismatch_error`), and an AMI deregistered (E9, E22) or not `available` with
      `InvalidAMIID.Unavailable` ("Error codes for the Amazon EC2 API"); moto launches anything. An id moto never
      knew stays launchable.
  E58 A launch is `pending` for `instance_launch_time` (assumed, default 0 = moto's immediate `running`) on the
      fidelity clock, LaunchTime stamped on that clock; `network-interface` TagSpecifications tag the interfaces
      (moto: ignored) - "State change events for Amazon EC2 instances", "RunInstances" (API Reference).
  E59 DescribeInstanceStatus: after `running` (launch or start), SystemStatus/InstanceStatus/AttachedEbsStatus are
      `initializing` for `status_check_time` (assumed, default 0: `ok` at once as moto) then `ok`;
      `impair_instance(id, which)` makes `system`, `instance` or `ebs` `impaired` (detail `failed`, ImpairedSince);
      AttachedEbsStatus for instances with EBS volumes (moto: `ok` at once, no EBS status) - "Status checks for Amazon
      EC2 instances", "InstanceStatusSummary", "InstanceStatusDetails", "EbsStatusSummary" (API Reference).
  E60 CreateVolume honours ClientToken (as E56); a new volume is `creating` for `volume_creation_time` (assumed,
      default 0 = moto's `available`), then `available`, or `error` for a snapshot `fail_volume_creation` names;
      `set_volume_state` pins; CreateTime on the fidelity clock; DeleteVolume of a `creating` volume fails
      (`fidelity.creating_volume_delete_error`, assumed `IncorrectState`) - "Volume" (API Reference), "Amazon
      EventBridge events for Amazon EBS" (createVolume available|failed).
  E61 RunInstances merges the request's BlockDeviceMappings into the AMI's by DeviceName (NoDevice drops one; moto
      launches the request's alone and fails one without SnapshotId/VolumeSize), and refuses unknown security groups
      in NetworkInterfaces (`InvalidGroup.NotFound`; moto launches) - "Block device mappings" (EC2 User Guide).
  Checked, moto already matches: NetworkInterfaces AssociatePublicIpAddress false (no public address) and
  DeleteOnTermination; unknown SubnetId / SecurityGroupIds; TerminateInstances of an unknown id
  (`InvalidInstanceID.NotFound`). Not modelled: the AMI's block device mappings of a launch without
  BlockDeviceMappings (moto makes a blank 8 GiB root),
  `shutting-down` after TerminateInstances (moto: `terminated` at once), `deleting`, the ClientToken's expiry,
  instance-status filters, `insufficient-data`. Events: moto emits no `EC2 Instance State-change Notification` or
  `EBS Volume Notification`; nothing is patched, tests publish them.
RDS (StopDBInstance, StartDBInstance, StopDBCluster, StartDBCluster)
  E37 Stop/StartDBInstance of a DB instance that belongs to a DB cluster (Aurora, and the DocumentDB and Neptune
      instances the same API lists) fails with `InvalidParameterCombination` "<engine> DB instances are not eligible
      for stopping and starting." (moto stops and starts it).
  E38 StopDBInstance of a DB instance that has read replicas fails (code not documented:
      `fidelity.rds_replica_source_error`, default `InvalidDBInstanceState`); moto stops it.
  E39 Stop/StartDBCluster of an Aurora Serverless v1 cluster, of a cluster in a global database, and of a cluster
      that replicates to or from another cluster fails (code not documented: `fidelity.rds_cluster_refusal_error`,
      default `InvalidDBClusterStateFault`); moto stops and starts them.
  Checked, moto already matches: StopDBInstance of a read replica, and of SQL Server Multi-AZ, fails (moto's code
  `InvalidDBClusterStateFault`; AWS documents none); Stop/Start of a resource not `available`/`stopped` fails with
  `InvalidDBInstanceState`/`InvalidDBClusterStateFault`. Not modelled: `stopping` and `starting` (moto answers the
  end state at once; tests set `status` on the backend), the cluster's members following its status, the
  auto-start after seven days and its RDS-EVENT-0154/0153 (moto emits no RDS events).
SSM Run Command (SendCommand, ListCommands, GetCommandInvocation, ListCommandInvocations, DescribeInstanceInformation)
  E40 SendCommand runs on the ids given (moto: every EC2 instance of the Region as well), or on the managed nodes in a
      valid state matching `tag:K` / `tag-key` targets (keys ANDed, values ORed; moto: terminated and unmanaged ones
      too); `Key=InstanceIds` targets ids (moto: NotImplementedError); TargetCount is the invocations (moto: an
      undeduplicated count).
  E41 An id given that is unknown, shutting-down or terminated, or no managed node (`unmanage`; `manage` undoes it)
      refuses the whole SendCommand with `InvalidInstanceId` "Instances [[...]] not in a valid state for account N"
      (moto accepts any id). Every instance is a managed node with its agent online unless a test says otherwise.
  E42 (limits only) SendCommand refuses more than 50 InstanceIds, 5 Targets, 50 values a target, a Comment over 100
      characters, and MaxConcurrency/MaxErrors outside their patterns with ValidationException (moto accepts them).
  E43 Each invocation runs a timeline on the fidelity clock: Pending, InProgress, then Success, Failed (exit code),
      ExecutionTimedOut (the document's executionTimeout), Undeliverable, or DeliveryTimedOut at the total timeout
      (ExpiresAfter = requested + TimeoutSeconds + executionTimeout; moto: + TimeoutSeconds only), set per instance
      with `ssm_outcome`; a stopped node is Delayed, a lost agent (`lose_agent`) InProgress, until then. Durations
      `ssm_delivery_time`, `ssm_run_time` are assumptions, default 0 (moto's immediate Success stays the default).
  E44 The command's Status, StatusDetails and counts follow its invocations (Failed beyond MaxErrors, Incomplete,
      all-Undeliverable Failed, NoInstancesInTag; moto: Success); the SendCommand answer is Pending with counts 0.
  E46 GetCommandInvocation answers the invocation's state (ResponseCode -1 until it ran, real start/end, stdout and
      stderr cut at 24,000/8,000, the document's plugin, InvalidPluginName; moto: Success, PT5M, wall clock).
  E47 ListCommandInvocations (moto: not implemented): CommandId/InstanceId, Status and DocumentName filters,
      Details with one CommandPlugin (ResponseCode, Output), MaxResults 1-50 and NextToken.
  E48 ListCommands honours Filters (Status, DocumentName, InvokedAfter/InvokedBefore, ExecutionStage) on the state of
      E44, MaxResults 1-50 and NextToken (moto ignores them and answers one page).
  E49 DescribeInstanceInformation (moto: not implemented): the managed nodes in pending/running, PingStatus Online or
      ConnectionLost (`lose_agent`, `restore_agent`), Filters InstanceIds and PingStatus, 10 a page by default.
  E42 (documents) SendCommand checks the document: unknown name (or ARN) InvalidDocument, unknown version
      InvalidDocumentVersion, an undeclared or a missing required parameter InvalidParameters; AWS-RunShellScript and
      AWS-RunPowerShellScript are AWS-owned documents (`ssm_aws_documents`), others come from moto's store.
  E45 MaxConcurrency batches of 1, 2, 4, ... sent once the previous batch is acknowledged, never more than
      MaxConcurrency running; once errors (Failed, ExecutionTimedOut) exceed MaxErrors, invocations not sent become
      Terminated (Status `ssm_terminated_status`, assumed Cancelled); moto ignores both values.
  E50 With OutputS3BucketName, an invocation that ran writes stdout (and a non-empty stderr) to the moto S3 bucket
      when it ends (`ssm_settle`, called by every SSM read; `deny_instance_output` stops it) under an UNVERIFIED key
      layout; StandardOutputUrl/StandardErrorUrl are filled; a bucket that does not exist is InvalidOutputFolder;
      CloudWatchOutputConfig and DocumentVersion are echoed (nothing is written to CloudWatch Logs).
  E51 CancelCommand (moto: not implemented): invocations not terminal become Cancelled at once; the whole command
      Cancelled.
  E52 `ssm_events(since)`, `ssm_drain_events()`, `ssm_next_change()` and `ssm_event_entries(events)`: the
      `EC2 Command Status-change Notification` / `EC2 Command Invocation Status-change Notification` events of every
      Status change on the fidelity clock (moto emits none), statuses `ssm_event_statuses` (default the terminal ones).
  Not built: GetCommandInvocation's eventual-consistency window, output to CloudWatch Logs.
IAM/STS (AssumeRole; the mutating EC2 calls of the modules, made with a role session)
  I1  AssumeRole by a role session into a role that exists is decided by the role's trust policy in the role's own
      account (Principal; sts:ExternalId, sts:RoleSessionName, aws:PrincipalArn, aws:PrincipalAccount, and
      aws:PrincipalOrgID / aws:ResourceOrgID - the organization of the caller's / the role's account, set with
      `fidelity.iam.join_organization` or taken from moto's Organizations) and by the caller's identity policies on
      the RoleArn (cross-account both; an explicit Deny wins); otherwise `AccessDenied` (moto assumes any role for
      anyone).
  I2  CreateImage, CreateSnapshot(s), CreateTags, DeleteSnapshot, DeregisterImage, Start/StopInstances, and for
      restore tests RunInstances, TerminateInstances, CreateVolume, DeleteVolume, made with a
      session of a role that has policies are decided against them per resource: real ARNs, aws:ResourceTag from
      the backend, aws:RequestTag/aws:TagKeys from TagSpecifications (and the implied ec2:CreateTags with
      ec2:CreateAction), explicit Deny first; otherwise `UnauthorizedOperation` and nothing is done (moto allows).
      RunInstances is authorised on the image and the snapshots of BlockDeviceMappings (aws:ResourceTag), the
      subnets, security groups, existing network interfaces and key pair named, and network-interface/*,
      instance/*, volume/* (aws:RequestTag); CreateVolume on volume/* and the snapshot (Service Authorization
      Reference, "Actions, resources, and condition keys for Amazon EC2"). CreateTags on existing resources carries
      aws:TagKeys (ForAllValues/ForAnyValue); the `Null` operator is evaluated.
  Both record each decision in `fidelity.iam.decisions` (who, account, action, resource, allowed), as CloudTrail
  would show it. An operator, NotPrincipal, policy variable or permissions boundary they do not evaluate raises
  `UnmodelledPolicy` (the request fails) instead of passing. Left as moto has it: the emulator's dummy key (Terraform
  and the harness), roles that do not exist in an account outside any organization (Terraform's
  OrganizationAccountAccessRole; in an organization's account I1 refuses them), roles without policies,
  reads, session policies, RCPs (SCPs: E54), and every other service.
Accounts of an organization (opt-in Regions, service control policies, Organizations)
  E53 Opt-in Regions: an account uses the Regions launched before 20 March 2019 and the opt-in Regions it enabled
      (`fidelity.accounts.enable_region`; none by default). A request by the account's credentials to an endpoint in
      another Region fails - EC2 `AuthFailure`, other services `InvalidClientTokenId`; AssumeRole at an opt-in
      Regional STS endpoint needs the Region in the role's account too. DescribeRegions lists the account's enabled
      Regions of its own partition (AllRegions: all, OptInStatus per account; RegionNames any; filters endpoint,
      opt-in-status, region-name). moto serves every Region to every account and lists every partition's Regions.
  E54 Service control policies: a request by a principal of a member account (not the management account), with the
      SCP type enabled on the root, is denied by an SCP Deny attached to the root, an OU on the path or the account,
      or by a level without an SCP allowing it; EC2 `UnauthorizedOperation`, query services `AccessDenied`, JSON
      services `AccessDeniedException`, with IAM's message forms; I2's EC2 calls per resource and tags, every other
      request on "*". Decisions in `fidelity.accounts.scp_decisions`. moto stores SCPs and enforces none.
  E55 Organizations accounts: CloseAccount makes an account PENDING_CLOSURE (Status and State) for
      `fidelity.accounts.account_closure_time` (assumed 5 minutes), then Status SUSPENDED / State CLOSED (moto:
      SUSPENDED/SUSPENDED at once); `fidelity.accounts.suspend_account` is an AWS-enforced suspension (SUSPENDED/
      SUSPENDED). ListAccounts, ListAccountsForParent, ListOrganizationalUnitsForParent take MaxResults 1-20 (more:
      InvalidInputException) and page by 20 without it (moto: any MaxResults; ListAccounts 100 a page).
  Checked, moto already matches: ListAccountsForParent and DescribeAccount carry Status and State; every new OU and
  account gets FullAWSAccess attached. Not modelled: the removal of a closed account from the organization after
  90 days; calls into a suspended or closed account; Organizations calls by a member account that is no delegated
  administrator (moto answers ParentNotFound, AWS AccessDeniedException); S3 requests (their own authorisation path)
  under E53/E54; RCPs; service-linked roles (SCPs do not apply to them; moto has none).
Deployments and event flow
  D1  EventBridge delivers the whole event to a target, `account` included.
  D2  No SQS push to a Docker-run Lambda: the harness plays the Lambda poller.
  D3  The public Powertools for AWS Lambda layers exist.
  D4  SQS delays and visibility timeouts run on the fidelity clock when asked (`sqs_time=True` or
      `fidelity.simulated_time(clock)`).
  D5  A rule whose target is an event bus (in another Region or account, or the same) delivers the event as it
      is - `region` (where it originated), `account`, `id`, `time`, `resources` and `detail` unchanged - to the
      rules of that bus, and an event that came from another bus is not sent on to a third (moto re-puts it with
      the target bus's Region, a new id, the current time and no resources, and forwards it again).
Fault injection and setup (not fidelity; explicit test helpers)
  `fail_create_image`, `deny_snapshot_deletion`, `set_instance_state`; for EBS snapshots `fail_create_snapshot`
  (CreateSnapshot of a volume or CreateSnapshots of an instance answers an error code), `set_snapshot_state`,
  `lock_snapshot`/`unlock_snapshot`, `archive_snapshot`; for the Recycle Bin `recycle_image`,
  `purge_recycled_image`; for copies `fail_copy_snapshot` (CopySnapshot of a source answers an error code),
  `end_copy_in_error`, `deny_kms_key` (also the start fallback of E35), `encrypt_with_aws_managed_key`,
  `aws_managed_ebs_key`; for instances `set_instance_state`; for restore tests `fail_run_instances` (the next
  RunInstances answer an error code, e.g. InsufficientInstanceCapacity), `fail_create_volume`, `impair_instance`,
  `fail_volume_creation`, `set_volume_state`; for SSM Run Command `unmanage`/`manage`,
  `lose_agent`/`restore_agent`, `ssm_outcome`, `deny_instance_output`, `ssm_cancel`.
Performance (not fidelity; same answers): `fast_tags()` looks an EC2 resource's tags up directly instead of moto's
  scan of every tag of the region, for benchmarks over thousands of snapshots (`check_fast_tags` proves the answers
  equal on a sample).
Not modelled: CreateImage and CopyImage make one snapshot per AMI (the root volume's; AWS snapshots every EBS
volume of the instance); FullSnapshotSizeInBytes (AWS: the blocks written to the volume, which moto does not
know); RestoreImageFromRecycleBin; the `aws:recycle-bin:resource-in-bin` tag of binned resources. For copies:
CompletionDurationMinutes (time-based copies) is accepted and ignored, and its missed-duration event is not
emitted; CopyImage of an AMI shared from another account (moto looks only in the caller's account); EBS encryption
by default; the limit on concurrent AMI copies; DescribeSnapshotAttribute stays moto's. For instances: EventBridge
`EC2 Instance State-change Notification` events (moto emits none); instance store-backed roots (moto makes every root
EBS); Force; a start of a `stopping` instance and a stop of a `pending` one are accepted as moto accepts them (AWS
documents neither); Spot instances.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import functools
import io
import json
import re
import threading
import urllib.parse
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend, LayerVersion
from moto.awslambda.utils import split_layer_arn
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import AccessDeniedError, JsonRESTError, ServiceException, _RESTError
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2 import utils as ec2_utils
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidSecurityGroupNotFoundError,
    InvalidSnapshotInUse,
    OperationDisableApiStopNotPermitted,
)
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot, Volume
from moto.ec2.models.instances import Instance, StateReason
from moto.ec2.responses import EC2Response
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.availability_zones_and_regions import AvailabilityZonesAndRegions
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.iam.exceptions import NotFoundException as IamNotFound
from moto.iam.models import Role, iam_backends
from moto.organizations import utils as organizations_utils
from moto.organizations.exceptions import AccountAlreadyClosedException, InvalidInputException
from moto.organizations.models import FakeAccount, organizations_backends
from moto.organizations.responses import OrganizationsResponse
from moto.rds.exceptions import RDSClientError
from moto.rds.models import RDSBackend
from moto.s3.models import s3_backends
from moto.sqs import models as sqs_models
from moto.sqs.models import sqs_backends
from moto.ssm.exceptions import SSMException
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse
from moto.utilities.arns import parse_arn
from moto.utilities.utils import get_partition
from werkzeug.exceptions import HTTPException

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

# EBS snapshots (E11-E17). States of the SnapshotState enumeration (API_Snapshot). Pending snapshots and, as the
# error-code list says, snapshots in an incomplete state "such as 'error'" count against the per-volume limit
# (E14); what `recoverable` and `recovering` mean is not documented, so they do not count.
PENDING = "pending"
COMPLETED = "completed"
ERROR = "error"
SNAPSHOT_STATES = (PENDING, COMPLETED, ERROR, "recoverable", "recovering")
INCOMPLETE_SNAPSHOT_STATES = frozenset({PENDING, ERROR})
RATE_EXCEEDED = "SnapshotCreationPerVolumeRateExceeded"
CONCURRENT_LIMIT_EXCEEDED = "ConcurrentSnapshotLimitExceeded"
INVALID_PARAMETER_VALUE = "InvalidParameterValue"
# Documented figures: 15 s between snapshots of a volume (E13); 5 pending snapshots per volume, 1 for st1/sc1
# (E14); up to 40 excluded data volumes per CreateSnapshots (E12).
SNAPSHOT_RATE_INTERVAL = timedelta(seconds=15)
CONCURRENT_SNAPSHOTS_PER_VOLUME = 5
CONCURRENT_SNAPSHOTS_PER_VOLUME_TYPE = {"st1": 1, "sc1": 1}
MAX_EXCLUDED_DATA_VOLUMES = 40
# Assumed where AWS documents no figure or code (E11, E15); both are settable on the MotoFidelity.
DEFAULT_SNAPSHOT_COMPLETION_TIME = timedelta(minutes=10)
DEFAULT_LOCKED_SNAPSHOT_ERROR = "OperationNotPermitted"
LOCK_MODES = ("governance", "compliance")
# Resource id forms (E16): the prefix and 8 or 17 hexadecimal characters.
VOLUME_ID = re.compile(r"vol-(?:[0-9a-f]{8}|[0-9a-f]{17})")
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# Recycle Bin (E22): ListImagesInRecycleBin takes at most 20 ImageIds; MaxResults 1-1000, default 1000.
RECYCLE_BIN_MAX_IDS = 20
RECYCLE_BIN_MAX_RESULTS = 1000
# Snapshot tiers (E23): the documented `last-tiering-operation` filter of DescribeSnapshotTierStatus.
TIERING_OPERATION_FILTER = "last-tiering-operation"
# Pagination tokens of the emulated actions (E22, E23); opaque to callers.
PAGE_TOKEN_PREFIX = "fidelity-page-"
# Copies (E25-E32). Documented: 20 concurrent snapshot copy requests per account and destination Region and the code
# `ResourceLimitExceeded` (E27); `InvalidSnapshot.NotFound`; `CustomerKeyHasBeenRevoked` "The KMS key cannot be
# accessed" (E30); `IdempotentParameterMismatch` (E31). Assumed where AWS names no value (settable on the
# MotoFidelity): how long a copy runs (E25, E32), the code refusing a source that is not `completed` (E26), the code
# refusing to share an `aws/ebs`-encrypted snapshot (E29, observed), the StateMessage of a KMS-denied copy (E30).
CONCURRENT_SNAPSHOT_COPIES_PER_REGION = 20
RESOURCE_LIMIT_EXCEEDED = "ResourceLimitExceeded"
KMS_KEY_NOT_ACCESSIBLE = "CustomerKeyHasBeenRevoked"
IDEMPOTENT_MISMATCH = "IdempotentParameterMismatch"
DEFAULT_SNAPSHOT_COPY_TIME = timedelta(minutes=30)
DEFAULT_IMAGE_COPY_TIME = timedelta(minutes=30)
DEFAULT_INCOMPLETE_SOURCE_ERROR = "IncorrectState"
DEFAULT_MANAGED_KEY_SHARE_ERROR = "OperationNotPermitted"
DEFAULT_KMS_DENIED_MESSAGE = "Given key ID is not accessible"
AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"
AVAILABLE = "available"
FAILED = "failed"
# EC2 instances (E33-E36). Documented: the StateReason of a start that fails on an encrypted volume's KMS key (E35),
# `UnsupportedHibernationConfiguration` (E36), `InvalidInstanceID.Malformed`, `IncorrectInstanceState` (E34). Assumed:
# how long pending and stopping last - 0 by default, moto's immediate end state (E33).
DEFAULT_INSTANCE_START_TIME = timedelta(0)
DEFAULT_INSTANCE_STOP_TIME = timedelta(0)
LAUNCH_ERROR_CODE = "Client.InternalError"
LAUNCH_ERROR_MESSAGE = "Client.InternalError: Client error on launch"
UNSUPPORTED_HIBERNATION = "UnsupportedHibernationConfiguration"
GONE_INSTANCE_STATES = frozenset({"shutting-down", "terminated"})
# Restore tests: launches, status checks and volumes (E56-E60). Documented: `IdempotentParameterMismatch` (E56,
# E60), the status values of DescribeInstanceStatus (E59), the VolumeState values (E60). Observed, not documented:
# the `InvalidParameterValue` answer to an instance type of another architecture than the AMI's (E57). Assumed
# (settable on the MotoFidelity; 0 keeps moto's immediate end state, which existing tests rely on): how long a launch
# is `pending`, how long status checks are `initializing`, how long CreateVolume is `creating`; the code refusing
# DeleteVolume of a `creating` volume.
DEFAULT_INSTANCE_LAUNCH_TIME = timedelta(0)
DEFAULT_STATUS_CHECK_TIME = timedelta(0)
DEFAULT_VOLUME_CREATION_TIME = timedelta(0)
DEFAULT_ARCHITECTURE_MISMATCH_ERROR = INVALID_PARAMETER_VALUE
DEFAULT_CREATING_VOLUME_DELETE_ERROR = "IncorrectState"
STATUS_CHECKS = ("system", "instance", "ebs")
VOLUME_STATES = ("creating", "available", "in-use", "deleting", "deleted", "error")
# RDS (E37-E39). Observed (issue threads quoting the AWS answer): `InvalidParameterCombination` for a cluster member
# (E37). Assumed where AWS names no code (settable on the MotoFidelity): E38, E39.
DEFAULT_RDS_REPLICA_SOURCE_ERROR = "InvalidDBInstanceState"
DEFAULT_RDS_CLUSTER_REFUSAL_ERROR = "InvalidDBClusterStateFault"


def _aware(moment: datetime) -> datetime:
    """moto works in naive UTC; test clocks may be aware. Compare everything as aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class _Deregistration:
    ami: Ami
    at: datetime
    snapshots: tuple[str, ...]


@dataclass
class _SnapshotRecord:
    """A snapshot CreateSnapshot or CreateSnapshots made (E11, E13, E14); kept after its deletion."""

    account_id: str
    region: str
    volume_id: str
    started: datetime
    set_id: str | None
    deleted: bool = False
    deleted_while_pending: bool = False


@dataclass
class _CopyRecord:
    """A copy in progress or done (E25, E32): a snapshot of CopySnapshot or CopyImage, or an AMI of CopyImage."""

    account_id: str
    region: str
    source_id: str
    started: datetime
    duration: timedelta
    by_copy_image: bool = False
    ends_in_error: str | None = None  # the StateMessage a copy ends with instead of completing (end_copy_in_error)
    pinned: bool = False  # an AMI whose state was set after the copy started (set_image_state, deregistration, ...)


@dataclass
class _Pin:
    """A state a test pinned with `set_snapshot_state`, and when."""

    state: str
    message: str
    at: datetime


@dataclass
class _Recycled:
    """An AMI in the emulated Recycle Bin (E22)."""

    ami: Ami
    entered: datetime
    exits: datetime


@dataclass
class _Transition:
    """An instance on its way (E33, E35): in state `via` from `started` for `duration`, then `final`."""

    via: str
    final: str
    started: datetime
    duration: timedelta
    reason: StateReason | None = None  # the StateReason it ends with (E35); None keeps what moto set


@dataclass
class _VolumeRecord:
    """E60: a volume of CreateVolume - when it was created, how long it is `creating`, whether it then ends in
    `error` (`fail_volume_creation`), or a pinned state (`set_volume_state`)."""

    created: datetime
    duration: timedelta
    fails: bool = False
    pinned: str | None = None


@dataclass
class _Fault:
    """E59, E61: an injected error answered by the next `times` matching requests."""

    code: str
    message: str
    times: int
    resource_id: str | None = None


@dataclass
class _Lock:
    mode: str
    locked_at: datetime
    duration: timedelta | None
    locked_while_pending: bool


# ---------------------------------------------------------------------------------------------------------------
# SSM Run Command: SendCommand, GetCommandInvocation, ListCommandInvocations, DescribeInstanceInformation (E40-E49)
# ---------------------------------------------------------------------------------------------------------------

# Documented (API_CommandInvocation, API_CommandFilter): the StatusDetails values; the machine spellings (no spaces) of
# the CommandFilter Status values are used. ResponseCode -1 "the command hasn't started running on the managed node,
# or it wasn't received by the node" (API_GetCommandInvocation).
SSM_OUTCOMES = ("Success", "Failed", "ExecutionTimedOut", "DeliveryTimedOut", "Undeliverable")
SSM_NOT_STARTED_CODE = -1
# Documented figures: the AWS-RunShellScript / AWS-RunPowerShellScript `executionTimeout` default (3600 s); plugin
# Output 2,500 characters (CommandPlugin), stdout 24,000 and stderr 8,000 (GetCommandInvocation); ListCommandInvocations
# MaxResults 1-50; DescribeInstanceInformation MaxResults 5-50, "The default value is 10 items".
SSM_DEFAULT_EXECUTION_TIMEOUT = timedelta(seconds=3600)
SSM_PLUGIN_OUTPUT_LIMIT = 2500
SSM_STDOUT_LIMIT = 24000
SSM_STDERR_LIMIT = 8000
SSM_LIST_INVOCATIONS_MAX = 50
SSM_INSTANCE_INFORMATION_DEFAULT = 10
SSM_INSTANCE_INFORMATION_MAX = 50
# Documented (InvalidInstanceId): "Valid states are: Running, Pending, Stopped, and Stopping."
SSM_VALID_INSTANCE_STATES = frozenset({"pending", "running", "stopping", "stopped"})
# Documented (DescribeInstanceInformation): "does not return information for nodes that are either Stopped or
# Terminated"; pending/running are listed.
SSM_LISTED_INSTANCE_STATES = frozenset({"pending", "running"})
SSM_DELIVERY_STATES = frozenset({"stopping", "stopped"})
# Assumed where AWS names no value (settable on the MotoFidelity): the Status accompanying the StatusDetails
# Undeliverable, Incomplete and NoInstancesInTag (the Status enums have no such values), the ResponseCode of an
# execution timeout, the agent version DescribeInstanceInformation reports.
DEFAULT_SSM_UNDELIVERABLE_STATUS = "Failed"
DEFAULT_SSM_INCOMPLETE_STATUS = "Failed"
DEFAULT_SSM_NO_INSTANCES_STATUS = "Failed"
DEFAULT_SSM_EXECUTION_TIMEOUT_CODE = -1
DEFAULT_SSM_AGENT_VERSION = "3.3.1142.0"
# E45: the Status of a Terminated invocation is not documented (the Status enum has no Terminated; StatusDetails
# carries it): "subsequent command invocations were canceled by the system" reads as Cancelled (assumed, settable).
DEFAULT_SSM_TERMINATED_STATUS = "Cancelled"
SSM_TERMINAL_DETAILS = frozenset(SSM_OUTCOMES) | {"Cancelled", "Terminated"}
SSM_ERROR_DETAILS = frozenset({"Failed", "ExecutionTimedOut"})  # count against MaxErrors (API_CommandInvocation)
SSM_DEFAULT_MAX_CONCURRENCY = "50"  # SendCommand MaxConcurrency: "The default value is 50."
# E42: the AWS-owned documents moto lacks, with their parameters (name -> required). AWS-RunShellScript's content as
# AWS publishes it ("Use GetDocument with a CLI", aws ssm get-document --name "AWS-RunShellScript": DocumentVersion "1",
# parameters commands (StringList, "(Required)", no default), workingDirectory (default ""), executionTimeout (default
# "3600"), https://docs.aws.amazon.com/systems-manager/latest/userguide/example_ssm_GetDocument_section.html).
# AWS-RunPowerShellScript is assumed to declare the same three (its content is not in the pages read).
SSM_AWS_DOCUMENTS: dict[str, dict[str, bool]] = {
    "AWS-RunShellScript": {"commands": True, "workingDirectory": False, "executionTimeout": False},
    "AWS-RunPowerShellScript": {"commands": True, "workingDirectory": False, "executionTimeout": False},
}
SSM_AWS_DOCUMENT_VERSIONS = frozenset({"$DEFAULT", "$LATEST", "1"})
# E52: the detail-types SSM sends directly to EventBridge ("Amazon EC2 Systems Manager events",
# https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-ssm.html).
SSM_COMMAND_EVENT = "EC2 Command Status-change Notification"
SSM_INVOCATION_EVENT = "EC2 Command Invocation Status-change Notification"
# E52: which `status` values SSM emits is not documented (the UG's table is rendered only on the website; AWS publishes
# Success examples only); the terminal Status values are emitted by default (settable `ssm_event_statuses`).
DEFAULT_SSM_EVENT_STATUSES = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
_SSM_FAR = datetime.max.replace(tzinfo=UTC)


@dataclass
class _SsmOutcome:
    """How an instance's invocations end (E43, `ssm_outcome`): the StatusDetails, exit code, run time, output."""

    status: str = "Success"
    exit_code: int = 0
    after: timedelta = timedelta(0)
    stdout: str = ""
    stderr: str = ""


@dataclass
class _SsmNode:
    """A managed node's registry entry (E41, E49); an instance without one is a managed node whose agent is online."""

    managed: bool = True
    lost_at: datetime | None = None  # PingStatus ConnectionLost since (lose_agent)


@dataclass
class _SsmInvocation:
    """One (command, instance) of a SendCommand (E43); its status is computed from the fidelity clock when read."""

    command_id: str
    instance_id: str
    document_name: str
    plugin: str
    requested: datetime
    expires: datetime
    execution_timeout: timedelta
    delivery_time: timedelta
    outcome: _SsmOutcome
    delayed: bool  # the instance was stopped (or stopping) at SendCommand
    agent_lost: bool = False  # its agent had lost the connection at SendCommand (lose_agent)
    sent_at: datetime | None = None  # E45: when its concurrency batch sent it (None: at the request)
    terminated_at: datetime | None = None  # E45: never sent, Terminated at this moment (MaxErrors exceeded)
    cancelled_at: datetime | None = None  # E51: CancelCommand
    output_written: bool = False  # E50: its output was uploaded (or the upload failed)


@dataclass
class _SsmState:
    status: str
    details: str
    code: int
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.details in SSM_TERMINAL_DETAILS


def _ssm_plugin(document_name: str | None) -> str:
    """The plugin of the AWS-owned shell documents ("aws:runPowerShellScript" for AWS-RunPowerShellScript); any other
    document is assumed to run one `aws:runShellScript` step, as moto has it."""
    return "aws:runPowerShellScript" if document_name == "AWS-RunPowerShellScript" else "aws:runShellScript"


def _ssm_iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ssm_duration(start: datetime | None, end: datetime | None) -> str:
    return "" if start is None or end is None else f"PT{(end - start).total_seconds():.3f}S"


def _ssm_concurrency(max_concurrency: str | None, targets: int) -> int:
    """E45: MaxConcurrency as a number of nodes: "n", or "p%" of the targets rounded down but at least 1 (the rounding
    is assumed; AWS documents none)."""
    text = (max_concurrency or SSM_DEFAULT_MAX_CONCURRENCY).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return max(1, targets * int(text[:-1]) // 100)
    return max(1, int(text)) if text.isdigit() else int(SSM_DEFAULT_MAX_CONCURRENCY)


def _ssm_output_key(prefix: str | None, command_id: str, instance_id: str, plugin: str, stream: str) -> str:
    """E50: the S3 key of an invocation's output. UNVERIFIED: the API Reference shows only
    "amzn-s3-demo-bucket/my-prefix/i-02573cafcfEXAMPLE/awsrunShellScript" (CommandPlugin OutputS3KeyPrefix); the
    command id level and `0.awsrunShellScript/stdout` are the commonly observed form (`0.aws:runShellScript` is the
    step id of AWS-RunShellScript's content). Tests and the module must read StandardOutputUrl, never build keys."""
    folder = plugin.replace(":", "")
    parts = [prefix.strip("/")] if prefix and prefix.strip("/") else []
    return "/".join([*parts, command_id, instance_id, folder, f"0.{folder}", stream])


def _ssm_allowed_errors(max_errors: str | None, targets: int) -> int:
    """MaxErrors as a number of errors: "n", or "p%" of the targets rounded down (the UG's 50 x 10% example: "the
    system stops sending the command to additional instances when the sixth error is received")."""
    text = (max_errors or "0").strip()
    if text.endswith("%") and text[:-1].isdigit():
        return targets * int(text[:-1]) // 100
    return int(text) if text.isdigit() else 0


def _ssm_execution_timeout(parameters: dict[str, Any] | None) -> timedelta:
    value = (parameters or {}).get("executionTimeout")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return timedelta(seconds=int(str(value))) if value is not None else SSM_DEFAULT_EXECUTION_TIMEOUT
    except ValueError:
        return SSM_DEFAULT_EXECUTION_TIMEOUT


def _ssm_error(code: str, message: str) -> Exception:
    return SSMException(code, message)


def _ssm_ec2_instance(account_id: str, region: str, instance_id: str) -> Instance | None:
    backend = ec2_backends[account_id][region]
    try:
        return backend.get_instance(instance_id)  # type: ignore[no-any-return]
    except EC2ClientError:
        return None


class _SsmMixin:
    """The SSM part of `MotoFidelity` (E40-E49): state, hooks, and the invocation timeline."""

    clock: Clock | None

    def now(self) -> datetime:  # pragma: no cover - MotoFidelity's
        raise NotImplementedError

    def _ssm_init(self) -> None:
        self.ssm_nodes: dict[str, _SsmNode] = {}
        self.ssm_outcomes: dict[str, _SsmOutcome] = {}
        self.ssm_invocations: dict[str, list[_SsmInvocation]] = {}  # command id -> invocations, in target order
        # Assumed (AWS documents no figure): Pending -> InProgress, InProgress -> end; 0 keeps moto's immediate end.
        self.ssm_delivery_time = timedelta(0)
        self.ssm_run_time = timedelta(0)
        self.ssm_undeliverable_status = DEFAULT_SSM_UNDELIVERABLE_STATUS
        self.ssm_incomplete_status = DEFAULT_SSM_INCOMPLETE_STATUS
        self.ssm_no_instances_status = DEFAULT_SSM_NO_INSTANCES_STATUS
        self.ssm_execution_timeout_code = DEFAULT_SSM_EXECUTION_TIMEOUT_CODE
        self.ssm_agent_version = DEFAULT_SSM_AGENT_VERSION
        # E40 assumption: stopped managed nodes carrying the tag are targets (AWS's "Delayed ... because the node
        # was stopped" implies it).
        self.ssm_tag_targets_stopped = True
        self.ssm_terminated_status = DEFAULT_SSM_TERMINATED_STATUS  # E45 (assumed)
        self.ssm_commands: dict[str, Command] = {}  # command id -> moto's command (E50, E52)
        self.ssm_denied_output: set[str] = set()  # E50: instances whose role may not write the output
        self.ssm_cancelled_commands: set[str] = set()  # E51: commands cancelled as a whole
        self.ssm_aws_documents = copy.deepcopy(SSM_AWS_DOCUMENTS)  # E42
        self.ssm_event_statuses = set(DEFAULT_SSM_EVENT_STATUSES)  # E52 (assumed)
        self.ssm_drained_events: set[str] = set()  # E52: ids ssm_drain_events already handed out

    def _ssm_forget(self) -> None:
        self.ssm_nodes.clear()
        self.ssm_outcomes.clear()
        self.ssm_invocations.clear()
        self.ssm_commands.clear()
        self.ssm_denied_output.clear()
        self.ssm_cancelled_commands.clear()
        self.ssm_drained_events.clear()

    # -- hooks -----------------------------------------------------------------------------------------------

    def unmanage(self, instance_id: str) -> None:
        """E41, E49: the instance is no managed node (no SSM Agent, not registered, or no instance profile)."""
        self.ssm_nodes[instance_id] = _SsmNode(managed=False)

    def manage(self, instance_id: str) -> None:
        """E41, E49: the instance is a managed node again, its agent online (the default for every instance)."""
        self.ssm_nodes[instance_id] = _SsmNode()

    def lose_agent(self, instance_id: str) -> None:
        """E49 (and E43): the node stays registered, PingStatus `ConnectionLost` from now; commands sent to it stay
        InProgress, then DeliveryTimedOut at the total timeout."""
        self.ssm_nodes[instance_id] = _SsmNode(managed=True, lost_at=self.now())

    def restore_agent(self, instance_id: str) -> None:
        self.manage(instance_id)

    def ssm_outcome(
        self,
        instance_id: str,
        status: str | None,
        exit_code: int = 0,
        after: timedelta = timedelta(0),
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        """E43: how the invocations of `instance_id` in the commands sent from now on end: `status` one of
        Success, Failed (with a non-zero `exit_code`), ExecutionTimedOut (at the document's executionTimeout),
        DeliveryTimedOut (at the total timeout), Undeliverable; `after` is the run time once delivered (for
        Undeliverable: the time until it is given up). None goes back to the default (Success after
        `ssm_run_time`)."""
        if status is None:
            self.ssm_outcomes.pop(instance_id, None)
            return
        if status not in SSM_OUTCOMES:
            raise ValueError(f"unknown outcome {status!r}; one of {SSM_OUTCOMES}")
        if (status == "Failed") != (exit_code != 0):
            raise ValueError("a Failed outcome needs a non-zero exit code, and only a Failed one has one")
        self.ssm_outcomes[instance_id] = _SsmOutcome(status, exit_code, after, stdout, stderr)

    def deny_instance_output(self, instance_id: str, denied: bool = True) -> None:
        """E50: the instance's role may not write to the output bucket: its invocations end as planned and their
        output objects are missing (the agent writes the output with the instance's credentials; what the invocation
        shows then is not documented - assumed unchanged)."""
        if denied:
            self.ssm_denied_output.add(instance_id)
        else:
            self.ssm_denied_output.discard(instance_id)

    # -- model -----------------------------------------------------------------------------------------------

    def ssm_node(self, instance_id: str) -> _SsmNode:
        return self.ssm_nodes.get(instance_id) or _SsmNode()

    def ssm_state(self, record: _SsmInvocation, at: datetime | None = None) -> _SsmState:
        """E43 (E45, E51): the invocation's state at `at` (default: the fidelity clock). A CancelCommand (E51) ends an
        invocation not terminal at that moment as Cancelled/Cancelled (-1 unless it had started: the ResponseCode
        of a cancelled run is not documented, -1 assumed)."""
        now = self.now() if at is None else at
        if record.cancelled_at is not None and now >= record.cancelled_at:
            before = self._ssm_timeline(record, record.cancelled_at)
            if not before.terminal:
                return _SsmState("Cancelled", "Cancelled", SSM_NOT_STARTED_CODE, before.started, record.cancelled_at)
        return self._ssm_timeline(record, now)

    def _ssm_timeline(self, record: _SsmInvocation, now: datetime) -> _SsmState:
        """E43. An invocation's Status / StatusDetails / ResponseCode (and start, end) at the fidelity clock.

        "Understanding command statuses" (Detailed status for command plugins and invocations): Pending "The command
        hasn't yet been sent to the instance or hasn't been received by SSM Agent. If the command isn't received by the
        agent before the length of time passes that's equal to the sum of the Timeout (seconds) parameter and the
        Execution timeout parameter, the status changes to Delivery Timed Out."; In Progress "... Exception: If the
        agent isn't running or available on the instance, the command status remains at In Progress until the agent
        is available again, or until the execution timeout limit is reached."; Delayed "The system attempted to send
        the command to the instance but wasn't successful. The system retries again."; Success "... returned an exit
        code of zero"; Failed "For a command invocation, this indicates that the result code for one or more plugins
        wasn't zero."; Execution Timed Out "Command execution started on the instance, but the execution wasn't
        complete before the execution timeout expired."; Undeliverable "The command can't be delivered to the
        instance. The instance might not exist or it might not be responding."; and "If a command reaches the command
        expiration limit (total timeout), it changes status to DeliveryTimedOut for all invocations that are currently
        have status of InProgress, Pending or Delayed.",
        https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html (awsdocs
        doc_source/monitor-commands.md @ 03c7112c); "GetCommandInvocation", ResponseCode "If the response code is -1,
        then the command hasn't started running on the managed node, or it wasn't received by the node.",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html - moto: Success
        with ResponseCode 0 at once.

        Here: Pending (-1) until delivered (`ssm_delivery_time` after the request); InProgress (-1) for the run time
        (`after` of `ssm_outcome`, else `ssm_run_time`), then as planned: Success (0), Failed (the exit code);
        ExecutionTimedOut at delivery + the document's executionTimeout (also a planned run longer than it);
        Undeliverable given up `after` the delivery; a node whose agent was lost stays InProgress. Whatever is not
        terminal at ExpiresAfter (the total timeout) is DeliveryTimedOut (-1). Assumed (AWS documents no figure or
        value, all settable): both durations (default 0: immediate, as moto); an instance stopped or stopping at
        SendCommand is Delayed until the total timeout (its start later is not followed); the ResponseCode of an
        execution timeout (`ssm_execution_timeout_code`, -1); the Status with Undeliverable
        (`ssm_undeliverable_status`, Failed - the Status enum has no Undeliverable); StatusDetails in the CommandFilter
        spellings (`InProgress`, `DeliveryTimedOut`, `ExecutionTimedOut`).

        E45: an invocation is Pending until its concurrency batch sends it (`sent_at`); one never sent because
        MaxErrors was exceeded is Terminated (`ssm_terminated_status`, -1) from that moment."""
        if record.terminated_at is not None:
            if now >= record.terminated_at:
                status = self.ssm_terminated_status
                return _SsmState(status, "Terminated", SSM_NOT_STARTED_CODE, None, record.terminated_at)
            return _SsmState("Pending", "Pending", SSM_NOT_STARTED_CODE)
        outcome = record.outcome
        delivered = (record.sent_at or record.requested) + record.delivery_time
        expired = _SsmState("TimedOut", "DeliveryTimedOut", SSM_NOT_STARTED_CODE, None, record.expires)
        if now < delivered:
            return expired if now >= record.expires else _SsmState("Pending", "Pending", SSM_NOT_STARTED_CODE)
        if record.delayed or record.agent_lost or outcome.status == "DeliveryTimedOut":
            if now >= record.expires:
                return expired
            if record.delayed:
                return _SsmState("Delayed", "Delayed", SSM_NOT_STARTED_CODE)
            return _SsmState("InProgress", "InProgress", SSM_NOT_STARTED_CODE)
        if outcome.status == "Undeliverable":
            given_up = delivered + outcome.after
            if now >= given_up and given_up < record.expires:
                status = self.ssm_undeliverable_status
                return _SsmState(status, "Undeliverable", SSM_NOT_STARTED_CODE, None, given_up)
            return expired if now >= record.expires else _SsmState("Pending", "Pending", SSM_NOT_STARTED_CODE)
        timed_out = outcome.status == "ExecutionTimedOut" or outcome.after >= record.execution_timeout
        end = delivered + (record.execution_timeout if timed_out else outcome.after)
        if now < end:
            if now >= record.expires:
                return _SsmState("TimedOut", "DeliveryTimedOut", SSM_NOT_STARTED_CODE, delivered, record.expires)
            return _SsmState("InProgress", "InProgress", SSM_NOT_STARTED_CODE, delivered)
        if end > record.expires:
            return _SsmState("TimedOut", "DeliveryTimedOut", SSM_NOT_STARTED_CODE, delivered, record.expires)
        if timed_out:
            return _SsmState("TimedOut", "ExecutionTimedOut", self.ssm_execution_timeout_code, delivered, end)
        if outcome.status == "Failed":
            return _SsmState("Failed", "Failed", outcome.exit_code, delivered, end)
        return _SsmState("Success", "Success", 0, delivered, end)

    def ssm_command_summary(
        self, command_id: str, max_errors: str | None, at: datetime | None = None
    ) -> dict[str, Any]:
        """E44: the command's Status, StatusDetails and counts from its invocations at `at` (default: the fidelity
        clock). E51: a command cancelled as a whole is Cancelled once its invocations are terminal."""
        states = [self.ssm_state(record, at) for record in self.ssm_invocations[command_id]]
        details = [state.details for state in states]
        target = len(states)
        completed = sum(state.terminal for state in states)
        failed = details.count("Failed")
        errors = failed + details.count("ExecutionTimedOut")
        delivery_timed_out = details.count("DeliveryTimedOut")
        allowed = _ssm_allowed_errors(max_errors, target)
        if target == 0:
            status, detail = self.ssm_no_instances_status, "NoInstancesInTag"
        elif completed < target:
            status = detail = "Pending" if all(d == "Pending" for d in details) else "InProgress"
        elif command_id in self.ssm_cancelled_commands and "Cancelled" in details:
            status, detail = "Cancelled", "Cancelled"
        elif errors > allowed:
            status, detail = ("Failed", "Failed") if failed > allowed else ("TimedOut", "ExecutionTimedOut")
        elif delivery_timed_out > allowed:
            status, detail = "TimedOut", "DeliveryTimedOut"
        elif all(d == "Undeliverable" for d in details):
            status, detail = "Failed", "Failed"
        elif all(d in ("Success", "Undeliverable") for d in details):
            status, detail = "Success", "Success"
        else:
            status, detail = self.ssm_incomplete_status, "Incomplete"
        return {
            "Status": status,
            "StatusDetails": detail,
            "TargetCount": target,
            "CompletedCount": completed,
            "ErrorCount": errors,
            "DeliveryTimedOutCount": delivery_timed_out,
        }

    def ssm_schedule(self, records: list[_SsmInvocation], max_concurrency: str | None, max_errors: str | None) -> None:
        """E45. When each invocation is sent (`sent_at`), and which are never sent (`terminated_at`).

        "Run commands at scale", Using concurrency controls: "You can control the number of managed nodes that run a
        command simultaneously by using the max-concurrency parameter ... You can specify either an absolute number of
        managed nodes, for example 10, or a percentage of the target set, for example 10%. The queueing system delivers
        the command to a single node and waits until the system acknowledges the initial invocation before sending the
        command to two more nodes. The system exponentially sends commands to more nodes until the system meets the
        value of max-concurrency."; Using error controls: "If you specify 3, for example, the system stops sending the
        command when the fourth error is received. If you specify 0, then the system stops sending the command to
        additional targets after the first error result is returned. If you send a command to 50 managed nodes and set
        max-errors to 10%, then the system stops sending the command to additional nodes when the sixth error is
        received. Invocations that are already running a command when max-errors is reached are allowed to complete,
        but some of these invocations might fail as well.",
        https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html (awsdocs
        doc_source/send-commands-multiple.md, the 2023 text); "SendCommand" MaxErrors "When the command fails one more
        time beyond the value of MaxErrors, the systems stops sending the command to additional targets.";
        "CommandInvocation" StatusDetails "Terminated: The parent command exceeded its MaxErrors limit and subsequent
        command invocations were canceled by the system." and "Invocation failures count against the MaxErrors limit"
        (Failed, Execution Timed Out; Delivery Timed Out and Undeliverable don't),
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandInvocation.html - moto stores both
        values and ignores them.

        Here, in target order: batches of 1, 2, 4, ... (at most MaxConcurrency each); a batch is sent once every
        invocation of the previous one is acknowledged (left Pending: InProgress or Delayed, or given up as
        Undeliverable - assumed), and never while MaxConcurrency invocations are sent and not terminal. Once the errors
        (Failed, ExecutionTimedOut) exceed MaxErrors (a percentage of the targets rounded down), every invocation not
        sent by that moment is Terminated at that moment (one due at the same instant too); those sent run on.
        Assumed: percentages of MaxConcurrency round down (at least 1); the ramp's batches keep doubling after the
        limit is met, so a freed slot is refilled at once. With the default durations (0) every batch goes at the
        request time, as before; only MaxErrors is then visible."""
        count = len(records)
        cap = _ssm_concurrency(max_concurrency, count)
        allowed = _ssm_allowed_errors(max_errors, count)
        sent: list[tuple[datetime, datetime]] = []  # (sent, terminal) of each invocation sent
        errors: list[datetime] = []
        stop_at: datetime | None = None
        batch_size, in_batch = 1, 0
        acknowledged: list[datetime] = []
        ready = last = records[0].requested if records else _SSM_FAR
        for record in records:
            if in_batch == batch_size:
                ready = max(acknowledged)
                batch_size, in_batch, acknowledged = min(batch_size * 2, cap), 0, []
            moment = max(ready, last)
            while True:
                running = [end for start, end in sent if start <= moment < end]
                if len(running) < cap:
                    break
                moment = min(running)
            if stop_at is not None and moment >= stop_at:
                record.terminated_at = stop_at
                continue
            record.sent_at = last = moment
            final = self._ssm_timeline(record, _SSM_FAR)
            end = final.ended or record.expires
            sent.append((moment, end))
            delivered = moment + record.delivery_time
            if record.outcome.status == "Undeliverable":
                delivered += record.outcome.after
            acknowledged.append(min(delivered, record.expires))
            in_batch += 1
            if final.details in SSM_ERROR_DETAILS:
                errors.append(end)
                errors.sort()
                if len(errors) > allowed:
                    stop_at = errors[allowed]

    def ssm_settle(self) -> None:
        """E50: upload the output of every invocation that has run to its end by now (called by every patched SSM
        read, and by `ssm_events`; a test reading S3 right after moving the clock reads an SSM answer first)."""
        for command_id, records in self.ssm_invocations.items():
            command = self.ssm_commands.get(command_id)
            bucket = command.output_s3_bucket_name if command is not None else ""
            if command is None or not bucket:
                continue
            for record in records:
                if record.output_written:
                    continue
                state = self.ssm_state(record)
                if not state.terminal:
                    continue
                record.output_written = True
                ran = state.started is not None and state.details in ("Success", "Failed", "ExecutionTimedOut")
                owner = s3_backends.bucket_accounts.get(bucket)
                if not ran or record.instance_id in self.ssm_denied_output or owner is None:
                    continue  # nothing ran, the role may not write, or the bucket is gone: no object (assumed)
                partition, account = owner
                backend = s3_backends[account][partition]
                streams = [("stdout", record.outcome.stdout), ("stderr", record.outcome.stderr)]
                for stream, text in streams:
                    if stream == "stdout" or text:
                        key = _ssm_output_key(
                            command.output_s3_key_prefix, command_id, record.instance_id, record.plugin, stream
                        )
                        backend.put_object(bucket, key, text.encode())

    def ssm_output_urls(self, command: Command, record: _SsmInvocation) -> tuple[str, str]:
        """E50: StandardOutputUrl and StandardErrorUrl ("If an S3 bucket wasn't specified, then this string is
        empty.", API_GetCommandInvocation). The URL form `https://s3.<region>.amazonaws.com/<bucket>/<key>` and the
        key layout are assumed (unverified): read them, never build them."""
        bucket = command.output_s3_bucket_name
        if not bucket:
            return "", ""
        base = f"https://s3.{command.backend_region}.amazonaws.com/{bucket}/"
        return tuple(  # type: ignore[return-value]
            base
            + _ssm_output_key(command.output_s3_key_prefix, command.command_id, record.instance_id, record.plugin, s)
            for s in ("stdout", "stderr")
        )

    def _ssm_moments(self, record: _SsmInvocation) -> list[datetime]:
        start = record.sent_at or record.requested
        final = self.ssm_state(record, _SSM_FAR)
        moments = {record.requested, start, start + record.delivery_time, record.expires}
        moments |= {m for m in (final.started, final.ended, record.terminated_at, record.cancelled_at) if m is not None}
        return sorted(moments)

    def ssm_events(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """E52. The EventBridge events SSM would have sent for every Status change of the commands and invocations up
        to the fidelity clock (after `since` when given), oldest first, shaped as AWS's examples.

        "Amazon EC2 Systems Manager events": "SSM sends the following events directly to EventBridge: EC2 Command
        Status-change Notification, EC2 Command Invocation Status-change Notification",
        https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-ssm.html; the examples (source `aws.ssm`;
        command detail `command-id`, `document-name`, `expire-after`, `parameters`, `requested-date-time`, `status`,
        resources the target instance ARNs; invocation detail `command-id`, `document-name`, `instance-id`,
        `requested-date-time`, `status`, resources the instance ARN) in "Amazon EventBridge event examples for Systems
        Manager", https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html
        (copied in shared/events/ssm-*.json); "Events are produced on a best effort basis.",
        https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-eventbridge-events.html - moto emits
        none. `status` is the Status value (the examples' `Success`), at the moment of the change (`time`, whole
        seconds as in the examples). Which values are emitted is not documented: only `ssm_event_statuses` (default
        the terminal Success, Failed, TimedOut, Cancelled; a test may add Pending, InProgress, Delayed). Ids are
        stable (the same change gives the same id). Dropping events (best effort) is the caller's choice."""
        self.ssm_settle()
        now = self.now()
        found: list[tuple[datetime, int, dict[str, Any]]] = []
        for command_id, records in self.ssm_invocations.items():
            command = self.ssm_commands.get(command_id)
            if command is None:
                continue
            event = functools.partial(_ssm_event, command.account_id, command.backend_region)
            region, account = command.backend_region, command.account_id
            requested = _ssm_iso(command.requested_date_time)
            moments: set[datetime] = {command.requested_date_time}
            for record in records:
                arn = f"arn:aws:ec2:{region}:{account}:instance/{record.instance_id}"
                previous = None
                for moment in self._ssm_moments(record):
                    moments.add(moment)
                    if moment > now:
                        break
                    status = self.ssm_state(record, moment).status
                    if status != previous and status in self.ssm_event_statuses:
                        detail: dict[str, Any] = {
                            "command-id": command_id,
                            "document-name": command.document_name,
                            "instance-id": record.instance_id,
                            "requested-date-time": requested,
                            "status": status,
                        }
                        found.append((moment, 0, event(SSM_INVOCATION_EVENT, moment, [arn], detail)))
                    previous = status
            targets = [f"arn:aws:ec2:{region}:{account}:instance/{r.instance_id}" for r in records]
            previous = None
            for moment in sorted(m for m in moments if m <= now):
                status = self.ssm_command_summary(command_id, command.max_errors, moment)["Status"]
                if status != previous and status in self.ssm_event_statuses:
                    detail = {
                        "command-id": command_id,
                        "document-name": command.document_name,
                        "expire-after": _ssm_iso(command.expires_after),
                        "parameters": command.parameters or {},
                        "requested-date-time": requested,
                        "status": status,
                    }
                    found.append((moment, 1, event(SSM_COMMAND_EVENT, moment, targets, detail)))
                previous = status
        found.sort(key=lambda item: (item[0], item[1]))
        return [entry for moment, _kind, entry in found if since is None or moment > since]

    def ssm_drain_events(self) -> list[dict[str, Any]]:
        """E52: the events of `ssm_events()` not handed out by an earlier call (for an emitter's announce loop)."""
        fresh = [e for e in self.ssm_events() if e["id"] not in self.ssm_drained_events]
        self.ssm_drained_events.update(e["id"] for e in fresh)
        return fresh

    def ssm_next_change(self) -> datetime | None:
        """E52: the next moment after the fidelity clock at which an invocation's state changes (None: nothing under
        way), for a drain loop that advances simulated time to it (as E33's `instance_transitions`)."""
        now = self.now()
        upcoming = []
        for records in self.ssm_invocations.values():
            for record in records:
                current = self.ssm_state(record, now).details
                for moment in self._ssm_moments(record):
                    if moment > now and self.ssm_state(record, moment).details != current:
                        upcoming.append(moment)
                        break
        return min(upcoming) if upcoming else None

    def ssm_cancel(self, command_id: str, instance_ids: list[str] | None = None) -> None:
        """E51: what CancelCommand does: every invocation of the command (or of the instances given) not terminal now
        is Cancelled now."""
        now = self.now()
        for record in self.ssm_invocations.get(command_id, []):
            if instance_ids and record.instance_id not in instance_ids:
                continue
            if not self.ssm_state(record, now).terminal and record.cancelled_at is None:
                record.cancelled_at = now
        if not instance_ids:
            self.ssm_cancelled_commands.add(command_id)

    def ssm_targets(
        self, account_id: str, region: str, instance_ids: list[str], targets: list[dict[str, Any]]
    ) -> list[str]:
        """E40, E41: the instances a SendCommand runs on, or the `InvalidInstanceId` that refuses it."""
        given: list[str] = []
        tag_targets: list[dict[str, Any]] = []
        for target in targets or []:
            key = str(target.get("Key", ""))
            if key == "InstanceIds":
                given.extend(target.get("Values") or [])
            elif key.startswith("tag:") or key == "tag-key":
                tag_targets.append(target)
            else:
                raise _ssm_error(
                    "ValidationException",
                    f"Target key {key!r} is not modelled by the moto fidelity (InstanceIds, tag:<key>, tag-key are)",
                )
        given = list(dict.fromkeys([*(instance_ids or []), *given]))
        invalid = [instance_id for instance_id in given if not self._ssm_valid_target(account_id, region, instance_id)]
        if invalid:
            raise _ssm_error(
                "InvalidInstanceId",
                f"Instances [[{', '.join(invalid)}]] not in a valid state for account {account_id}",
            )
        chosen = list(given)
        if tag_targets:
            backend = ec2_backends[account_id][region]
            for instance in backend.all_instances():
                if instance.id in chosen or not self._ssm_valid_target(account_id, region, instance.id):
                    continue
                if instance.state in SSM_DELIVERY_STATES and not self.ssm_tag_targets_stopped:
                    continue
                tags = backend.tags.get(instance.id, {})
                if all(_ssm_tag_match(tags, target) for target in tag_targets):
                    chosen.append(instance.id)
        return chosen

    def _ssm_valid_target(self, account_id: str, region: str, instance_id: str) -> bool:
        instance = _ssm_ec2_instance(account_id, region, instance_id)
        return (
            instance is not None and instance.state in SSM_VALID_INSTANCE_STATES and self.ssm_node(instance_id).managed
        )


def _ssm_tag_match(tags: dict[str, str], target: dict[str, Any]) -> bool:
    """E40: `tag:K` matches an instance whose tag K has one of the values; `tag-key` one that has one of the keys."""
    key = str(target["Key"])
    values = list(target.get("Values") or [])
    if key == "tag-key":
        return any(value in tags for value in values)
    name = key[len("tag:") :]
    return name in tags and tags[name] in values


def _ssm_event(
    account: str, region: str, kind: str, moment: datetime, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    """E52: one event as SSM sends it to EventBridge (the shape of AWS's examples); the id is stable per change."""
    key = f"{kind}/{detail['command-id']}/{detail.get('instance-id', '')}/{detail['status']}/{moment}"
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
        "detail-type": kind,
        "source": "aws.ssm",
        "account": account,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


class MotoFidelity(_SsmMixin):
    """State of the patches, and the helpers tests use to set up AWS situations moto cannot reach by itself.

    The helper API of the former `tests/python/moto_aws_fidelity.MotoFidelity` is kept: `backend`,
    `set_image_state`, `share_snapshot`, `snapshot_of`, `snapshots_mapped_by`, `fail_create_image`,
    `create_image_attempts`, `clock`. For EBS snapshots: `set_snapshot_state`, `lock_snapshot`, `unlock_snapshot`,
    `archive_snapshot`, `fail_create_snapshot`, `create_snapshot_attempts`. For the Recycle Bin: `recycle_image`,
    `purge_recycled_image`. For copies: `fail_copy_snapshot`, `copy_snapshot_attempts`, `end_copy_in_error`,
    `deny_kms_key`, `encrypt_with_aws_managed_key`, `aws_managed_ebs_key`. For SSM Run Command: `unmanage`, `manage`,
    `lose_agent`, `restore_agent`, `ssm_outcome`, `ssm_node`, `ssm_state`, `deny_instance_output`, `ssm_settle`,
    `ssm_events`, `ssm_drain_events`, `ssm_next_change`, `ssm_cancel` (and the module's `ssm_event_entries`)."""

    def __init__(
        self,
        clock: Clock | None = None,
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        snapshot_in_use_window: timedelta = DEFAULT_SNAPSHOT_IN_USE_WINDOW,
        deregistered_listed_window: timedelta = DEFAULT_DEREGISTERED_LISTED_WINDOW,
        snapshot_completion_time: timedelta = DEFAULT_SNAPSHOT_COMPLETION_TIME,
        snapshot_copy_time: timedelta = DEFAULT_SNAPSHOT_COPY_TIME,
        image_copy_time: timedelta = DEFAULT_IMAGE_COPY_TIME,
        instance_start_time: timedelta = DEFAULT_INSTANCE_START_TIME,
        instance_stop_time: timedelta = DEFAULT_INSTANCE_STOP_TIME,
        instance_launch_time: timedelta = DEFAULT_INSTANCE_LAUNCH_TIME,
        status_check_time: timedelta = DEFAULT_STATUS_CHECK_TIME,
        volume_creation_time: timedelta = DEFAULT_VOLUME_CREATION_TIME,
    ) -> None:
        self.clock = clock
        self.sqs_clock: Clock | None = None
        self.iam = IamFidelity()  # I1, I2
        self.accounts = AccountFidelity(self.now)  # E53-E55
        self.account_id = account_id
        self.snapshot_in_use_window = snapshot_in_use_window
        self.deregistered_listed_window = deregistered_listed_window
        self.snapshot_completion_time = snapshot_completion_time
        self.snapshot_rate_interval = SNAPSHOT_RATE_INTERVAL
        self.locked_snapshot_error = DEFAULT_LOCKED_SNAPSHOT_ERROR
        self.extra_snapshots: dict[str, list[str]] = {}
        self.create_image_faults: dict[str, str] = {}
        self.create_image_attempts: list[str] = []
        self.denied_snapshot_deletions: set[str] = set()
        # (account, region) -> image id -> what was deregistered, when.
        self.deregistrations: dict[tuple[str, str], dict[str, _Deregistration]] = {}
        # EBS snapshots, by snapshot id (ids are unique across accounts and regions).
        self.snapshot_records: dict[str, _SnapshotRecord] = {}
        self.snapshot_pins: dict[str, _Pin] = {}
        self.snapshot_locks: dict[str, _Lock] = {}
        self.create_snapshot_faults: dict[str, str] = {}
        self.create_snapshot_attempts: list[str] = []
        # E19: AWS publishes no form of the CreateImage snapshot description; both are observed (assumed: without).
        self.create_image_description_with_volume = False
        # (account, region) -> image id -> the AMI in the emulated Recycle Bin (E22).
        self.recycle_bin: dict[tuple[str, str], dict[str, _Recycled]] = {}
        # Copies (E25-E32): durations (assumed), the documented limit, the assumed codes and message.
        self.snapshot_copy_time = snapshot_copy_time
        self.image_copy_time = image_copy_time
        self.concurrent_snapshot_copies = CONCURRENT_SNAPSHOT_COPIES_PER_REGION
        self.incomplete_source_error = DEFAULT_INCOMPLETE_SOURCE_ERROR
        self.managed_key_share_error = DEFAULT_MANAGED_KEY_SHARE_ERROR
        self.kms_denied_message = DEFAULT_KMS_DENIED_MESSAGE
        # E30: False - the copy is made and ends in `error` (AMI `failed`); True - the request fails at once.
        self.kms_denial_fails_request = False
        self.copy_records: dict[str, _CopyRecord] = {}  # snapshot id -> copy
        self.image_copy_records: dict[str, _CopyRecord] = {}  # image id -> copy
        self.copy_image_tokens: dict[tuple[str, str, str], tuple[tuple[Any, ...], str]] = {}
        self.copy_snapshot_faults: dict[str, str] = {}
        self.copy_snapshot_attempts: list[str] = []
        self.denied_kms_keys: set[str] = set()
        # RDS (E38, E39): the codes AWS does not document.
        self.rds_replica_source_error = DEFAULT_RDS_REPLICA_SOURCE_ERROR
        self.rds_cluster_refusal_error = DEFAULT_RDS_CLUSTER_REFUSAL_ERROR
        # Instances (E33, E35): how long pending and stopping last (assumed; 0 = moto's immediate end state).
        self.instance_start_time = instance_start_time
        self.instance_stop_time = instance_stop_time
        self.instance_transitions: dict[str, _Transition] = {}  # instance id -> its state change under way
        self.persistent_spot_instances: set[str] = set()  # E36: Spot Instances of a persistent request
        # Restore tests (E56-E60): durations (assumed; 0 = moto's immediate end state), assumed codes, state.
        self.instance_launch_time = instance_launch_time
        self.status_check_time = status_check_time
        self.volume_creation_time = volume_creation_time
        self.architecture_mismatch_error = DEFAULT_ARCHITECTURE_MISMATCH_ERROR
        self.creating_volume_delete_error = DEFAULT_CREATING_VOLUME_DELETE_ERROR
        # (account, Region, zone, token) -> (request, reservation id / volume)
        self.run_instances_tokens: dict[tuple[str, ...], tuple[Any, str]] = {}
        self.create_volume_tokens: dict[tuple[str, ...], tuple[Any, Volume]] = {}
        self.launched_at: dict[str, datetime] = {}  # instance id -> RunInstances
        self.running_since: dict[str, datetime] = {}  # instance id -> when it is (was) running: checks start
        self.impairments: dict[tuple[str, str], datetime] = {}  # (instance id, check) -> ImpairedSince
        self.volume_records: dict[str, _VolumeRecord] = {}
        self.failing_volume_snapshots: set[str] = set()
        self.run_instances_faults: list[_Fault] = []
        self.run_instances_attempts: list[str] = []
        self.create_volume_faults: list[_Fault] = []
        self.create_volume_attempts: list[str] = []
        self._ssm_init()  # SSM Run Command (E40-E49)

    def forget(self) -> None:
        """Drop what the patches remembered about resources (after moto's own reset); clocks stay."""
        self.extra_snapshots.clear()
        self.create_image_faults.clear()
        self.create_image_attempts.clear()
        self.denied_snapshot_deletions.clear()
        self.deregistrations.clear()
        self.snapshot_records.clear()
        self.snapshot_pins.clear()
        self.snapshot_locks.clear()
        self.create_snapshot_faults.clear()
        self.create_snapshot_attempts.clear()
        self.recycle_bin.clear()
        self.copy_records.clear()
        self.image_copy_records.clear()
        self.copy_image_tokens.clear()
        self.copy_snapshot_faults.clear()
        self.copy_snapshot_attempts.clear()
        self.denied_kms_keys.clear()
        self.instance_transitions.clear()
        self.persistent_spot_instances.clear()
        for remembered in (
            self.run_instances_tokens,
            self.create_volume_tokens,
            self.launched_at,
            self.running_since,
            self.impairments,
            self.volume_records,
            self.failing_volume_snapshots,
            self.run_instances_faults,
            self.run_instances_attempts,
            self.create_volume_faults,
            self.create_volume_attempts,
        ):
            remembered.clear()
        self._ssm_forget()
        self.iam.forget()
        self.accounts.forget()

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
        StopInstances/StartInstances jump straight to the end state (and, with E33's durations, pin it: a state change
        under way is cancelled)."""
        instance = self.backend(region).get_instance(instance_id)
        self.instance_transitions.pop(instance_id, None)
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

    # -- EBS snapshot helpers (setup and fault injection) ---------------------------------------------------

    def set_snapshot_state(self, region: str, snapshot_id: str, state: str, message: str = "") -> None:
        """E11: pin a snapshot's State (pending, completed, error, recoverable, recovering) from now on, in place of
        the completion on the fidelity clock; `message` is the StateMessage DescribeSnapshots shows (for `error`).
        As AWS documents for multi-volume sets, `error` on one snapshot of a CreateSnapshots set puts the set's
        other pending snapshots in error too. Works on any snapshot, those of CreateImage included."""
        if state not in SNAPSHOT_STATES:
            raise ValueError(f"unknown snapshot state {state!r}; one of {SNAPSHOT_STATES}")
        self.backend(region).get_snapshot(snapshot_id)  # InvalidSnapshot.NotFound: fail the test early
        now = self.now()
        self.snapshot_pins[snapshot_id] = _Pin(state, message, now)
        record = self.snapshot_records.get(snapshot_id)
        if state != ERROR or record is None or record.set_id is None:
            return
        for other_id, other in self.snapshot_records.items():
            if other.set_id == record.set_id and not other.deleted and self.snapshot_state(other_id) == PENDING:
                self.snapshot_pins[other_id] = _Pin(ERROR, message, now)

    def lock_snapshot(
        self, region: str, snapshot_id: str, mode: str = "governance", *, duration: timedelta | None = None
    ) -> None:
        """E15: lock a snapshot as LockSnapshot does (moto has no LockSnapshot). Only `pending` or `completed`
        snapshots can be locked. Without `duration` the lock holds until `unlock_snapshot` (governance) or for
        good (compliance); with one, it expires `duration` after the lock, or after the snapshot completes when
        it was locked while pending. Compliance cooling-off periods are not modelled (locked at once)."""
        if mode not in LOCK_MODES:
            raise ValueError(f"unknown lock mode {mode!r}; one of {LOCK_MODES}")
        state = self.backend(region).get_snapshot(snapshot_id).status  # E11: as DescribeSnapshots reports it
        if state not in (PENDING, COMPLETED):
            raise ValueError(f"only pending or completed snapshots can be locked; {snapshot_id} is {state}")
        self.snapshot_locks[snapshot_id] = _Lock(mode, self.now(), duration, locked_while_pending=state == PENDING)

    def unlock_snapshot(self, region: str, snapshot_id: str) -> None:
        """E15: UnlockSnapshot. A compliance lock cannot be unlocked (no cooling-off period is modelled)."""
        self.backend(region).get_snapshot(snapshot_id)
        lock = self.snapshot_locks.get(snapshot_id)
        if lock is not None and lock.mode == "compliance":
            raise ValueError(f"{snapshot_id} is locked in compliance mode and cannot be unlocked")
        self.snapshot_locks.pop(snapshot_id, None)

    def archive_snapshot(self, region: str, snapshot_id: str, *, at: datetime | None = None) -> None:
        """Move a snapshot to the archive tier, as ModifySnapshotTier(StorageTier=archive) does once the archive
        completes (moto's own ModifySnapshotTier, stamped on the fidelity clock). AWS archives only `completed`
        snapshots whose AMIs, if any, are all disabled; anything else fails the test here.

        E23: LastTieringStartTime and ArchivalCompleteTime (DescribeSnapshotTierStatus) are `at` - default now on
        the fidelity clock; an earlier moment backdates the archive (not before the snapshot's StartTime). AWS
        documents no archiving duration: start and completion are the same moment (assumed)."""
        backend = self.backend(region)
        snapshot = backend.get_snapshot(snapshot_id)
        if snapshot.status != COMPLETED:
            raise ValueError(f"only completed snapshots can be archived; {snapshot_id} is {snapshot.status}")
        enabled = [
            image_id
            for image_id in self.registered_users(backend, snapshot_id)
            if backend.amis[image_id].state != DISABLED
        ]
        if enabled:
            raise ValueError(f"{snapshot_id} is used by AMIs that are not disabled: {enabled}")
        moment = self.now() if at is None else _aware(at)
        if moment < _aware(snapshot.start_time):
            raise ValueError(f"{snapshot_id} started at {snapshot.start_time}; it cannot be archived at {moment}")
        backend.modify_snapshot_tier(snapshot_id, "archive")
        stamp = moment.replace(tzinfo=None)  # moto keeps naive UTC
        snapshot.last_tiering_start_time = stamp
        snapshot.archival_complete_time = stamp

    # -- Recycle Bin helpers (E22) --------------------------------------------------------------------------

    def recycle_image(self, region: str, image_id: str, retain_until: datetime) -> None:
        """E22: deregister `image_id` into the emulated Recycle Bin, as DeregisterImage does when a retention rule
        for AMIs matches it (moto has no Recycle Bin): the AMI is deregistered (DescribeImages as after any
        DeregisterImage, E9; its snapshots stay) and ListImagesInRecycleBin lists it, entered now on the fidelity
        clock, until `retain_until` (its RecycleBinExitTime: the retention period expires and AWS deletes it) or
        `purge_recycled_image`."""
        backend = self.backend(region)
        ami = backend.amis[image_id]  # KeyError for an unknown or deregistered image: fail the test early
        entered = self.now()
        exits = _aware(retain_until)
        if exits <= entered:
            raise ValueError(f"retain_until {exits} is not after now ({entered})")
        backend.deregister_image(image_id)
        self._recycle_bin(backend)[image_id] = _Recycled(ami, entered, exits)

    def purge_recycled_image(self, region: str, image_id: str) -> None:
        """E22: the AMI's retention period expired and AWS deleted it for good: ListImagesInRecycleBin no longer
        lists it and it cannot be restored. (Without this, the same happens at its RecycleBinExitTime.)"""
        del self._recycle_bin(self.backend(region))[image_id]  # KeyError when it is not in the bin

    def fail_create_snapshot(self, volume_or_instance_id: str, error_code: str | None) -> None:
        """Fault injection: CreateSnapshot of this volume, or CreateSnapshots of this instance, answers
        `error_code` (None: heal). Every attempt is recorded in `create_snapshot_attempts`."""
        if error_code is None:
            self.create_snapshot_faults.pop(volume_or_instance_id, None)
        else:
            self.create_snapshot_faults[volume_or_instance_id] = error_code

    # -- copy helpers (E25-E32; setup and fault injection) -----------------------------------------------------

    def fail_copy_snapshot(self, source_snapshot_id: str, error_code: str | None) -> None:
        """Fault injection: CopySnapshot of this source answers `error_code` (None: heal), in any destination Region
        and account. Every attempt is recorded (source id) in `copy_snapshot_attempts`."""
        if error_code is None:
            self.copy_snapshot_faults.pop(source_snapshot_id, None)
        else:
            self.copy_snapshot_faults[source_snapshot_id] = error_code

    def end_copy_in_error(self, snapshot_id: str, message: str = "Snapshot copy failed") -> None:
        """Fault injection (E25): this pending copy (of CopySnapshot or CopyImage) runs its course and then ends in
        `error` with `message` as its StateMessage, instead of `completed`. (`set_snapshot_state` puts it in error at
        once.)"""
        self.copy_records[snapshot_id].ends_in_error = message  # KeyError when it is not a copy

    def deny_kms_key(self, key_arn: str, denied: bool = True) -> None:
        """Fault injection (E30): the caller may not use this KMS key (its key policy or grants do not allow it, it
        is disabled or pending deletion - moto's KMS linkage cannot tell). A CopySnapshot or CopyImage that needs it
        - the destination KmsKeyId, the default key it falls back to, or the source's key - fails as E30 says; a
        StartInstances of an instance with an encrypted volume under it falls back to `stopped` as E35 says."""
        if denied:
            self.denied_kms_keys.add(key_arn)
        else:
            self.denied_kms_keys.discard(key_arn)

    def persistent_spot(self, instance_id: str) -> None:
        """E36: this Spot Instance came from a persistent request, so StopInstances may stop it (moto keeps no request
        type; an instance launched as Spot is otherwise one-time, RunInstances' default)."""
        self.persistent_spot_instances.add(instance_id)

    def fail_run_instances(
        self, code: str, times: int = 1, *, image_id: str | None = None, message: str | None = None
    ) -> None:
        """Fault injection (not fidelity): the next `times` RunInstances requests (of `image_id`, else of any image)
        fail with `code` (e.g. InsufficientInstanceCapacity, InstanceLimitExceeded, VcpuLimitExceeded,
        InsufficientFreeAddressesInSubnet) and launch nothing. Refusals of E56/E57 come first; a retry with the
        ClientToken of a launch that succeeded answers that launch, as AWS does. boto3 retries throttling codes
        (RequestLimitExceeded) itself: give `times` above its attempts to see one."""
        self.run_instances_faults.append(_Fault(code, message or f"{code} (injected by the test)", times, image_id))

    def fail_create_volume(
        self, code: str, times: int = 1, *, snapshot_id: str | None = None, message: str | None = None
    ) -> None:
        """Fault injection (not fidelity): the next `times` CreateVolume requests (of `snapshot_id`, else any) fail
        with `code` (e.g. InsufficientVolumeCapacity, VolumeLimitExceeded, MaxIOPSLimitExceeded) and create nothing."""
        self.create_volume_faults.append(_Fault(code, message or f"{code} (injected by the test)", times, snapshot_id))

    def raise_fault(self, faults: list[_Fault], resource_id: Any) -> None:
        for fault in faults:
            if fault.resource_id is None or fault.resource_id == resource_id:
                fault.times -= 1
                if fault.times <= 0:
                    faults.remove(fault)
                raise EC2ClientError(fault.code, fault.message)

    def impair_instance(self, instance_id: str, which: str = "instance", impaired: bool = True) -> None:
        """E59: make the instance's `system`, `instance` or attached `ebs` status check fail (`impaired`, detail
        `failed`) from now on; `impaired=False` lets it pass again."""
        if which not in STATUS_CHECKS:
            raise ValueError(f"which must be one of {STATUS_CHECKS}, not {which!r}")
        if not impaired:
            self.impairments.pop((instance_id, which), None)
            return
        now = self.now()
        ready = self.running_since.get(instance_id)
        passed = ready is None or now >= ready + self.status_check_time
        self.impairments[(instance_id, which)] = now if passed else self.launched_at.get(instance_id, now)

    def check_status(self, instance: Instance, which: str) -> tuple[str, datetime | None]:
        """E59: (status, ImpairedSince) of one status check of `instance` now."""
        if instance._state.name != "running":
            return "not-applicable", None
        since = self.impairments.get((instance.id, which))
        if since is not None:
            return "impaired", since
        ready = self.running_since.get(instance.id)
        if ready is not None and self.now() < ready + self.status_check_time:
            return "initializing", None
        return "ok", None

    def instance_status(self, instance: Instance) -> dict[str, Any]:
        """E59: the InstanceStatus item of DescribeInstanceStatus."""
        state = instance._state
        entry: dict[str, Any] = {
            "InstanceId": instance.id,
            "AvailabilityZone": instance.placement.zone,
            "InstanceState": {"Code": state.code, "Name": state.name},
        }
        fields = {"system": "SystemStatus", "instance": "InstanceStatus", "ebs": "AttachedEbsStatus"}
        for which in STATUS_CHECKS:
            if which == "ebs" and not instance.block_device_mapping:
                continue
            entry[fields[which]] = _status_summary(*self.check_status(instance, which))
        return entry

    def fail_volume_creation(self, snapshot_id: str, failed: bool = True) -> None:
        """E60: volumes CreateVolume makes from `snapshot_id` from now on end in `error` (after
        `volume_creation_time`) instead of `available`."""
        if failed:
            self.failing_volume_snapshots.add(snapshot_id)
        else:
            self.failing_volume_snapshots.discard(snapshot_id)

    def set_volume_state(self, volume_id: str, state: str | None) -> None:
        """E60: pin a volume in one of the VolumeState values (None: back to its timeline / moto's state)."""
        if state is not None and state not in VOLUME_STATES:
            raise ValueError(f"state must be one of {VOLUME_STATES}, not {state!r}")
        record = self.volume_records.setdefault(volume_id, _VolumeRecord(self.now(), timedelta(0)))
        record.pinned = state

    def volume_state(self, volume_id: str) -> str | None:
        """E60: the state the CreateVolume timeline or a pin gives the volume now; None: moto's."""
        record = self.volume_records.get(volume_id)
        if record is None:
            return None
        if record.pinned is not None:
            return record.pinned
        if self.now() < record.created + record.duration:
            return "creating"
        return ERROR if record.fails else None

    def aws_managed_ebs_key(self, region: str, account_id: str | None = None) -> str:
        """The ARN of the account's AWS managed key for EBS (`alias/aws/ebs`) in `region`, created as AWS creates it
        on first use (moto's own KMS backend)."""
        from moto.kms import kms_backends

        kms = kms_backends[account_id or self.account_id][region]
        if not kms.alias_exists(AWS_MANAGED_EBS_ALIAS):
            key = kms.create_key(
                policy="",
                key_usage="ENCRYPT_DECRYPT",
                key_spec="SYMMETRIC_DEFAULT",
                description="Default master key that protects my EBS volumes when no other key is defined",
                tags=None,
            )
            # DescribeKey reports an AWS managed key as KeyManager AWS (KMS API reference, KeyMetadata).
            key.key_manager = "AWS"
            kms.create_alias(key.id, AWS_MANAGED_EBS_ALIAS)
        return str(kms.describe_key(AWS_MANAGED_EBS_ALIAS).arn)

    def encrypt_with_aws_managed_key(self, region: str, snapshot_id: str, account_id: str | None = None) -> str:
        """Setup (E29): make a snapshot encrypted with the account's AWS managed key `alias/aws/ebs`, as a snapshot of
        a volume encrypted by default is (moto's CreateSnapshot copies no encryption from volumes it made
        unencrypted). Returns the key ARN."""
        snapshot = ec2_backends[account_id or self.account_id][region].get_snapshot(snapshot_id)
        snapshot.encrypted = True
        snapshot.kms_key_id = self.aws_managed_ebs_key(region, account_id)
        return str(snapshot.kms_key_id)

    # -- model ---------------------------------------------------------------------------------------------

    def _deregistrations(self, backend: Any) -> dict[str, _Deregistration]:
        return self.deregistrations.setdefault((backend.account_id, backend.region_name), {})

    def _recycle_bin(self, backend: Any) -> dict[str, _Recycled]:
        return self.recycle_bin.setdefault((backend.account_id, backend.region_name), {})

    def images_in_recycle_bin(self, backend: Any) -> list[_Recycled]:
        """E22: the AMIs of the region in the bin now, by id; those past their exit time are gone."""
        now = self.now()
        return [record for _, record in sorted(self._recycle_bin(backend).items()) if now < record.exits]

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

    # -- EBS snapshot model (E11-E15) ----------------------------------------------------------------------

    def snapshot_state(self, snapshot_id: str, stored: str = COMPLETED) -> str:
        """E11: the State AWS reports now - a pinned state; else, for a snapshot of CreateSnapshot(s), `pending`
        until `snapshot_completion_time` after its start and `completed` from then on; else what moto holds."""
        pin = self.snapshot_pins.get(snapshot_id)
        if pin is not None:
            return pin.state
        copied = self.copy_records.get(snapshot_id)
        if copied is not None:
            if self.now() < copied.started + copied.duration:
                return PENDING
            return ERROR if copied.ends_in_error is not None else COMPLETED
        record = self.snapshot_records.get(snapshot_id)
        if record is None:
            return stored
        return COMPLETED if self.now() >= record.started + self.snapshot_completion_time else PENDING

    def _timeline(self, snapshot_id: str) -> tuple[datetime, timedelta] | None:
        """When a modelled snapshot (E11) or copy (E25) started, and how long it runs."""
        copied = self.copy_records.get(snapshot_id)
        if copied is not None:
            return copied.started, copied.duration
        record = self.snapshot_records.get(snapshot_id)
        return (record.started, self.snapshot_completion_time) if record is not None else None

    def snapshot_progress(self, snapshot_id: str, state: str) -> str:
        """E11, E25: "100%" when completed; otherwise the share of the completion (or copy) time elapsed, at most
        "99%", frozen when a state other than pending was pinned (AWS documents no progress curve; "0%" at
        creation)."""
        timeline = self._timeline(snapshot_id)
        if state == COMPLETED:
            return "100%"
        if timeline is None or timeline[1] <= timedelta(0):
            return "0%"
        started, duration = timeline
        pin = self.snapshot_pins.get(snapshot_id)
        until = pin.at if pin is not None and pin.state != PENDING else min(self.now(), started + duration)
        done = int(100 * ((until - started) / duration))
        return f"{max(0, min(99, done))}%"

    def snapshot_message(self, snapshot_id: str) -> str | None:
        pin = self.snapshot_pins.get(snapshot_id)
        if pin is not None:
            return pin.message or None
        copied = self.copy_records.get(snapshot_id)
        if copied is not None and copied.ends_in_error is not None and self.snapshot_state(snapshot_id) == ERROR:
            return copied.ends_in_error
        return None

    def _completed_since(self, snapshot_id: str) -> datetime | None:
        """When the snapshot reached `completed`, if it has (for a lock placed while pending, E15)."""
        pin = self.snapshot_pins.get(snapshot_id)
        if pin is not None:
            return pin.at if pin.state == COMPLETED else None
        timeline = self._timeline(snapshot_id)
        if timeline is None or self.snapshot_state(snapshot_id) != COMPLETED:
            return None
        return timeline[0] + timeline[1]

    def lock_state(self, snapshot: Snapshot) -> str | None:
        """E15, E17: the LockState of `snapshot` (governance, compliance or expired), None when it has no lock."""
        lock = self.snapshot_locks.get(snapshot.id)
        if lock is None:
            return None
        if lock.locked_while_pending and snapshot.status == ERROR:
            return None  # "If you lock a snapshot while it is in the pending state and the snapshot creation fails"
        start = self.lock_duration_start(snapshot.id)
        if lock.duration is not None and start is not None and self.now() >= start + lock.duration:
            return "expired"
        return lock.mode

    def lock_duration_start(self, snapshot_id: str) -> datetime | None:
        """When the lock's duration started: at the lock, or when the snapshot completed if locked while pending."""
        lock = self.snapshot_locks[snapshot_id]
        return self._completed_since(snapshot_id) if lock.locked_while_pending else lock.locked_at

    def lock_mode(self, snapshot: Snapshot) -> str | None:
        """E15: the mode of the lock in force on `snapshot`, or None when no lock stops its deletion."""
        state = self.lock_state(snapshot)
        return state if state in LOCK_MODES else None

    def admit_snapshot(self, backend: Any, volume: Volume, now: datetime) -> None:
        """E13, E14: refuse a new snapshot of `volume` too soon after the previous one, or beyond the number of
        incomplete snapshots the volume may hold. Only snapshots of CreateSnapshot(s) count."""
        records = [
            (snapshot_id, record)
            for snapshot_id, record in self.snapshot_records.items()
            if (record.account_id, record.region, record.volume_id)
            == (backend.account_id, backend.region_name, volume.id)
        ]
        if records and now - max(record.started for _, record in records) < self.snapshot_rate_interval:
            raise EC2ClientError(
                RATE_EXCEEDED,
                "The maximum per volume CreateSnapshot request rate has been exceeded. "
                "Use an increasing or variable sleep interval between requests.",
            )
        incomplete = 0
        for snapshot_id, record in records:
            if record.deleted:
                still_running = now < record.started + self.snapshot_completion_time
                incomplete += int(record.deleted_while_pending and still_running)
            else:
                incomplete += int(self.snapshot_state(snapshot_id) in INCOMPLETE_SNAPSHOT_STATES)
        limit = CONCURRENT_SNAPSHOTS_PER_VOLUME_TYPE.get(volume.volume_type, CONCURRENT_SNAPSHOTS_PER_VOLUME)
        if incomplete >= limit:
            raise EC2ClientError(
                CONCURRENT_LIMIT_EXCEEDED, "Maximum allowed in-progress snapshots for a single volume exceeded."
            )

    def create_volume_snapshots(
        self,
        backend: Any,
        volumes: list[Volume],
        description: str | None,
        tags: dict[str, str],
        *,
        copy_volume_tags: bool,
        set_id: str | None,
    ) -> list[Snapshot]:
        """E11-E14: one snapshot per volume, all started at the same moment of the fidelity clock, or none."""
        now = self.now()
        for volume in volumes:
            self.admit_snapshot(backend, volume, now)
        made = []
        for volume in volumes:
            snapshot = backend.create_snapshot(volume.id, description)
            snapshot.start_time = now.replace(tzinfo=None)  # moto keeps naive UTC
            if copy_volume_tags:
                snapshot.add_tags({tag["key"]: tag["value"] for tag in volume.get_tags()})
            snapshot.add_tags(tags)
            self.snapshot_records[snapshot.id] = _SnapshotRecord(
                backend.account_id, backend.region_name, volume.id, now, set_id
            )
            made.append(snapshot)
        return made

    def note_deleted(self, snapshot_id: str) -> None:
        """E14 bookkeeping: a snapshot deleted while pending still runs (and counts) until it would complete."""
        record = self.snapshot_records.get(snapshot_id)
        if record is not None and not record.deleted:
            record.deleted_while_pending = self.snapshot_state(snapshot_id) == PENDING
            record.deleted = True
        self.snapshot_pins.pop(snapshot_id, None)
        self.snapshot_locks.pop(snapshot_id, None)

    def injected_snapshot_fault(self, resource_id: str) -> None:
        self.create_snapshot_attempts.append(resource_id)
        if resource_id in self.create_snapshot_faults:
            raise EC2ClientError(self.create_snapshot_faults[resource_id], "injected fault")

    # -- copy model (E25-E32) ------------------------------------------------------------------------------

    def shared_snapshots(self, account_id: str, region: str) -> list[Snapshot]:
        """E28: the snapshots of other accounts in `region` that `account_id` may use - CreateVolumePermission for
        its account id, or public (group `all`)."""
        found = []
        for owner in list(ec2_backends.keys()):
            if owner == account_id:
                continue
            for snapshot in ec2_backends[owner][region].snapshots.values():
                if account_id in snapshot.create_volume_permission_userids or (
                    "all" in snapshot.create_volume_permission_groups
                ):
                    found.append(snapshot)
        return found

    def visible_snapshot(self, account_id: str, region: str, snapshot_id: str) -> Snapshot:
        """E28: the snapshot `account_id` sees under this id in `region` - its own, or one shared with it; anything
        else does not exist for it (`InvalidSnapshot.NotFound`)."""
        own = ec2_backends[account_id][region].snapshots.get(snapshot_id)
        if own is not None:
            return own
        for snapshot in self.shared_snapshots(account_id, region):
            if snapshot.id == snapshot_id:
                return snapshot
        raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{snapshot_id}' does not exist.")

    def is_aws_managed_key(self, account_id: str, region: str, key: str | None) -> bool:
        """E29: whether `key` (ARN, id, alias or alias ARN) is the account's AWS managed key for EBS."""
        if not key:
            return False
        from moto.kms import kms_backends

        kms = kms_backends[account_id][region]
        if key == AWS_MANAGED_EBS_ALIAS or key.endswith(f":{AWS_MANAGED_EBS_ALIAS}"):
            return True
        if not kms.alias_exists(AWS_MANAGED_EBS_ALIAS):
            return False
        managed = kms.describe_key(AWS_MANAGED_EBS_ALIAS)
        return key in (managed.arn, managed.id)

    def default_ebs_key(self, backend: Any) -> str:
        """The key EBS encrypts with when no KmsKeyId is given: the Region's default KMS key for EBS (the AWS managed
        `alias/aws/ebs` unless ModifyEbsDefaultKmsKeyId chose another), as moto's CreateVolume uses it."""
        return str(backend.default_kms_key_id or backend._create_default_encryption_key())

    def denied_key(self, *keys: str | None) -> str | None:
        """E30: the first of `keys` that `deny_kms_key` denies, if any."""
        return next((key for key in keys if key and key in self.denied_kms_keys), None)

    def pending_snapshot_copies(self, account_id: str, region: str) -> int:
        """E27: CopySnapshot copies of the account still pending in the destination `region` (not deleted)."""
        backend = ec2_backends[account_id][region]
        return sum(
            1
            for snapshot_id, record in self.copy_records.items()
            if (record.account_id, record.region) == (account_id, region)
            and not record.by_copy_image
            and snapshot_id in backend.snapshots
            and self.snapshot_state(snapshot_id) == PENDING
        )

    # -- instance model (E33-E36) ---------------------------------------------------------------------------

    def settle_instance(self, instance: Instance, state: Any) -> None:
        """E33, E35: end the state change under way once its time is up (on the fidelity clock). A state set since by
        anything else (TerminateInstances, `set_instance_state`) cancels it."""
        record = self.instance_transitions.get(instance.__dict__.get("id", ""))
        if record is None:
            return
        if state.name != record.via:
            del self.instance_transitions[instance.id]
            return
        if self.now() < record.started + record.duration:
            return
        del self.instance_transitions[instance.id]
        state.name = record.final
        state.code = INSTANCE_STATE_CODES[record.final]
        if record.reason is not None:
            instance.state_reason = record.reason

    def begin_transition(
        self, instance: Instance, via: str, final: str, duration: timedelta, reason: StateReason | None = None
    ) -> None:
        state = instance._state  # settles an earlier change first
        state.name = via
        state.code = INSTANCE_STATE_CODES[via]
        self.instance_transitions[instance.id] = _Transition(via, final, self.now(), duration, reason)

    def denied_volume_key(self, backend: Any, instance: Instance) -> str | None:
        """E35: the KMS key of an encrypted EBS volume of `instance` that `deny_kms_key` denies, if any (a volume
        encrypted without a KmsKeyId uses the Region's default EBS key)."""
        for mapping in instance.block_device_mapping.values():
            volume = backend.volumes.get(getattr(mapping, "volume_id", None))
            if volume is None or not volume.encrypted:
                continue
            denied = self.denied_key(volume.kms_key_id or self.default_ebs_key(backend))
            if denied is not None:
                return denied
        return None

    def start_copy(self, snapshot: Snapshot, source_id: str, *, by_copy_image: bool, duration: timedelta) -> None:
        backend = snapshot.ec2_backend
        self.copy_records[snapshot.id] = _CopyRecord(
            backend.account_id, backend.region_name, source_id, self.now(), duration, by_copy_image=by_copy_image
        )


_ORIGINAL: dict[str, Any] = {
    "create_image": AmiBackend.create_image,
    "describe_images": AmiBackend.describe_images,
    "deregister_image": AmiBackend.deregister_image,
    "disable_image": AmiBackend.disable_image,
    "delete_snapshot": EBSBackend.delete_snapshot,
    "delete_volume": EBSBackend.delete_volume,
    "copy_snapshot": EBSBackend.copy_snapshot,
    "add_create_volume_permission": EBSBackend.add_create_volume_permission,
    "modify_snapshot_tier": EBSBackend.modify_snapshot_tier,
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

        E19 - same CreateImage page, BlockDeviceMapping: "You can't change the volume size using the VolumeSize
        parameter. If you want a different volume size, you must first change the volume size of the source
        instance."; "Snapshot - Amazon Elastic Compute Cloud": VolumeId "The ID of the volume that was used to
        create the snapshot", VolumeSize "The size of the volume, in GiB.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html - moto snapshots a phantom
        15 GiB `standard` volume (deleted at once) instead of the instance's root volume. Here the snapshot's
        VolumeId and VolumeSize, and the AMI's root mapping (VolumeSize, VolumeType), are the root volume's as it
        is at CreateImage. The description EC2 writes is published nowhere ("Deregister an Amazon EC2 AMI" only
        says to find the snapshot by "the AMI ID in the Description column",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/deregister-ami.html); snapshots show
        `Created by CreateImage(i-…) for ami-…` (moto's form, kept) and, in older accounts,
        `Created by CreateImage(i-…) for ami-… from vol-…` - `fidelity.create_image_description_with_volume`
        writes the latter (an observation, not a documented form).
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
        root = [
            mapping.volume_id
            for device, mapping in instance.get_block_device_mapping
            if device == instance.root_device_name and mapping.volume_id in self.volumes
        ]
        if root:
            ami.ebs_snapshot.volume = copy.copy(self.volumes[root[0]])  # the volume as it is now
            ami.fidelity_root_volume = True
            if fidelity.create_image_description_with_volume:
                ami.ebs_snapshot.description = f"{ami.ebs_snapshot.description} from {root[0]}"
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

        E15 - "Amazon EBS snapshot lock concepts": governance mode - "To delete a snapshot after it has been
        locked in governance mode, you must first unlock the snapshot or you must wait for the lock to expire";
        compliance mode - it can be deleted only once the lock expires; "A snapshot can't be deleted during the
        cooling-off period", https://docs.aws.amazon.com/ebs/latest/userguide/snapshot-lock-concepts.html;
        "Considerations for Amazon EBS snapshot lock": "If you lock a snapshot while it is in the pending state,
        and you lock it for a specific duration, the lock duration starts only when the snapshot reaches the
        completed state. The snapshot can't be deleted while it is in the pending state."; "If you lock a snapshot
        while it is in the pending state and the snapshot creation fails for any reason, the lock is canceled.",
        https://docs.aws.amazon.com/ebs/latest/userguide/snapshot-lock-considerations.html - moto has no locks.
        The error code is documented nowhere (neither DeleteSnapshot, LockSnapshot nor the error-code list name
        one): `fidelity.locked_snapshot_error`, default `OperationNotPermitted` ("The specified operation is not
        allowed", the documented code of the nearest case, termination protection), is an assumption - code
        should treat any refusal as "keep and retry later", not match this string.

        E14 - "Delete an Amazon EBS snapshot": "Although you can delete a snapshot that is still in progress, the
        snapshot must complete before the deletion takes effect ... If you are also at your concurrent snapshot
        limit, and you attempt to take an additional snapshot, you might get a ConcurrentSnapshotLimitExceeded
        error.", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-deleting-snapshot.html - the snapshot leaves
        DescribeSnapshots at once (as in moto) but keeps counting against its volume's limit until it would have
        completed.
        """
        if snapshot_id in fidelity.denied_snapshot_deletions:
            raise EC2ClientError(
                UNAUTHORIZED, f"You are not authorized to perform this operation (ec2:DeleteSnapshot {snapshot_id})."
            )
        snapshot = self.snapshots.get(snapshot_id)
        mode = fidelity.lock_mode(snapshot) if snapshot is not None else None
        if mode is not None:
            raise EC2ClientError(
                fidelity.locked_snapshot_error,
                f"The snapshot {snapshot_id} is locked in {mode} mode and can't be deleted.",
            )
        users = fidelity.registered_users(self, snapshot_id) or fidelity.recently_deregistered_users(self, snapshot_id)
        if users:
            raise InvalidSnapshotInUse(snapshot_id, users[0])
        deleted = _ORIGINAL["delete_snapshot"](self, snapshot_id)
        fidelity.note_deleted(snapshot_id)
        return deleted

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
        marked it, `client-error` when it is gone or locked (E15; "You can deregister an AMI that has associated
        snapshots that are locked", snapshot-lock-considerations; which code a locked one gets is not documented,
        `client-error` is assumed), else deleted (`success`) - AWS deletes them as part of the call, so the
        eventual-consistency window of E7 does not apply to them. Without the flag the response has no
        DeleteSnapshotResults and nothing is deleted.
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
                elif snapshot_id not in backend.snapshots or fidelity.lock_mode(backend.snapshots[snapshot_id]):
                    code = "client-error"
                else:
                    _ORIGINAL["delete_snapshot"](backend, snapshot_id)
                    fidelity.note_deleted(snapshot_id)
                    code = "success"
                outcomes.append({"SnapshotId": snapshot_id, "ReturnCode": code})
            result["DeleteSnapshotResults"] = outcomes
        return ActionResult(result)

    return deregister_image


# ---------------------------------------------------------------------------------------------------------------
# EBS snapshots: CreateSnapshot, CreateSnapshots, DescribeSnapshots (E11-E16; DeleteSnapshot above)
# ---------------------------------------------------------------------------------------------------------------


def _snapshot_properties(fidelity: MotoFidelity) -> dict[str, property]:
    def status(self: Snapshot) -> str:
        """E11. The snapshot State as AWS reports it over time.

        "Create Amazon EBS snapshots" (Amazon EBS User Guide): "Snapshot creation is asynchronous. The snapshot is
        created immediately, but it remains in the pending state until all of data has been transferred to Amazon
        S3. This can take several hours to complete, depending on the number of modified blocks on the volume.",
        https://docs.aws.amazon.com/ebs/latest/userguide/ebs-creating-snapshot.html; "Snapshot - Amazon Elastic
        Compute Cloud": State `pending | completed | error | recoverable | recovering`, StateMessage (error
        details, returned by DescribeSnapshots), Progress, StartTime,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html - moto makes every snapshot
        `completed` ("100%") at once, on the wall clock, and leaves State out of the CreateSnapshots answer
        (its SnapshotInfo names the member `state`, moto's attribute is `status`).

        Modelled for snapshots of CreateSnapshot and CreateSnapshots only: StartTime is the fidelity clock at the
        request; State is `pending` until `snapshot_completion_time` later (default 10 minutes - an assumption:
        AWS documents "several hours" for large or first snapshots and no figure for small incremental ones; a
        parameter), then `completed`; `set_snapshot_state` pins any state. Progress is "0%" at the start and
        "100%" when completed. Multi-volume sets - "Create Amazon EBS snapshots" (Amazon EC2 User Guide, the
        edition before the EBS User Guide): "If any one snapshot for the multi-volume snapshot set fails, all of
        the other snapshots display an error status",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ebs-creating-snapshot.html - pinning `error` on one
        snapshot of a set pins its pending siblings too. Snapshots of CreateImage keep moto's state (the AMI tests
        pin their image states with E5); copies run their own course (E25, E32); `set_snapshot_state` pins any."""
        return fidelity.snapshot_state(self.id, self.__dict__.get("status", COMPLETED))

    def set_status(self: Snapshot, value: str) -> None:
        self.__dict__["status"] = value

    def progress(self: Snapshot) -> str:
        return fidelity.snapshot_progress(self.id, self.status)

    def status_message(self: Snapshot) -> str | None:
        return fidelity.snapshot_message(self.id)

    return {
        "status": property(status, set_status),
        "state": property(status),  # the CreateSnapshots answer (SnapshotInfo `state`)
        "progress": property(progress),
        "status_message": property(status_message),
    }


def _create_snapshot_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def create_snapshot(self: ElasticBlockStore) -> ActionResult:
        """E11, E13, E14, E16. CreateSnapshot of one volume.

        "CreateSnapshot - Amazon Elastic Compute Cloud" (Description, TagSpecifications: "The tags to apply to
        the snapshot during creation"), https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshot.html
        - moto already honours both; kept as it does them.

        E13 - "Error codes for the Amazon EC2 API": `SnapshotCreationPerVolumeRateExceeded` "The rate limit for
        creating concurrent snapshots of an EBS volume has been exceeded. Wait at least 15 seconds between
        concurrent volume snapshots.", https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html -
        moto has no such limit. Modelled: a snapshot of a volume less than 15 s (fidelity clock,
        `fidelity.snapshot_rate_interval`) after the previous CreateSnapshot(s) snapshot of that volume - even a
        completed or deleted one, an assumption for the rare case of a snapshot completing within 15 s - fails.

        E14 - same page, `ConcurrentSnapshotLimitExceeded`: "You've reached the limit on the number of concurrent
        snapshots you can create on the specified volume. Wait until the 'pending' requests have completed, and
        check that you do not have snapshots that are in an incomplete state, such as 'error', which count against
        your concurrent snapshot limit."; "Create Amazon EBS snapshots" (Amazon EC2 User Guide, above): "There is
        a limit of one pending snapshot for a single st1 or sc1 volume, or five pending snapshots for a single
        volume of the other volume types." - moto has no such limit. Modelled: snapshots of the volume that are
        pending or in error (`recoverable`/`recovering` are not documented and do not count) plus those deleted
        while pending and not yet due (DeleteSnapshot, E14) count; at 5 (1 for st1/sc1) the request fails. The
        rate is checked first (an assumption). Snapshots of CreateImage do not count (not modelled).

        E16 - "Error codes for the Amazon EC2 API": `InvalidVolumeID.Malformed` "The specified volume ID is not
        valid."; `InvalidVolume.NotFound` "The specified volume does not exist." - moto answers NotFound for a
        malformed id too; it already answers NotFound for an unknown or deleted volume.
        """
        volume_id = self._get_param("VolumeId")
        description = self._get_param("Description")
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        fidelity.injected_snapshot_fault(volume_id)
        if not VOLUME_ID.fullmatch(str(volume_id)):
            raise EC2ClientError("InvalidVolumeID.Malformed", f'Invalid id: "{volume_id}"')
        backend = self.ec2_backend
        volume = backend.get_volume(volume_id)
        [snapshot] = fidelity.create_volume_snapshots(
            backend, [volume], description, tags, copy_volume_tags=False, set_id=None
        )
        return ActionResult(snapshot)

    return create_snapshot


def _create_snapshots_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def create_snapshots(self: ElasticBlockStore) -> ActionResult:
        """E11-E14, E16. CreateSnapshots: one crash-consistent snapshot per attached volume of an instance.

        E12 - "CreateSnapshots - Amazon Elastic Compute Cloud": CopyTagsFromSource "Copies the tags from the
        specified volume to corresponding snapshot." (valid value `volume`); Description "A description
        propagated to every snapshot specified by the instance.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html; "InstanceSpecification":
        ExcludeBootVolume "Excludes the root volume from being snapshotted."; ExcludeDataVolumeIds "The IDs of the
        data (non-root) volumes to exclude from the multi-volume snapshot set. If you specify the ID of the root
        volume, the request fails. To exclude the root volume, use ExcludeBootVolume. You can specify up to 40
        volume IDs per request.", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceSpecification.html
        - moto honours Description, TagSpecifications and ExcludeBootVolume, but ignores ExcludeDataVolumeIds and
        CopyTagsFromSource ("not yet implemented"). Modelled: excluded data volumes are left out; the root
        volume's id among them, more than 40 ids, or another CopyTagsFromSource value fail with
        `InvalidParameterValue` (AWS documents the failure, not its code: assumed). Copied volume tags go on
        first, the request's tags over them (order not documented: assumed). Not documented, assumed: an
        excluded id that is not attached to the instance excludes nothing and is no error; a request that leaves
        no volume to snapshot fails with `InvalidParameterValue`.

        E11, E13, E14 as CreateSnapshot: all snapshots of the set share one StartTime, and the request fails as
        a whole (no snapshot made) when any of its volumes is refused. The set's snapshots fail together (E11).

        E16 - "Error codes for the Amazon EC2 API": `InvalidInstanceID.Malformed`; moto already answers
        `InvalidInstanceID.NotFound` for an unknown instance.
        """
        spec = self._get_param("InstanceSpecification", {}) or {}
        description = self._get_param("Description", "")
        copy_tags = self._get_param("CopyTagsFromSource")
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        instance_id = str(spec.get("InstanceId", ""))
        fidelity.injected_snapshot_fault(instance_id)
        if not INSTANCE_ID.fullmatch(instance_id):
            raise EC2ClientError("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"')
        if copy_tags not in (None, "volume"):
            raise EC2ClientError(
                INVALID_PARAMETER_VALUE, f"Value ({copy_tags}) for parameter CopyTagsFromSource is invalid."
            )
        backend = self.ec2_backend
        instance = backend.get_instance(instance_id)
        exclude_boot = str(spec.get("ExcludeBootVolume", False)).lower() == "true"
        excluded = list(spec.get("ExcludeDataVolumeIds") or [])
        if len(excluded) > MAX_EXCLUDED_DATA_VOLUMES:
            raise EC2ClientError(
                INVALID_PARAMETER_VALUE,
                f"You can exclude up to {MAX_EXCLUDED_DATA_VOLUMES} data volumes; got {len(excluded)}.",
            )
        mappings = list(instance.get_block_device_mapping)
        root = {mapping.volume_id for device, mapping in mappings if device == instance.root_device_name}
        if root & set(excluded):
            raise EC2ClientError(
                INVALID_PARAMETER_VALUE,
                f"The root volume {sorted(root)[0]} cannot be in ExcludeDataVolumeIds; use ExcludeBootVolume.",
            )
        selected = [
            mapping.volume_id
            for device, mapping in mappings
            if mapping.volume_id not in excluded and not (exclude_boot and device == instance.root_device_name)
        ]
        if not selected:
            raise EC2ClientError(INVALID_PARAMETER_VALUE, f"No volumes of instance {instance_id} are left to snapshot.")
        snapshots = fidelity.create_volume_snapshots(
            backend,
            [backend.get_volume(volume_id) for volume_id in selected],
            description,
            tags,
            copy_volume_tags=copy_tags == "volume",
            set_id=uuid.uuid4().hex,
        )
        return ActionResult({"Snapshots": snapshots})

    return create_snapshots


def _describe_locked_snapshots_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_locked_snapshots(self: ElasticBlockStore) -> ActionResult:
        """E17. DescribeLockedSnapshots - moto does not implement it ("The describe_locked_snapshots action has not
        been implemented").

        "DescribeLockedSnapshots - Amazon Elastic Compute Cloud": "Describes the lock status for a snapshot.";
        SnapshotId.N, Filter `lock-state` (compliance-cooloff | governance | compliance | expired); the answer's
        LockedSnapshotsInfo: OwnerId, SnapshotId, LockState, LockDuration, LockCreatedOn, LockDurationStartTime,
        LockExpiresOn, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLockedSnapshots.html;
        lock states: "Amazon EBS snapshot lock concepts" (E15, above) - `expired`: "The snapshot was locked in
        compliance or governance mode but the lock has expired. The snapshot is not locked and can be deleted."

        Answered from the locks of `lock_snapshot`: one entry per locked snapshot of the region (expired locks
        included, cancelled ones - a snapshot locked while pending that failed - not), narrowed to SnapshotIds and
        the lock-state filter. Not documented, assumed: an id without a lock, or unknown, is left out without an
        error; one page (no NextToken; MaxResults ignored). `compliance-cooloff` never appears (no cooling-off
        period is modelled).
        """
        snapshot_ids = set(self._get_param("SnapshotIds", []) or [])
        wanted = self._filters_from_querystring().get("lock-state")
        self.error_on_dryrun()
        backend = self.ec2_backend
        entries = []
        for snapshot_id, lock in sorted(fidelity.snapshot_locks.items()):
            snapshot = backend.snapshots.get(snapshot_id)
            if snapshot is None or (snapshot_ids and snapshot_id not in snapshot_ids):
                continue
            state = fidelity.lock_state(snapshot)
            if state is None or (wanted and state not in wanted):
                continue
            entry: dict[str, Any] = {
                "OwnerId": snapshot.owner_id,
                "SnapshotId": snapshot_id,
                "LockState": state,
                "LockCreatedOn": lock.locked_at,
            }
            start = fidelity.lock_duration_start(snapshot_id)
            if lock.duration is not None:
                entry["LockDuration"] = max(1, lock.duration.days)
                if start is not None:
                    entry["LockDurationStartTime"] = start
                    entry["LockExpiresOn"] = start + lock.duration
            entries.append(entry)
        return ActionResult({"Snapshots": entries})

    return describe_locked_snapshots


# ---------------------------------------------------------------------------------------------------------------
# EC2 instances: StartInstances, StopInstances (E33-E36)
# ---------------------------------------------------------------------------------------------------------------


def _instance_state_property(fidelity: MotoFidelity) -> property:
    def get_state(self: Instance) -> Any:
        """E33, E35: the instance's state as AWS reports it now - a state change under way ends when its time is up."""
        state = self.__dict__["_state"]
        fidelity.settle_instance(self, state)
        return state

    def set_state(self: Instance, value: Any) -> None:
        self.__dict__["_state"] = value

    return property(get_state, set_state)


def _instance_state_reason_property() -> property:
    def get_reason(self: Instance) -> Any:
        """E35: the StateReason after a state change that ended (whichever of State and StateReason is read first)."""
        self._state  # noqa: B018 - settles the change under way
        return self.__dict__["state_reason"]

    def set_reason(self: Instance, value: Any) -> None:
        self.__dict__["state_reason"] = value

    return property(get_reason, set_reason)


def _state_of(name: str) -> dict[str, Any]:
    return {"Code": INSTANCE_STATE_CODES[name], "Name": name}


def _instances_to_change(self: InstanceResponse, instance_ids: list[str], action: str) -> list[Instance]:
    """E34: the instances of a StartInstances/StopInstances request, or the error that refuses the whole request."""
    for instance_id in instance_ids:
        if not INSTANCE_ID.fullmatch(str(instance_id)):
            raise EC2ClientError("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"')
    instances: list[Instance] = self.ec2_backend.get_multi_instances_by_id(instance_ids)  # NotFound: whole request
    for instance in instances:
        if instance.state in GONE_INSTANCE_STATES:
            raise EC2ClientError(
                INCORRECT_STATE, f"This instance '{instance.id}' is not in a state from which it can be {action}."
            )
    return instances


def _start_instances_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def start_instances(self: InstanceResponse) -> ActionResult:
        """E33-E35. StartInstances as AWS answers it.

        E33 - "StartInstances - Amazon Elastic Compute Cloud": "Starts an Amazon EBS-backed instance that you've
        previously stopped."; the answer's StartingInstances are InstanceStateChange items (InstanceId, CurrentState,
        PreviousState), https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StartInstances.html; "State change
        events for Amazon EC2 instances": "When you launch or start an instance, it enters the pending state and then
        the running state.",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html
        - moto answers `pending` but makes the instance `running` at once. Modelled: `pending` for
        `fidelity.instance_start_time` on the fidelity clock, then `running`. AWS documents no duration: the default,
        0, keeps moto's immediate end state (the existing tests rely on it); a test that needs the pending phase sets
        it. `set_instance_state` pins any state (and cancels the change under way).

        E34 - "Error codes for the Amazon EC2 API": `InvalidInstanceID.Malformed` "The specified instance ID is
        malformed. Ensure that you provide the full instance ID in the request, in the form i-xxxxxxxx or
        i-xxxxxxxxxxxxxxxxx."; `InvalidInstanceID.NotFound` "The specified instance does not exist.";
        `IncorrectInstanceState` "The instance is in an incorrect state for the requested action.",
        https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html; "TerminateInstanceInAutoScalingGroup"
        (Amazon EC2 Auto Scaling API Reference): "When an instance is terminated, the instance status changes to
        terminated. You can't connect to or start an instance after you've terminated it.",
        https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html -
        moto answers NotFound for a malformed id and starts a terminated instance (`running` again). Here a
        malformed id fails with `InvalidInstanceID.Malformed`, a terminated or shutting-down instance with
        `IncorrectInstanceState`. Not documented, assumed: any refused id fails the whole request and no instance of
        it is started (moto already fails a request with an unknown id as a whole); an instance that is already
        `pending` or `running` is answered with CurrentState equal to PreviousState and left as it is (moto answers
        `pending` for it). A `stopping` instance is started as moto starts it (AWS documents nothing).

        E35 - "Troubleshoot Amazon EC2 instance launch issues" (Instance terminates immediately): "The root EBS volume
        is encrypted and you do not have permissions to access the KMS key for decryption."; "If the reason is
        Client.InternalError: Client error on launch, that typically indicates that the root volume is encrypted and
        that you do not have permissions to access the KMS key for decryption",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html; AWS re:Post Knowledge Center
        "kms-iam-ec2-permission": "I tried to start the instance, but it changed from the Pending state to Stopped."
        ... "The IAM principal that calls the StartInstances API action must have kms:CreateGrant permissions",
        StateReason `{"Message": "Client.InternalError: Client error on launch", "Code": "Client.InternalError"}`,
        https://repost.aws/knowledge-center/kms-iam-ec2-permission - moto has no KMS permissions and starts it.
        Modelled with `deny_kms_key` (E30): an instance with an encrypted volume whose key (its KmsKeyId, else the
        Region's default EBS key) is denied is answered `pending` like any other, stays `pending` for
        `instance_start_time`, then is `stopped` with that StateReason. Not documented, kept as moto has it:
        StateTransitionReason is left empty.
        """
        instance_ids = self._get_param("InstanceIds", [])
        self.error_on_dryrun()
        backend = self.ec2_backend
        changes = []
        for instance in _instances_to_change(self, instance_ids, "started"):
            previous = _state_of(instance.state)
            if instance.state in ("pending", "running"):
                changes.append({"InstanceId": instance.id, "CurrentState": previous, "PreviousState": previous})
                continue
            denied = fidelity.denied_volume_key(backend, instance)
            instance.start()  # moto's start: network interfaces, reasons cleared
            fidelity.begin_transition(
                instance,
                via="pending",
                final="stopped" if denied else "running",
                duration=fidelity.instance_start_time,
                reason=StateReason(LAUNCH_ERROR_MESSAGE, LAUNCH_ERROR_CODE) if denied else None,
            )
            if not denied:
                fidelity.running_since[instance.id] = fidelity.now() + fidelity.instance_start_time  # E59
            changes.append({"InstanceId": instance.id, "CurrentState": _state_of("pending"), "PreviousState": previous})
        return ActionResult({"StartingInstances": changes})

    return start_instances


def _stop_instances_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def stop_instances(self: InstanceResponse) -> ActionResult:
        """E33, E34, E36. StopInstances as AWS answers it.

        E33 - "StopInstances - Amazon Elastic Compute Cloud": "Stops an Amazon EBS-backed instance.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html; "State change events for Amazon
        EC2 instances": "When you stop an instance, it enters the stopping state and then the stopped state.",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html - moto answers
        `stopping` but makes the instance `stopped` at once. Modelled: `stopping` for `fidelity.instance_stop_time`
        (default 0, as for E33's start), then `stopped`, with moto's StateReason `Client.UserInitiatedShutdown`.

        E34 - as StartInstances: malformed ids, terminated or shutting-down instances (the
        TerminateInstanceInAutoScalingGroup text above: "You can't connect to or start an instance after you've
        terminated it" - moto makes a terminated instance `stopped`; the code `IncorrectInstanceState` is the documented
        one for an instance "in an incorrect state for the requested action") fail the whole request; an instance
        already `stopping` or `stopped` is answered with CurrentState equal to PreviousState (moto: `stopping`, and it
        restamps the reason). Not documented, assumed: nothing of a refused request is stopped - moto stopped the
        instances before one with `disableApiStop`; now that check, too, comes before any is acted on. A `pending`
        instance is stopped as moto stops it (AWS documents nothing).

        E36 - same StopInstances page, Hibernate: "Hibernates the instance if the instance was enabled for hibernation
        at launch."; "Error codes for the Amazon EC2 API": `UnsupportedHibernationConfiguration` "... Alternatively,
        the instance could not be hibernated because it is not enabled for hibernation." - moto ignores Hibernate.
        Here Hibernate=True on an instance launched without HibernationOptions Configured=true fails the request; an
        enabled one stops as above (the hibernation itself is not modelled).
        A one-time Spot Instance: "Behavior of Spot Instance interruptions": "You can specify that Amazon EC2 stops
        your Spot Instances when they are interrupted. The Spot Instance request type must be persistent.",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/interruption-behavior.html; "SpotMarketOptions":
        "For RunInstances, persistent Spot Instance requests are only supported when the instance interruption
        behavior is either hibernate or stop.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotMarketOptions.html; the refusal as AWS words
        it (quoted in public issue threads, e.g. cloud-custodian#8003, not in the error-code table):
        "UnsupportedOperation ... You can't stop the Spot Instance 'i-...' because it is associated with a one-time
        Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests."
        - moto stops it. Here an instance moto launched as Spot (InstanceLifecycle `spot`) is one-time unless
        `persistent_spot` names it (moto keeps no request type), and refuses the whole request as E34's ids do.
        """
        instance_ids = self._get_param("InstanceIds", [])
        hibernate = bool(self._get_bool_param("Hibernate", False))
        self.error_on_dryrun()
        instances = _instances_to_change(self, instance_ids, "stopped")
        for instance in instances:
            if instance.disable_api_stop is True:
                raise OperationDisableApiStopNotPermitted(instance.id)
            if instance.lifecycle == "spot" and instance.id not in fidelity.persistent_spot_instances:
                raise EC2ClientError(
                    "UnsupportedOperation",
                    f"You can't stop the Spot Instance '{instance.id}' because it is associated with a one-time Spot "
                    "Instance request. You can only stop Spot Instances associated with persistent Spot Instance "
                    "requests.",
                )
            configured = (instance.hibernation_options or {}).get("Configured")
            if hibernate and str(configured).lower() != "true":
                raise EC2ClientError(UNSUPPORTED_HIBERNATION, f"Instance is not enabled for hibernation: {instance.id}")
        changes = []
        for instance in instances:
            previous = _state_of(instance.state)
            if instance.state in ("stopping", "stopped"):
                changes.append({"InstanceId": instance.id, "CurrentState": previous, "PreviousState": previous})
                continue
            instance.stop()  # moto's stop: network interfaces, StateReason Client.UserInitiatedShutdown
            fidelity.begin_transition(instance, via="stopping", final="stopped", duration=fidelity.instance_stop_time)
            changes.append(
                {"InstanceId": instance.id, "CurrentState": _state_of("stopping"), "PreviousState": previous}
            )
        return ActionResult({"StoppingInstances": changes})

    return stop_instances


# ---------------------------------------------------------------------------------------------------------------
# Restore tests: RunInstances, DescribeInstanceStatus, CreateVolume, DeleteVolume (E56-E61)
# ---------------------------------------------------------------------------------------------------------------

# Request parameters that are no part of what a ClientToken stands for (E56, E60). The Availability Zone, like the
# Region, scopes the token instead ("... one or more of the parameters are different, other than the Region or
# Availability Zone"): the same token in another zone is another request.
_TOKEN_ZONE_PARAMETERS = ("AvailabilityZone", "Placement.AvailabilityZone")
_TOKEN_EXEMPT_PARAMETERS = frozenset({"Action", "Version", "ClientToken", "DryRun", "AWSAccessKeyId"}) | frozenset(
    _TOKEN_ZONE_PARAMETERS
)


def _token_key(request: BaseResponse, backend: Any, token: Any) -> tuple[str, ...]:
    zone = next((str(request.querystring[p][0]) for p in _TOKEN_ZONE_PARAMETERS if request.querystring.get(p)), "")
    return (backend.account_id, backend.region_name, zone, str(token))


def _request_signature(request: BaseResponse) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The parameters of a request as sent (every one but the token itself), to compare a retry with the first."""
    return tuple(
        sorted(
            (name, tuple(str(value) for value in values))
            for name, values in request.querystring.items()
            if name not in _TOKEN_EXEMPT_PARAMETERS
        )
    )


def _idempotent_mismatch() -> EC2ClientError:
    return EC2ClientError(
        IDEMPOTENT_MISMATCH,
        "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
    )


def _instance_type_architectures(backend: Any, instance_type: str) -> list[str]:
    try:
        described = backend.describe_instance_types([instance_type], {})
    except EC2ClientError:  # a type moto does not know: nothing to check against
        return []
    if not described:
        return []
    processor = described[0].get("ProcessorInfo", {}) if isinstance(described[0], dict) else {}
    return [str(architecture) for architecture in processor.get("SupportedArchitectures", [])]


def _run_instances_response(
    fidelity: MotoFidelity, original: Callable[..., ActionResult]
) -> Callable[..., ActionResult]:
    def run_instances(self: InstanceResponse) -> ActionResult:
        """E56-E58, E61, and `fail_run_instances`. RunInstances as AWS answers it.

        E56 - "Ensuring idempotency in Amazon EC2 API requests" (RunInstances is among the actions that "optionally
        support idempotency using a client token"): "If you retry a request that completed successfully using the
        same client token and the same parameters, the retry succeeds without performing any further actions ...
        If you retry a request that completed successfully using the same client token, but one or more of the
        parameters are different, other than the Region or Availability Zone, the retry fails with an
        IdempotentParameterMismatch error." "the result might contain updated information, such as the current
        creation status", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html
        (formerly https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Run_Instance_Idempotency.html) - moto keeps the
        token on the instance but launches again. Here the same token in the same account, Region and Availability
        Zone (Placement; read as scoping the token, as the Region does) answers the first reservation (its instances
        as they are now); other parameters with it fail with
        `IdempotentParameterMismatch` (message as observed: "Arguments on this idempotent request are inconsistent
        with arguments used in previous request(s)."). Not modelled: the token's expiry.

        E57 - an instance type whose architectures do not include the AMI's is refused. AWS documents the check only
        for an AMI's own instance-type specification ("AMI allowed instance types"); the answer to an architecture
        mismatch is observed (issue threads quote it, e.g. skypilot-org/skypilot#6315, aws/eks-hybrid#228,
        aws/aws-parallelcluster#3795): `InvalidParameterValue` "The architecture 'arm64' of the specified instance
        type does not match the architecture 'x86_64' of the specified AMI. Specify an instance type and an AMI that
        have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to
        discover the architecture of the instance type or AMI." The code is `fidelity.architecture_mismatch_error`;
        the architectures are DescribeInstanceTypes' SupportedArchitectures (moto's data). moto launches anything.
        An AMI this account deregistered (E9, E22) or that is not `available` (pending, failed, disabled) is refused
        with `InvalidAMIID.Unavailable` ("Error codes for the Amazon EC2 API": "The specified AMI has been
        deregistered and is no longer available, or is not in a state from which you can launch an instance",
        https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html); moto launches from any id, and an id
        it never knew stays launchable (the existing tests launch from made-up ids).

        E58 - "State change events for Amazon EC2 instances": "When you launch or start an instance, it enters the
        pending state and then the running state.",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html - moto answers
        `pending` but the instance is `running` at once. Modelled: `pending` for `fidelity.instance_launch_time` on
        the fidelity clock, then `running` (AWS documents no duration: the default, 0, keeps moto's behaviour, which
        existing tests rely on). LaunchTime is stamped on the fidelity clock when the test has one (as E4 stamps
        images). "RunInstances" TagSpecifications: "The tags to apply to the resources that are created during
        instance launch. You can specify tags for the following resources only: Instances, Volumes, Spot Instance
        requests, Network interfaces.", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
        - moto tags instances and volumes only; here the `network-interface` tags are applied to the network
        interfaces the launch creates. Checked, moto already matches: NetworkInterfaces AssociatePublicIpAddress
        (false: no public address) and DeleteOnTermination (the interface goes with the instance), an unknown
        SubnetId (`InvalidSubnetID.NotFound`) and SecurityGroupIds (`InvalidGroup.NotFound`).

        E61 - "Block device mappings" (EC2 User Guide): "By default, an instance that you launch includes any storage
        devices specified in the block device mapping of the AMI from which you launched the instance. You can specify
        changes to the block device mapping for an instance when you launch it, and these updates overwrite or merge
        with the block device mapping of the AMI.",
        https://docs.aws.amazon.com/ebs/latest/userguide/block-device-mapping-concepts.html; "BlockDeviceMapping":
        NoDevice "To omit the device from the block device mapping",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_BlockDeviceMapping.html - moto launches only the
        mappings of the request, each on its own (one without SnapshotId or VolumeSize, e.g. only DeleteOnTermination
        for the AMI's root, fails with `MissingParameter`). Here, for an AMI moto knows, the request's mappings are
        merged into the AMI's by DeviceName. Without BlockDeviceMappings moto's blank 8 GiB root stays (not
        modelled). The security groups of NetworkInterfaces must exist (`InvalidGroup.NotFound`, as moto answers
        for SecurityGroupIds; moto launches with any id there).
        """
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        key = _token_key(self, backend, token)
        signature = _request_signature(self)
        if token:
            earlier = fidelity.run_instances_tokens.get(key)
            if earlier is not None:
                if earlier[0] != signature:
                    raise _idempotent_mismatch()
                self.error_on_dryrun()
                return ActionResult(backend.reservations[earlier[1]])
        image_id = self._get_param("ImageId")
        if image_id:
            _check_launchable_image(fidelity, self, str(image_id))
        _check_interface_groups(self)
        merged = _merged_block_device_mappings(self, backend.amis.get(image_id) if image_id else None)
        fidelity.run_instances_attempts.append(str(image_id))
        fidelity.raise_fault(fidelity.run_instances_faults, image_id)
        if merged is not None:
            self._parse_block_device_mapping = lambda: merged  # type: ignore[method-assign]
        result = original(self)
        reservation: Any = result.result
        tags = self._parse_tag_specification().get("network-interface", {})
        now = fidelity.now()
        for instance in reservation.instances:
            if fidelity.clock is not None:
                instance.launch_time = now.replace(tzinfo=None)  # moto keeps naive UTC
            for nic in instance.nics.values():
                nic.add_tags(tags)
            if fidelity.instance_launch_time > timedelta(0):
                fidelity.begin_transition(
                    instance, via="pending", final="running", duration=fidelity.instance_launch_time
                )
            fidelity.launched_at[instance.id] = now
            fidelity.running_since[instance.id] = now + fidelity.instance_launch_time
        if token:
            fidelity.run_instances_tokens[key] = (signature, reservation.id)
        return result

    return run_instances


def _check_launchable_image(fidelity: MotoFidelity, request: InstanceResponse, image_id: str) -> None:
    """E57: an AMI that can be launched, with an instance type of its architecture."""
    backend = request.ec2_backend
    ami = backend.amis.get(image_id)
    gone = image_id in fidelity._deregistrations(backend) or image_id in fidelity._recycle_bin(backend)
    if gone or (ami is not None and ami.state != AVAILABLE):
        raise EC2ClientError(
            "InvalidAMIID.Unavailable",
            f"The image id '[{image_id}]' is no longer available",
        )
    instance_type = request._get_param("InstanceType")
    if ami is None or not instance_type:
        return
    supported = _instance_type_architectures(backend, str(instance_type))
    if supported and ami.architecture not in supported:
        named = "x86_64" if "x86_64" in supported else supported[0]
        raise EC2ClientError(
            fidelity.architecture_mismatch_error,
            f"The architecture '{named}' of the specified instance type does not match the architecture "
            f"'{ami.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching "
            "architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover "
            "the architecture of the instance type or AMI.",
        )


_EBS_MAPPING_FIELDS = ("SnapshotId", "VolumeSize", "DeleteOnTermination", "VolumeType", "Iops", "Encrypted", "KmsKeyId")


def _check_interface_groups(request: InstanceResponse) -> None:
    """E61: the security groups of NetworkInterfaces must exist, as those of SecurityGroupIds (moto checks these)."""
    for interface in request._get_param("NetworkInterfaces", []) or []:
        for group_id in interface.get("Groups") or []:
            if request.ec2_backend.get_security_group_from_id(str(group_id)) is None:
                raise InvalidSecurityGroupNotFoundError(str(group_id))


def _merged_block_device_mappings(request: InstanceResponse, ami: Ami | None) -> list[dict[str, Any]] | None:
    """E61: the launch's block device mappings - the AMI's, with the request's merged in by DeviceName (fields the
    request gives win, NoDevice drops one); None: leave moto's parsing (no mappings given, or an AMI moto does not
    know)."""
    requested = request._get_param("BlockDeviceMappings", []) or []
    if not requested or ami is None:
        return None

    def empty(device_name: str) -> dict[str, Any]:
        ebs = dict.fromkeys(_EBS_MAPPING_FIELDS)
        ebs.update(DeleteOnTermination=False, Encrypted=False)
        return {"VirtualName": None, "DeviceName": device_name, "Ebs": ebs, "NoDevice": None}

    merged: dict[str, dict[str, Any]] = {}
    for mapping in ami.block_device_mappings:
        if "Ebs" not in mapping:
            continue
        entry = empty(mapping["DeviceName"])
        entry["Ebs"].update({k: v for k, v in mapping["Ebs"].items() if k in _EBS_MAPPING_FIELDS})
        merged[mapping["DeviceName"]] = entry
    for mapping in requested:
        name = str(mapping.get("DeviceName"))
        if "NoDevice" in mapping:
            merged.pop(name, None)
            continue
        entry = merged.setdefault(name, empty(name))
        entry["VirtualName"] = mapping.get("VirtualName")
        entry["Ebs"].update({k: v for k, v in (mapping.get("Ebs") or {}).items() if k in _EBS_MAPPING_FIELDS})
    return list(merged.values())


def _status_summary(status: str, since: datetime | None = None) -> dict[str, Any]:
    detail_status = {"ok": "passed", "impaired": "failed"}.get(status, status)
    summary: dict[str, Any] = {"Status": status}
    if status != "not-applicable":
        detail: dict[str, Any] = {"Name": "reachability", "Status": detail_status}
        if status == "impaired" and since is not None:
            detail["ImpairedSince"] = since
        summary["Details"] = [detail]
    return summary


def _describe_instance_status_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_instance_status(self: InstanceResponse) -> ActionResult:
        """E59. DescribeInstanceStatus as AWS answers it after a launch.

        "Status checks for Amazon EC2 instances": "Amazon EC2 performs automated checks on every running EC2 instance
        ... If all checks pass, the overall status of the instance is OK. If one or more checks fail, the overall
        status is impaired." Three types: system, instance and attached EBS status checks,
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-system-instance-status-check.html;
        "InstanceStatusSummary": Status `ok | impaired | insufficient-data | not-applicable | initializing`,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStatusSummary.html; "InstanceStatusDetails":
        Name `reachability`, Status `passed | failed | insufficient-data | initializing`, ImpairedSince "For an
        instance that was launched and impaired, this is the time when the instance was launched.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStatusDetails.html; "EbsStatusSummary"
        (AttachedEbsStatus), https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsStatusSummary.html;
        "InstanceStatus": "DescribeInstanceStatus requires that an instance be in the running state.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceStatus.html - moto answers `ok` the moment
        an instance is `running`, never `initializing` or `impaired`, and no AttachedEbsStatus. Modelled: after an
        instance became `running` (E58 launch, E33 start) its checks are `initializing` for
        `fidelity.status_check_time` (AWS documents no duration; assumed, default 0: `ok` at once, as moto), then
        `ok`; `impair_instance(instance_id, which)` makes the `system`, `instance` or `ebs` check `impaired` (detail
        `failed`, ImpairedSince the launch when it never passed). AttachedEbsStatus is answered for an instance with
        EBS volumes attached (AWS: Nitro-based instances; moto does not know which are). Instances not `running`
        are listed only with IncludeAllInstances, every check `not-applicable` (as moto). Not modelled:
        `insufficient-data`, scheduled events, the status filters (moto's filtering is kept).
        """
        instance_ids = self._get_param("InstanceIds", [])
        include_all = bool(self._get_bool_param("IncludeAllInstances", False))
        filters = [{"name": k, "values": v} for k, v in self._filters_from_querystring().items()]
        instances = self.ec2_backend.describe_instance_status(instance_ids, include_all, filters)
        return ActionResult({"InstanceStatuses": [fidelity.instance_status(instance) for instance in instances]})

    return describe_instance_status


def _create_volume_response(
    fidelity: MotoFidelity, original: Callable[..., ActionResult]
) -> Callable[..., ActionResult]:
    def create_volume(self: ElasticBlockStore) -> ActionResult:
        """E60, and `fail_create_volume`. CreateVolume as AWS answers it.

        "Ensuring idempotency in Amazon EC2 API requests": CreateVolume is among the actions that support a client
        token (same token and parameters: the first result; other parameters: `IdempotentParameterMismatch`),
        https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html - moto ignores ClientToken and
        creates another volume. "Volume": State `creating | available | in-use | deleting | deleted | error`,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Volume.html; "Amazon EventBridge events for Amazon
        EBS" (createVolume): "This event can have a result of either available or failed. Creation will fail if an
        invalid AWS KMS key was provided", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html
        - moto makes every volume `available` at once. Modelled: `creating` for `fidelity.volume_creation_time` on
        the fidelity clock (AWS documents no duration; assumed, default 0: moto's immediate `available`), then
        `available`, or `error` for a volume of a snapshot `fail_volume_creation` names (a test's stand-in for the
        KMS failure; the volume stays listed in `error`, as AWS leaves it until deleted); `set_volume_state` pins
        any state. CreateTime is stamped on the fidelity clock when the test has one. DeleteVolume of a `creating`
        volume is refused (code not documented, assumed `fidelity.creating_volume_delete_error`, default
        `IncorrectState`: "The resource is in an incorrect state for the request", "Error codes for the Amazon EC2
        API"); an `error` volume can be deleted. Not modelled: `deleting` (moto removes the volume at once), the
        createVolume event (moto emits none; tests publish it).
        """
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        key = _token_key(self, backend, token)
        signature = _request_signature(self)
        if token:
            earlier = fidelity.create_volume_tokens.get(key)
            if earlier is not None:
                if earlier[0] != signature:
                    raise _idempotent_mismatch()
                self.error_on_dryrun()
                return ActionResult(earlier[1])
        snapshot_id = self._get_param("SnapshotId")
        fidelity.create_volume_attempts.append(str(snapshot_id or ""))
        fidelity.raise_fault(fidelity.create_volume_faults, snapshot_id)
        result = original(self)
        volume: Any = result.result
        now = fidelity.now()
        if fidelity.clock is not None:
            volume.create_time = now.replace(tzinfo=None)  # moto keeps naive UTC
        fails = bool(snapshot_id) and snapshot_id in fidelity.failing_volume_snapshots
        if fails or fidelity.volume_creation_time > timedelta(0):
            fidelity.volume_records[volume.id] = _VolumeRecord(now, fidelity.volume_creation_time, fails)
        if token:
            fidelity.create_volume_tokens[key] = (signature, volume)
        return result

    return create_volume


def _volume_status_property(fidelity: MotoFidelity) -> property:
    def status(self: Volume) -> str:
        """E60: the volume's state now (its CreateVolume timeline, else moto's in-use/available)."""
        state = fidelity.volume_state(self.id)
        if state is not None:
            return state
        return "in-use" if self.attachment else "available"

    return property(status)


def _delete_volume(fidelity: MotoFidelity) -> Callable[..., Volume]:
    def delete_volume(self: EBSBackend, volume_id: str) -> Volume:
        """E60: a `creating` volume cannot be deleted yet (see `_create_volume_response`)."""
        if volume_id in self.volumes and fidelity.volume_state(volume_id) == "creating":
            raise EC2ClientError(
                fidelity.creating_volume_delete_error,
                f"The volume '{volume_id}' is 'creating' and cannot be deleted.",
            )
        fidelity.volume_records.pop(volume_id, None)
        deleted: Volume = _ORIGINAL["delete_volume"](self, volume_id)
        return deleted

    return delete_volume


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


# D5: set while a rule hands an event on to another bus, in this thread: that bus's rules do not send it further.
_FORWARDING = threading.local()


def _is_event_bus(arn: str) -> bool:
    parsed = parse_arn(arn)
    return parsed.service == "events" and parsed.resource_type == "event-bus"


def _send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(self: Rule, original_event: dict[str, Any], transform_input: bool = True) -> None:
        """D5. "Sending and receiving events between AWS Regions in Amazon EventBridge": "Specifying an event bus in
        another AWS Region as a target is part of creating the rule.",
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html; "Event structure reference"
        (the fields "appear in all events delivered to an event bus"): `id`, "A Version 4 UUID that's generated for
        every event. You can use id to trace events as they move through rules to targets."; `region`, the Region
        where the event originated; `time`, "The event timestamp, which can be specified by the service originating
        the event."; `resources`, the ARNs of the resources involved,
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html; "Sending and receiving
        events between AWS accounts in Amazon EventBridge": the receiving bus's rules match the events of the
        sender, and an event a bus received from another one is not sent on to a third bus (of another account,
        or of the same account), https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html;
        PutPermission, `Principal`: "Rules with an account field do not match any events sent from other
        accounts.", https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html - moto puts a
        new event on the target bus from that bus's backend: its `region` becomes the target's Region (a rule there
        that matches the origin's `region`, as the forwarded events of a destination Region need, never fires),
        with a new `id`, the current `time`, no `resources`, and it is forwarded again from there. Here the rules of
        the target bus get the event as it was (a copy), and an event that reached a bus through a rule goes no
        further through another event-bus target. Not evaluated (moto does not either): the target's IAM role and
        the target bus's resource policy. The other targets stay moto's."""
        buses = [target for target in self.targets if _is_event_bus(target["Arn"])]
        if not buses:
            original(self, original_event, transform_input)
            return
        others = copy.copy(self)
        others.targets = [target for target in self.targets if not _is_event_bus(target["Arn"])]
        original(others, original_event, transform_input)
        if getattr(_FORWARDING, "active", False) or not self.event_pattern.matches_event(original_event):
            return
        for target in buses:
            arn = parse_arn(target["Arn"])
            bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
            _FORWARDING.active = True
            try:
                for rule in list(bus.rules.values()):
                    rule.send_to_targets(copy.deepcopy(original_event))
            finally:
                _FORWARDING.active = False

    return send_to_targets


# ---------------------------------------------------------------------------------------------------------------
# RDS: StopDBInstance, StartDBInstance, StopDBCluster, StartDBCluster (E37-E39)
# ---------------------------------------------------------------------------------------------------------------


def _rds_instance_limits(original: Callable[..., Any], fidelity: MotoFidelity) -> Callable[..., Any]:
    def call(self: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        """E37, E38. What Stop/StartDBInstance refuse before moto's own checks.

        E37 - "StopDBInstance - Amazon Relational Database Service": "This command doesn't apply to RDS Custom, Aurora
        MySQL, and Aurora PostgreSQL. For Aurora clusters, use StopDBCluster instead.",
        https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_StopDBInstance.html (StartDBInstance says the
        same); "Stopping and starting an Amazon Aurora DB cluster": "You can't stop an individual Aurora DB instance.",
        https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-cluster-stop-start.html. The code and
        message as AWS answers them (quoted from CloudTrail in aws-solutions/instance-scheduler-on-aws#249 and #208):
        `InvalidParameterCombination` "aurora-postgresql DB instances are not eligible for stopping and starting."
        - moto stops and starts the member.

        E38 - "Stopping an Amazon RDS DB instance temporarily", Limitations: "You can't stop a DB instance that has a
        read replica, or that is a read replica.",
        https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_StopInstance.html - moto refuses the replica only.
        The code for the source is not documented: `fidelity.rds_replica_source_error`.
        """
        database = self.describe_db_instances(db_instance_identifier)[0]
        if database.db_cluster_identifier:
            raise RDSClientError(
                "InvalidParameterCombination",
                f"{database.engine} DB instances are not eligible for stopping and starting.",
            )
        if original.__name__ == "stop_db_instance" and database.replicas:
            raise RDSClientError(
                fidelity.rds_replica_source_error,
                f"Cannot stop DB instance {db_instance_identifier} because it has read replicas.",
            )
        return original(self, db_instance_identifier, *args, **kwargs)

    return call


def _rds_cluster_limits(original: Callable[..., Any], fidelity: MotoFidelity) -> Callable[..., Any]:
    def call(self: RDSBackend, cluster_identifier: str, *args: Any, **kwargs: Any) -> Any:
        """E39. "Stopping and starting an Amazon Aurora DB cluster", Limitations: "You can't stop and start a cluster
        that's part of an Aurora global database.", "You can't stop and start a cluster that has a cross-Region read
        replica.", "You can't stop and start an Aurora Serverless v1 cluster."; "You can't stop a DB cluster that acts
        as the replication target for data from another DB cluster, or acts as the replication master and transmits
        data to another cluster.",
        https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-cluster-stop-start.html - moto stops and
        starts them. The code is not documented: `fidelity.rds_cluster_refusal_error`.
        """
        cluster = self.clusters.get(cluster_identifier)
        if cluster is not None and (
            cluster.engine_mode == "serverless"
            or cluster.global_cluster_identifier
            or cluster.replication_source_identifier
            or cluster.read_replica_identifiers
        ):
            raise RDSClientError(
                fidelity.rds_cluster_refusal_error,
                f"DB cluster {cluster_identifier} cannot be stopped or started in its configuration.",
            )
        return original(self, cluster_identifier, *args, **kwargs)

    return call


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
    snapshot_completion_time: timedelta = DEFAULT_SNAPSHOT_COMPLETION_TIME,
    snapshot_copy_time: timedelta = DEFAULT_SNAPSHOT_COPY_TIME,
    image_copy_time: timedelta = DEFAULT_IMAGE_COPY_TIME,
    instance_start_time: timedelta = DEFAULT_INSTANCE_START_TIME,
    instance_stop_time: timedelta = DEFAULT_INSTANCE_STOP_TIME,
    instance_launch_time: timedelta = DEFAULT_INSTANCE_LAUNCH_TIME,
    status_check_time: timedelta = DEFAULT_STATUS_CHECK_TIME,
    volume_creation_time: timedelta = DEFAULT_VOLUME_CREATION_TIME,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> Iterator[MotoFidelity]:
    """Install every patch for the duration of the block; yields the `MotoFidelity` with the helpers.

    `clock` (a callable returning a datetime; naive means UTC) stamps images and measures the
    eventual-consistency windows; None means the wall clock. `sqs_time=True` runs SQS on `clock` too (D4).
    The windows of E7 and E9 are parameters; `timedelta(0)` switches one off. `snapshot_completion_time` (E11)
    is how long a new EBS snapshot stays pending; `snapshot_copy_time` (E25) and `image_copy_time` (E32) how long a
    copy of CopySnapshot or CopyImage does (`timedelta(0)`: copies complete at once, as in moto);
    `instance_start_time` and `instance_stop_time` (E33) how long an instance is pending or stopping (default 0,
    moto's immediate end state; also settable on the fidelity); `instance_launch_time` (E58), `status_check_time`
    (E59) and `volume_creation_time` (E60) how long a launch is pending, status checks initializing and a new volume
    creating (all default 0, moto's immediate end state; settable on the fidelity too). Not re-entrant:
    patch once, and use `fidelity.simulated_time(clock)` to change clocks inside (as tests/e2e/scenario.py does
    inside the server of scripts/local_aws.py)."""
    if _ACTIVE:
        raise RuntimeError("faithful_aws() is already active; use its fidelity.simulated_time(clock) instead")
    if sqs_time and clock is None:
        raise ValueError("sqs_time=True needs a clock")
    fidelity = MotoFidelity(
        clock,
        account_id,
        snapshot_in_use_window=snapshot_in_use_window,
        deregistered_listed_window=deregistered_listed_window,
        snapshot_completion_time=snapshot_completion_time,
        snapshot_copy_time=snapshot_copy_time,
        image_copy_time=image_copy_time,
        instance_start_time=instance_start_time,
        instance_stop_time=instance_stop_time,
        instance_launch_time=instance_launch_time,
        status_check_time=status_check_time,
        volume_creation_time=volume_creation_time,
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
        # EBS snapshots (model properties at backend level; the requests whose parameters moto ignores at response
        # level)
        for name, value in _snapshot_properties(fidelity).items():
            patch(mock.patch.object(Snapshot, name, value, create=True))
        patch(mock.patch.object(ElasticBlockStore, "create_snapshot", _create_snapshot_response(fidelity)))
        patch(mock.patch.object(ElasticBlockStore, "create_snapshots", _create_snapshots_response(fidelity)))
        patch(mock.patch.object(EBSBackend, "copy_snapshot", _copy_snapshot(fidelity)))
        # Copies across Regions and accounts (E25-E32)
        patch(mock.patch.object(ElasticBlockStore, "copy_snapshot", _copy_snapshot_response(fidelity)))
        shared = _add_create_volume_permission(fidelity)
        patch(mock.patch.object(EBSBackend, "add_create_volume_permission", shared))
        patch(mock.patch.object(Ami, "state", _ami_state(fidelity), create=True))
        locked = _describe_locked_snapshots_response(fidelity)
        patch(mock.patch.object(ElasticBlockStore, "describe_locked_snapshots", locked, create=True))
        # CopyImage, filters, Recycle Bin, snapshot tiers (E20-E23)
        patch(mock.patch.object(AmisResponse, "copy_image", _copy_image_response(fidelity)))
        patch(mock.patch.object(ec2_utils, "fnmatch", _AWS_WILDCARDS))
        binned = _list_images_in_recycle_bin_response(fidelity)
        patch(mock.patch.object(AmisResponse, "list_images_in_recycle_bin", binned, create=True))
        tiers = _describe_snapshot_tier_status_response(fidelity)
        patch(mock.patch.object(ElasticBlockStore, "describe_snapshot_tier_status", tiers))
        paged = _describe_snapshots_paged(_describe_snapshots_shared(fidelity))
        patch(mock.patch.object(ElasticBlockStore, "describe_snapshots", paged))
        patch(mock.patch.object(EBSBackend, "modify_snapshot_tier", _modify_snapshot_tier(fidelity)))
        # EC2 instances (E33-E36)
        patch(mock.patch.object(Instance, "_state", _instance_state_property(fidelity), create=True))
        patch(mock.patch.object(Instance, "state_reason", _instance_state_reason_property(), create=True))
        patch(mock.patch.object(InstanceResponse, "start_instances", _start_instances_response(fidelity)))
        patch(mock.patch.object(InstanceResponse, "stop_instances", _stop_instances_response(fidelity)))
        # Restore tests: launches, status checks, volumes (E56-E61)
        launched = _run_instances_response(fidelity, InstanceResponse.run_instances)
        patch(mock.patch.object(InstanceResponse, "run_instances", launched))
        statuses = _describe_instance_status_response(fidelity)
        patch(mock.patch.object(InstanceResponse, "describe_instance_status", statuses))
        volumes = _create_volume_response(fidelity, ElasticBlockStore.create_volume)
        patch(mock.patch.object(ElasticBlockStore, "create_volume", volumes))
        patch(mock.patch.object(Volume, "status", _volume_status_property(fidelity)))
        patch(mock.patch.object(EBSBackend, "delete_volume", _delete_volume(fidelity)))
        # RDS (E37-E39)
        patch(
            mock.patch.object(
                RDSBackend, "stop_db_instance", _rds_instance_limits(RDSBackend.stop_db_instance, fidelity)
            )
        )
        patch(
            mock.patch.object(
                RDSBackend, "start_db_instance", _rds_instance_limits(RDSBackend.start_db_instance, fidelity)
            )
        )
        patch(
            mock.patch.object(RDSBackend, "stop_db_cluster", _rds_cluster_limits(RDSBackend.stop_db_cluster, fidelity))
        )
        patch(
            mock.patch.object(
                RDSBackend, "start_db_cluster", _rds_cluster_limits(RDSBackend.start_db_cluster, fidelity)
            )
        )
        # SSM Run Command (E40-E49)
        patch(mock.patch.object(SimpleSystemManagerBackend, "send_command", _ssm_send_command(fidelity)))
        described = _ssm_command_response_object(Command.response_object, fidelity)
        patch(mock.patch.object(Command, "response_object", described))
        patch(mock.patch.object(Command, "get_invocation", _ssm_get_invocation(Command.get_invocation, fidelity)))
        pending = _ssm_send_command_response(SimpleSystemManagerResponse.send_command)
        patch(mock.patch.object(SimpleSystemManagerResponse, "send_command", pending))
        invocations = _ssm_list_command_invocations(fidelity)
        patch(mock.patch.object(SimpleSystemManagerResponse, "list_command_invocations", invocations, create=True))
        patch(mock.patch.object(SimpleSystemManagerResponse, "list_commands", _ssm_list_commands(fidelity)))
        information = _ssm_describe_instance_information(fidelity)
        patch(mock.patch.object(SimpleSystemManagerResponse, "describe_instance_information", information, create=True))
        cancel = _ssm_cancel_command(fidelity)
        patch(mock.patch.object(SimpleSystemManagerResponse, "cancel_command", cancel, create=True))
        # Deployments and the event flow
        patch(mock.patch.object(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", _event_template_with_account()))
        patch(mock.patch.object(LambdaBackend, "create_event_source_mapping", _create_event_source_mapping))
        patch(mock.patch.object(LambdaBackend, "layers_versions_by_arn", _layers_versions_by_arn))
        patch(mock.patch.object(sqs_models, "unix_time_millis", _sqs_time(fidelity, millis=True)))
        patch(mock.patch.object(sqs_models, "unix_time", _sqs_time(fidelity, millis=False)))
        patch(mock.patch.object(Rule, "send_to_targets", _send_to_targets(Rule.send_to_targets)))
        # IAM/STS (I1, I2)
        trusted = _assume_role_response(fidelity, TokenResponse.assume_role)
        patch(mock.patch.object(TokenResponse, "assume_role", trusted))
        # On the request handlers themselves (after the E-patches of the same actions): moto turns an EC2 error
        # into an EC2 error answer only when a handler raises it.
        for action in sorted(EC2_MUTATING_ACTIONS):
            handler = _camel_to_snake(action)
            patch(mock.patch.object(EC2Response, handler, _ec2_authorized(fidelity, getattr(EC2Response, handler))))
        # Accounts of an organization (E53-E55): before every request of every service, DescribeRegions, the
        # Organizations account states and list pages
        patch(mock.patch.object(BaseResponse, "call_action", _account_checks(fidelity, BaseResponse.call_action)))
        regions = _describe_regions_response(fidelity)
        patch(mock.patch.object(AvailabilityZonesAndRegions, "describe_regions", regions))
        for name, value in _account_properties(fidelity).items():
            patch(mock.patch.object(FakeAccount, name, value, create=True))
        patch(mock.patch.object(FakeAccount, "close", _close_account(fidelity)))
        for name in ORGANIZATIONS_PAGED_ACTIONS:
            paged = _organizations_page(getattr(OrganizationsResponse, name))
            patch(mock.patch.object(OrganizationsResponse, name, paged))
            limit = {"limit_default": ORGANIZATIONS_MAX_RESULTS}
            patch(mock.patch.dict(organizations_utils.PAGINATION_MODEL[name], limit))
        _ACTIVE.append(fidelity)
        try:
            yield fidelity
        finally:
            _ACTIVE.remove(fidelity)


# Any volume id that is no volume: AWS does not say which it uses, only that it is arbitrary.
COPY_VOLUME_ID = "vol-ffffffff"


def _copy_snapshot(fidelity: MotoFidelity) -> Callable[..., Snapshot]:
    def copy_snapshot(
        self: EBSBackend,
        source_snapshot_id: str,
        source_region: str,
        description: str,
        kms_key_id: str | None,
        encrypted: bool = False,
    ) -> Snapshot:
        """E18, E25, E28 (backend level; the request's checks are in `_copy_snapshot_response`).

        E18 - "The ID of the volume that was used to create the snapshot. Snapshots created by a copy snapshot
        operation have an arbitrary volume ID that you should not use for any purpose." (Amazon EC2 API Reference,
        Snapshot data type, `VolumeId`: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html) -
        moto reuses the source's volume. StartTime is the fidelity clock.

        E25 - the copy is made in the backend of the Region of the request (the destination; moto already does) and
        starts `pending` (see `_copy_snapshot_response`).

        E28 - the source is looked up among the snapshots the caller sees in SourceRegion, those shared with its
        account included (moto looks only in the caller's own account); the copy belongs to the caller."""
        source = fidelity.visible_snapshot(self.account_id, source_region, source_snapshot_id)  # type: ignore[attr-defined]
        snapshot = Snapshot(
            self,
            ec2_utils.random_snapshot_id(),
            volume=copy.copy(source.volume),
            description=description,
            encrypted=encrypted,
            kms_key_id=kms_key_id,
        )
        snapshot.volume.id = COPY_VOLUME_ID
        snapshot.start_time = fidelity.now().replace(tzinfo=None)  # moto keeps naive UTC
        self.snapshots[snapshot.id] = snapshot
        return snapshot

    return copy_snapshot


def _copy_snapshot_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def copy_snapshot(self: ElasticBlockStore) -> ActionResult:
        """E25-E28, E30. CopySnapshot, requested in the destination Region.

        E25 - "CopySnapshot - Amazon Elastic Compute Cloud": "Copies a point-in-time snapshot of an EBS volume and
        stores it in Amazon S3. You can copy a snapshot within the same Region, from one Region to another ... The
        snapshot is copied to the regional endpoint that you send the HTTP request to"; TagSpecifications "The tags to
        apply to the new snapshot.", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopySnapshot.html;
        "Amazon EventBridge events for Amazon EBS" (copySnapshot): the event is sent when the copy completes, with
        `startTime` and `endTime` of the copy, result `succeeded` or `failed` - a failed copy is a snapshot (its
        `snapshot_id` is "the ARN of the failed snapshot"),
        https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html; "Snapshot": State
        pending | completed | error, StateMessage, Progress,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html - moto makes the copy `completed` at
        once. Modelled: the copy is `pending` ("0%") from the request, on the fidelity clock, and `completed`
        `snapshot_copy_time` later (default 30 minutes - an assumption: AWS documents no duration; a standard copy
        completes "on a best-effort basis"); `set_snapshot_state` pins a state; `end_copy_in_error` makes it end in
        `error` with a StateMessage instead. moto already copies in the destination Region only, honours
        TagSpecifications (`snapshot`) and Description.

        E26 - "Copy an Amazon EBS snapshot": "After you create a snapshot, and it has reached the completed state, you
        can create a copy of it."; "You can copy any accessible snapshots that have a completed status",
        https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html - moto copies a pending or failed
        snapshot. The code is not documented: `fidelity.incomplete_source_error`, default `IncorrectState` ("The
        resource is in an incorrect state for the request", the documented code nearest to it, "Error codes for the
        Amazon EC2 API", https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html), is an assumption. An
        unknown source is `InvalidSnapshot.NotFound` (moto already).

        E27 - "Copy an Amazon EBS snapshot": "There is a limit of 20 concurrent snapshot copy requests per
        destination Region. If you exceed this quota, you receive a ResourceLimitExceeded error." (earlier editions:
        "Each account can have up to twenty concurrent snapshot copy requests to a single destination Region");
        "Error codes": `ResourceLimitExceeded` "You have exceeded an Amazon EC2 resource limit. For example, you
        might have too many snapshot copies in progress." - moto has no limit. Modelled: the account's pending
        CopySnapshot copies in the destination Region count (`fidelity.concurrent_snapshot_copies`, 20); copies in
        `error`, deleted copies and the snapshots of CopyImage do not (not documented: assumed).

        E28 - "CopySnapshot": Encrypted "To encrypt a copy of an unencrypted snapshot if encryption by default is not
        enabled, enable encryption using this parameter. Otherwise, omit this parameter. Encrypted snapshots are
        encrypted, even if you omit this parameter"; KmsKeyId "If this parameter is not specified, your KMS key for
        Amazon EBS is used. If KmsKeyId is specified, the encrypted state must be true."; "When copying snapshots to
        a Region, copies of encrypted EBS snapshots remain encrypted ... By default, encrypted snapshot copies use the
        default KMS key"; "Copy an Amazon EBS snapshot": "You can copy snapshots that you own and snapshots that are
        shared with you, privately or publicly." - moto ignores Encrypted (an unencrypted source with Encrypted=true
        gives an unencrypted copy), gives an encrypted source's copy no key, and finds only the caller's own
        snapshots (a shared snapshot is NotFound). Here the copy is encrypted when the source is or Encrypted=true,
        with KmsKeyId if given, else the Region's default EBS key (moto's, `alias/aws/ebs` unless changed); the
        source may be a snapshot of another account shared with the caller (E28, `shared_snapshots`); the copy is the
        caller's. KmsKeyId without Encrypted=true on an unencrypted source fails with `InvalidParameterCombination`
        (the failure is documented, not its code: assumed).

        E30 - a copy whose destination key, or whose encrypted source's key, the caller may not use (`deny_kms_key`;
        moto has no KMS permissions). "CopySnapshot": "To copy an encrypted snapshot that has been shared from
        another account, you must have permissions for the KMS key used to encrypt the snapshot."; "Share the KMS key
        used to encrypt a shared Amazon EBS snapshot": users of the key need kms:DescribeKey, kms:CreateGrant,
        kms:GenerateDataKey, kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt, kms:Decrypt,
        https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html. What a denied copy does is documented
        only indirectly: EBS works with the key after the request (a CreateVolume with a disabled key is made and then
        "fails" - the createVolume event, result `failed`, cause "arn:aws:kms:...:key/... is disabled."), a failed
        copy is a snapshot ("Amazon EventBridge events for Amazon EBS", copySnapshot `failed`: "The value of
        snapshot_id is the ARN of the failed snapshot",
        https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html), and "Error codes for the
        Amazon EC2 API" has `CustomerKeyHasBeenRevoked` "The KMS key cannot be accessed.". Modelled, by default: the
        copy is made and is in `error` at once, StateMessage `fidelity.kms_denied_message` (default "Given key ID is
        not accessible" - observed, not documented); with `fidelity.kms_denial_fails_request = True` the request
        fails with `CustomerKeyHasBeenRevoked` instead. Code should handle both.
        """
        source_snapshot_id = self._get_param("SourceSnapshotId")
        source_region = self._get_param("SourceRegion")
        description = self._get_param("Description")
        kms_key_id = self._get_param("KmsKeyId")
        encrypted_flag = bool(self._get_bool_param("Encrypted", False))
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        backend = self.ec2_backend
        fidelity.copy_snapshot_attempts.append(source_snapshot_id)
        if source_snapshot_id in fidelity.copy_snapshot_faults:
            raise EC2ClientError(fidelity.copy_snapshot_faults[source_snapshot_id], "injected fault")
        source = fidelity.visible_snapshot(backend.account_id, source_region, source_snapshot_id)
        if source.status != COMPLETED:
            raise EC2ClientError(
                fidelity.incomplete_source_error,
                f"Snapshot {source_snapshot_id} is in state {source.status}; only completed snapshots can be copied.",
            )
        encrypted = bool(source.encrypted) or encrypted_flag
        if kms_key_id and not encrypted:
            raise EC2ClientError(
                "InvalidParameterCombination", "KmsKeyId can be specified only when Encrypted is true."
            )
        if fidelity.pending_snapshot_copies(backend.account_id, backend.region_name) >= (
            fidelity.concurrent_snapshot_copies
        ):
            raise EC2ClientError(
                RESOURCE_LIMIT_EXCEEDED,
                f"Too many snapshot copies in progress. The limit is {fidelity.concurrent_snapshot_copies} for this "
                "destination region.",
            )
        key = (kms_key_id or fidelity.default_ebs_key(backend)) if encrypted else None
        denied = fidelity.denied_key(source.kms_key_id if source.encrypted else None, key)
        if denied is not None and fidelity.kms_denial_fails_request:
            raise EC2ClientError(KMS_KEY_NOT_ACCESSIBLE, f"The KMS key {denied} cannot be accessed.")
        snapshot = backend.copy_snapshot(source_snapshot_id, source_region, description, key, encrypted=encrypted)
        snapshot.add_tags(tags)
        fidelity.start_copy(snapshot, source.id, by_copy_image=False, duration=fidelity.snapshot_copy_time)
        if denied is not None:
            fidelity.snapshot_pins[snapshot.id] = _Pin(ERROR, fidelity.kms_denied_message, fidelity.now())
        return ActionResult({"SnapshotId": snapshot.id, "Tags": snapshot.tag_set})

    return copy_snapshot


def _describe_snapshots_shared(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_snapshots(self: ElasticBlockStore) -> ActionResult:
        """E28. "DescribeSnapshots - Amazon Elastic Compute Cloud": "Describes the specified EBS snapshots available
        to you or all of the EBS snapshots available to you. The snapshots available to you include public snapshots,
        private snapshots that you own, and private snapshots owned by other AWS accounts for which you have explicit
        create volume permissions."; "If you specify one or more snapshot IDs, only snapshots that have the specified
        IDs are returned. If you specify an invalid snapshot ID, an error is returned. If you specify a snapshot ID
        for which you do not have access, it is not included in the returned results."; "If you specify one or more
        snapshot owners using the OwnerIds option, only snapshots from the specified owners and for which you have
        access are returned."; "If you specify a list of restorable users, only snapshots with create snapshot
        permissions for those users are returned.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshots.html - moto lists only the
        caller's own snapshots and ignores OwnerIds and RestorableByUserIds, so a snapshot shared with another account
        is invisible there (SnapshotIds: NotFound). Here the answer is the caller's own snapshots and those of other
        accounts in the Region shared with it (its account id or `all`), narrowed by SnapshotIds (an id that exists
        nowhere in the Region is `InvalidSnapshot.NotFound`, one of another account not shared with the caller is left
        out), OwnerIds (`self` is the caller) and RestorableByUserIds (`self` or account ids: snapshots shared with
        them explicitly, and the caller's own for `self` or its own id - assumed), then by the filters. Paged by
        E24."""
        backend = self.ec2_backend
        account = backend.account_id
        snapshot_ids = self._get_param("SnapshotIds", []) or []
        owners = {account if owner == "self" else owner for owner in self._get_param("OwnerIds", []) or []}
        restorable = {account if user == "self" else user for user in self._get_param("RestorableByUserIds", []) or []}
        filters = self._filters_from_querystring()
        self.error_on_dryrun()
        snapshots = [*backend.snapshots.values(), *fidelity.shared_snapshots(account, backend.region_name)]
        if snapshot_ids:
            known = {
                snapshot_id
                for owner in list(ec2_backends.keys())
                for snapshot_id in ec2_backends[owner][backend.region_name].snapshots
            }
            missing = [snapshot_id for snapshot_id in snapshot_ids if snapshot_id not in known]
            if missing:
                raise EC2ClientError("InvalidSnapshot.NotFound", f"The snapshot '{missing[0]}' does not exist.")
            snapshots = [snapshot for snapshot in snapshots if snapshot.id in snapshot_ids]
        if owners:
            snapshots = [snapshot for snapshot in snapshots if snapshot.owner_id in owners]
        if restorable:
            snapshots = [
                snapshot
                for snapshot in snapshots
                if restorable & set(snapshot.create_volume_permission_userids)
                or (snapshot.owner_id == account and account in restorable)
            ]
        if filters:
            snapshots = ec2_utils.generic_filter(filters, snapshots)
        return ActionResult({"Snapshots": snapshots})

    return describe_snapshots


def _add_create_volume_permission(fidelity: MotoFidelity) -> Callable[..., None]:
    def add_create_volume_permission(self: Any, snapshot_id: str, user_ids: list[str], groups: list[str]) -> None:
        """E29. "Share an Amazon EBS snapshot with other AWS accounts": "You can't share snapshots that are encrypted
        with the default AWS managed key. You can only share snapshots that are encrypted with a customer managed
        key."; "You can share only unencrypted snapshots publicly.",
        https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html - moto shares any
        snapshot. Here ModifySnapshotAttribute(CreateVolumePermission add) of a snapshot encrypted with the
        account's `alias/aws/ebs` key (`encrypt_with_aws_managed_key`, or a copy encrypted by default, E28) fails,
        as does sharing an encrypted snapshot publicly. AWS documents no code: `fidelity.managed_key_share_error`,
        default `OperationNotPermitted` with "Encrypted snapshots with EBS default key cannot be shared", is the
        answer observed from ModifySnapshotAttribute (reported in hashicorp/packer#7499; ModifyImageAttribute is
        observed answering `InvalidParameter` for the AMI's snapshots) - an assumption."""
        snapshot = self.get_snapshot(snapshot_id)
        managed = snapshot.encrypted and fidelity.is_aws_managed_key(
            self.account_id,
            self.region_name,
            snapshot.kms_key_id,
        )
        if (user_ids or groups) and managed:
            raise EC2ClientError(
                fidelity.managed_key_share_error, "Encrypted snapshots with EBS default key cannot be shared"
            )
        if groups and snapshot.encrypted:
            raise EC2ClientError(fidelity.managed_key_share_error, "Encrypted snapshots cannot be shared publicly")
        _ORIGINAL["add_create_volume_permission"](self, snapshot_id, user_ids=user_ids, groups=groups)

    return add_create_volume_permission


def _ami_state(fidelity: MotoFidelity) -> property:
    def get_state(self: Ami) -> str:
        """E32. The state of an AMI of CopyImage: `pending` for `image_copy_time` after the request, then what moto
        holds (`available`); a state set since (`set_image_state`, deregistration, disabling) is shown as set."""
        stored = str(self.__dict__.get("state", AVAILABLE))
        record = fidelity.image_copy_records.get(self.id)
        if record is None or record.pinned or fidelity.now() >= record.started + record.duration:
            return stored
        return PENDING

    def set_state(self: Ami, value: str) -> None:
        self.__dict__["state"] = value
        record = fidelity.image_copy_records.get(self.__dict__.get("id", ""))
        if record is not None:
            record.pinned = True

    return property(get_state, set_state)


def _block_device_mappings(fidelity: MotoFidelity) -> Callable[[Ami], list[dict[str, Any]]]:
    original = Ami.block_device_mappings

    def block_device_mappings(self: Ami) -> list[dict[str, Any]]:
        """E6: the mappings of `share_snapshot` appear in DescribeImages' BlockDeviceMappings. E19, E20: the root
        mapping of an AMI of CreateImage or CopyImage has its volume's size and type (moto: 15 GiB `standard`)."""
        mappings = list(original.fget(self))  # type: ignore[attr-defined]
        if getattr(self, "fidelity_root_volume", False) and mappings:
            volume = self.ebs_snapshot.volume
            root = copy.deepcopy(mappings[0])
            root["Ebs"].update(VolumeSize=volume.size, VolumeType=volume.volume_type)
            mappings[0] = root
        for index, snapshot_id in enumerate(fidelity.extra_snapshots.get(self.id, [])):
            mappings.append({"DeviceName": f"/dev/sd{chr(ord('f') + index)}", "Ebs": {"SnapshotId": snapshot_id}})
        return mappings

    return block_device_mappings


# ---------------------------------------------------------------------------------------------------------------
# CopyImage, filters, Recycle Bin, snapshot tiers (E20-E23)
# ---------------------------------------------------------------------------------------------------------------


def _copy_image_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def copy_image(self: AmisResponse) -> ActionResult:
        """E20. CopyImage as AWS answers it in the destination Region (the Region of the request).

        "CopyImage - Amazon Elastic Compute Cloud": TagSpecifications "The tags to apply to the new AMI and new
        snapshots. You can tag the AMI, the snapshots, or both. To tag the new AMI, the value for ResourceType must
        be image. To tag the new snapshots, the value for ResourceType must be snapshot. The same tag is applied to
        all the new snapshots. If you specify other values for ResourceType, the request fails."; CopyImageTags
        "Indicates whether to include your user-defined AMI tags when copying the AMI. The following tags will not
        be copied: System tags (prefixed with aws:) ... Default: Your user-defined AMI tags are not copied.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html; "How Amazon EC2 AMI copy works":
        "With an EBS-backed AMI, each of its backing snapshots is copied to an identical but distinct target
        snapshot.", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-ami-copy-works.html; "Snapshot -
        Amazon Elastic Compute Cloud" (VolumeId): "Snapshots created by a copy snapshot operation have an arbitrary
        volume ID that you should not use for any purpose.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html - moto ignores TagSpecifications
        and CopyImageTags and describes the new snapshot "Auto-created snapshot for AMI ami-…", of a phantom
        15 GiB volume, on the wall clock.

        Here the destination snapshot gets the description EC2 writes - `Copied for DestinationAmi <new ami> from
        SourceAmi <source ami> for SourceSnapshot <source snap>. Task created on <ms>.`, <ms> the request time in
        epoch milliseconds with thousands separators. AWS publishes no form: this is the one observed in accounts
        (an assumption, like the exact time it carries - here the fidelity clock at the request). The snapshot
        gets VolumeId `vol-ffffffff` (E18), the source snapshot's VolumeSize, StartTime and the AMI's
        CreationDate on the fidelity clock; the AMI's tags are the source's user-defined ones (CopyImageTags)
        with the `image` specification's over them (order not documented: assumed), the snapshot's those of the
        `snapshot` specification. Another ResourceType fails with `InvalidParameterValue` (the failure is
        documented, not its code: assumed).

        E31 - same CopyImage page, ClientToken: "Unique, case-sensitive identifier you provide to ensure idempotency
        of the request."; "Ensuring idempotency in Amazon EC2 API requests": a retry with the same client token
        returns the result of the original request; `IdempotentParameterMismatch` "The request uses the same client
        token as a previous, but non-identical request.",
        https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html,
        https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html - moto ignores ClientToken and makes a
        second AMI. Here a token is remembered per account and destination Region (for good: AWS documents token
        expiry for some actions only, assumed) and answers the first ImageId; other parameters with it fail.

        E32 - "Copy an Amazon EC2 AMI": "The time taken to complete the copy operation for cross-Region and
        cross-account AMI copying is on a best-effort basis."; "How Amazon EC2 AMI copy works": "each of its backing
        snapshots is copied to an identical but distinct target snapshot",
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html,
        https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-ami-copy-works.html; "Image" State
        pending | available | failed ..., StateReason, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html
        - moto makes the copy `available` at once. Modelled: the AMI is `pending` and its snapshot `pending` ("0%")
        for `image_copy_time` (default 30 minutes, an assumption: AWS documents no duration), then `available` /
        `completed`; `set_image_state` and `set_snapshot_state` still pin either. Encrypted/KmsKeyId ("Specifies
        whether the destination snapshots of the copied image should be encrypted. You can encrypt a copy of an
        unencrypted snapshot, but you cannot create an unencrypted copy of an encrypted snapshot. The default KMS key
        for Amazon EBS is used unless you specify a non-default ... KMS key using KmsKeyId") encrypt the copy's snapshot
        as E28 does for CopySnapshot (moto ignores both). With a KMS key `deny_kms_key` denies (E30), the AMI is
        `failed` with StateReason Code `CustomerKeyHasBeenRevoked` and its snapshot `error`, or the request fails
        (`fidelity.kms_denial_fails_request`).
        """
        source_image_id = self._get_param("SourceImageId")
        source_region = self._get_param("SourceRegion")
        name = self._get_param("Name")
        description = self._get_param("Description")
        copy_tags = bool(self._get_bool_param("CopyImageTags", False))
        specifications = self._get_param("TagSpecifications", []) or []
        token = self._get_param("ClientToken")
        encrypted_flag = bool(self._get_bool_param("Encrypted", False))
        kms_key_id = self._get_param("KmsKeyId")
        self.error_on_dryrun()
        backend = self.ec2_backend
        request = (source_image_id, source_region, name, description, copy_tags, encrypted_flag, kms_key_id)
        if token:
            earlier = fidelity.copy_image_tokens.get((backend.account_id, backend.region_name, token))
            if earlier is not None:
                if earlier[0] != request:
                    raise EC2ClientError(
                        IDEMPOTENT_MISMATCH,
                        "The client token you have provided is associated with a resource that is already created "
                        "with different parameters.",
                    )
                return ActionResult({"ImageId": earlier[1]})
        for specification in specifications:
            if specification.get("ResourceType") not in ("image", "snapshot"):
                raise EC2ClientError(
                    INVALID_PARAMETER_VALUE,
                    f"'{specification.get('ResourceType')}' is not a valid taggable resource type for this operation.",
                )
        tags = self._parse_tag_specification()
        source: Ami = ec2_backends[backend.account_id][source_region].amis[source_image_id]
        source_snapshot = source.ebs_snapshot
        encrypted = bool(source_snapshot.encrypted) or encrypted_flag
        if kms_key_id and not encrypted:
            raise EC2ClientError(
                "InvalidParameterCombination", "KmsKeyId can be specified only when Encrypted is true."
            )
        key = (kms_key_id or fidelity.default_ebs_key(backend)) if encrypted else None
        denied = fidelity.denied_key(source_snapshot.kms_key_id if source_snapshot.encrypted else None, key)
        if denied is not None and fidelity.kms_denial_fails_request:
            raise EC2ClientError(KMS_KEY_NOT_ACCESSIBLE, f"The KMS key {denied} cannot be accessed.")
        image: Ami = backend.copy_image(source_image_id, source_region, name, description)
        now = fidelity.now()
        if token:
            fidelity.copy_image_tokens[(backend.account_id, backend.region_name, token)] = (request, image.id)
        image.ebs_snapshot.encrypted = encrypted
        image.ebs_snapshot.kms_key_id = key
        fidelity.image_copy_records[image.id] = _CopyRecord(
            backend.account_id, backend.region_name, source.id, now, fidelity.image_copy_time
        )
        fidelity.start_copy(
            image.ebs_snapshot, source_snapshot.id, by_copy_image=True, duration=fidelity.image_copy_time
        )
        if denied is not None:
            image.state = FAILED
            image.state_reason = {  # type: ignore[attr-defined]
                "Code": KMS_KEY_NOT_ACCESSIBLE,
                "Message": f"{fidelity.kms_denied_message}: {denied}",
            }
            fidelity.snapshot_pins[image.ebs_snapshot.id] = _Pin(ERROR, fidelity.kms_denied_message, now)
        stamp = now.replace(tzinfo=None)  # moto keeps naive UTC
        snapshot = image.ebs_snapshot
        arbitrary = copy.copy(source.ebs_snapshot.volume)
        arbitrary.id = COPY_VOLUME_ID
        snapshot.volume = arbitrary
        snapshot.start_time = stamp
        snapshot.description = (
            f"Copied for DestinationAmi {image.id} from SourceAmi {source.id} for SourceSnapshot "
            f"{source.ebs_snapshot.id}. Task created on {int(now.timestamp() * 1000):,}."
        )
        snapshot.add_tags(tags.get("snapshot", {}))
        image.creation_date = stamp
        image.fidelity_root_volume = True  # type: ignore[attr-defined]  # read by E19's mappings
        if copy_tags:
            image.add_tags({tag["key"]: tag["value"] for tag in source.get_tags() if not tag["key"].startswith("aws:")})
        image.add_tags(tags.get("image", {}))
        return ActionResult({"ImageId": image.id})

    return copy_image


@functools.lru_cache(maxsize=1024)
def _aws_wildcard_pattern(pattern: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _aws_wildcard_match(value: str, pattern: str) -> bool:
    """E21. "You can use wildcards with the filter values: * matches zero or more characters, and ? matches exactly
    one character. You can escape special characters using a backslash before the character. For example, a value
    of \\*amazon\\?\\\\ searches for the literal string *amazon?\\." (Amazon EC2 API, filters; also AWS SDK for .NET
    `Amazon.EC2.Model.Filter`: "Use a backslash to escape special characters",
    https://docs.aws.amazon.com/sdkfornet1/latest/apidocs/html/T_Amazon_EC2_Model_Filter.htm); "Filter - Amazon
    Elastic Compute Cloud": "Filter values are case-sensitive.",
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Filter.html - moto matches EC2 filter values with
    Python's fnmatch, where `[...]` is a character class (so `[daily]` never matches itself) and a backslash is
    an ordinary character. Here: `*`, `?` and backslash escapes as documented, every other character literal,
    case-sensitive. A trailing lone backslash matches itself (not documented: assumed)."""
    return _aws_wildcard_pattern(pattern).fullmatch(value) is not None


# moto.ec2.utils uses its module `fnmatch` for filter values (`fnmatch.fnmatch`) and for tag filters
# (`fnmatch.translate`); only the former changes.
_AWS_WILDCARDS = SimpleNamespace(
    fnmatch=_aws_wildcard_match, fnmatchcase=_aws_wildcard_match, translate=fnmatch.translate
)


def _page(items: list[Any], max_results: int | None, token: str | None) -> tuple[list[Any], str | None]:
    """One page of `items` from the opaque `token`, and the token of the next page (None on the last)."""
    start = 0
    if token:
        if not token.startswith(PAGE_TOKEN_PREFIX) or not token[len(PAGE_TOKEN_PREFIX) :].isdigit():
            raise EC2ClientError(INVALID_PARAMETER_VALUE, f"Invalid NextToken: {token}")
        start = int(token[len(PAGE_TOKEN_PREFIX) :])
    end = len(items) if max_results is None else start + max_results
    following = f"{PAGE_TOKEN_PREFIX}{end}" if end < len(items) else None
    return items[start:end], following


def _list_images_in_recycle_bin_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def list_images_in_recycle_bin(self: AmisResponse) -> ActionResult:
        """E22. ListImagesInRecycleBin - moto does not implement it ("The list_images_in_recycle_bin action has
        not been implemented").

        "ListImagesInRecycleBin - Amazon Elastic Compute Cloud": "Lists one or more AMIs that are currently in the
        Recycle Bin."; ImageId.N "Omit this parameter to list all of the AMIs that are in the Recycle Bin. You can
        specify up to 20 IDs in a single request."; MaxResults "Valid Range: Minimum value of 1. Maximum value of
        1000."; NextToken; the answer's imageSet of ImageRecycleBinInfo (ImageId, Name, Description,
        RecycleBinEnterTime "The date and time when the AMI entered the Recycle Bin.", RecycleBinExitTime "The
        date and time when the AMI is to be permanently deleted from the Recycle Bin."),
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ListImagesInRecycleBin.html,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImageRecycleBinInfo.html; "Recover deleted
        AMIs from the Recycle Bin": "If you do not specify a value for --max-items, the command returns 1,000
        items per page, by default.", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/recycle-bin-working-with-amis.html;
        "Considerations for Recycle Bin": "You can't manually delete a resource from the Recycle Bin. The resource
        will be automatically deleted when its retention period expires."; "Before you can restore an AMI from the
        Recycle Bin, you must first restore all of its associated snapshots from the Recycle Bin"; "If the
        snapshots that are associated with the AMI are deleted from the Recycle Bin, the AMI is no longer
        recoverable.", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/recycle-bin-factors.html - the
        snapshots of a binned AMI are therefore not held by it: DeleteSnapshot of them is not refused (beyond the
        eventual-consistency window of E7 that follows every deregistration).

        Answered from `recycle_image`: the region's binned AMIs, by id, until `purge_recycled_image` or their exit
        time on the fidelity clock. Not documented, assumed: more than 20 ids or a MaxResults outside 1-1000 fail
        with `InvalidParameterValue`; an id not in the bin is left out without an error.
        """
        image_ids = self._get_param("ImageIds", []) or []
        max_results = self._get_int_param("MaxResults")
        token = self._get_param("NextToken")
        self.error_on_dryrun()
        if len(image_ids) > RECYCLE_BIN_MAX_IDS:
            raise EC2ClientError(
                INVALID_PARAMETER_VALUE, f"You can specify up to {RECYCLE_BIN_MAX_IDS} image IDs; got {len(image_ids)}."
            )
        if max_results is not None and not 1 <= max_results <= RECYCLE_BIN_MAX_RESULTS:
            raise EC2ClientError(
                INVALID_PARAMETER_VALUE,
                f"MaxResults must be between 1 and {RECYCLE_BIN_MAX_RESULTS}; got {max_results}.",
            )
        records = [
            record
            for record in fidelity.images_in_recycle_bin(self.ec2_backend)
            if not image_ids or record.ami.id in image_ids
        ]
        page, following = _page(records, max_results or RECYCLE_BIN_MAX_RESULTS, token)
        images = []
        for record in page:
            entry = {
                "ImageId": record.ami.id,
                "RecycleBinEnterTime": record.entered,
                "RecycleBinExitTime": record.exits,
            }
            if record.ami.name is not None:
                entry["Name"] = record.ami.name
            if record.ami.description is not None:
                entry["Description"] = record.ami.description
            images.append(entry)
        result: dict[str, Any] = {"Images": images}
        if following is not None:
            result["NextToken"] = following
        return ActionResult(result)

    return list_images_in_recycle_bin


def _describe_snapshot_tier_status_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_snapshot_tier_status(self: ElasticBlockStore) -> ActionResult:
        """E23. DescribeSnapshotTierStatus with the documented filters and pagination.

        "DescribeSnapshotTierStatus - Amazon Elastic Compute Cloud": Filter.N `snapshot-id`, `volume-id`,
        `last-tiering-operation` ("The state of the last archive or restore action." archival-in-progress |
        archival-completed | archival-failed | permanent-restore-… | temporary-restore-…); MaxResults, NextToken,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshotTierStatus.html;
        "SnapshotTierStatus": SnapshotId, VolumeId, Status, OwnerId, Tags, StorageTier, LastTieringStartTime,
        LastTieringProgress, LastTieringOperationStatus, LastTieringOperationStatusDetail, ArchivalCompleteTime
        ("The date and time when the last archive process was completed."), RestoreExpiryTime,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SnapshotTierStatus.html - moto answers the
        fields and the snapshot-id/volume-id filters, but fails the `last-tiering-operation` filter
        (FilterNotImplementedError) and ignores MaxResults/NextToken. Here the filter matches
        LastTieringOperationStatus (a snapshot never tiered matches no value), and the answer is paged by snapshot
        id. Fields without a value are left out, as AWS omits them.
        """
        filters = dict(self._filters_from_querystring() or {})
        max_results = self._get_int_param("MaxResults")
        token = self._get_param("NextToken")
        self.error_on_dryrun()
        operations = filters.pop(TIERING_OPERATION_FILTER, None)
        snapshots = sorted(self.ec2_backend.describe_snapshot_tier_status(filters=filters), key=lambda s: s.id)
        if operations is not None:
            snapshots = [
                snapshot
                for snapshot in snapshots
                if snapshot.last_tiering_operation_status is not None
                and any(_aws_wildcard_match(snapshot.last_tiering_operation_status, value) for value in operations)
            ]
        page, following = _page(snapshots, max_results, token)
        statuses = []
        for snapshot in page:
            entry = {
                "SnapshotId": snapshot.id,
                "VolumeId": snapshot.volume_id,
                "Status": snapshot.status,
                "OwnerId": snapshot.owner_id,
                "Tags": snapshot.tag_set,
                "StorageTier": snapshot.storage_tier,
                "LastTieringStartTime": snapshot.last_tiering_start_time,
                "LastTieringProgress": snapshot.last_tiering_progress,
                "LastTieringOperationStatus": snapshot.last_tiering_operation_status,
                "LastTieringOperationStatusDetail": snapshot.last_tiering_operation_status_detail,
                "ArchivalCompleteTime": snapshot.archival_complete_time,
                "RestoreExpiryTime": snapshot.restore_expiry_time,
            }
            statuses.append({key: value for key, value in entry.items() if value is not None})
        result: dict[str, Any] = {"SnapshotTierStatuses": statuses}
        if following is not None:
            result["NextToken"] = following
        return ActionResult(result)

    return describe_snapshot_tier_status


def _modify_snapshot_tier(fidelity: MotoFidelity) -> Callable[..., Snapshot]:
    def modify_snapshot_tier(self: EBSBackend, snapshot_id: str, storage_tier: str) -> Snapshot:
        """E23 (like E4): moto stamps the archive (TieringStartTime, LastTieringStartTime, ArchivalCompleteTime)
        with the wall clock; here with the fidelity clock. "ModifySnapshotTier - Amazon Elastic Compute Cloud":
        TieringStartTime "The date and time when the archive process was started.",
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySnapshotTier.html - the archive still
        completes at once, as in moto (AWS documents no duration)."""
        snapshot: Snapshot = _ORIGINAL["modify_snapshot_tier"](self, snapshot_id, storage_tier)
        stamp = fidelity.now().replace(tzinfo=None)  # moto keeps naive UTC
        snapshot.last_tiering_start_time = stamp
        snapshot.archival_complete_time = stamp
        return snapshot

    return modify_snapshot_tier


def _describe_snapshots_paged(original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    def describe_snapshots(self: ElasticBlockStore) -> ActionResult:
        """E24. "DescribeSnapshots - Amazon Elastic Compute Cloud": "MaxResults: The maximum number of snapshots
        to return for this request. This value can be between 5 and 1,000; if this value is larger than 1,000,
        only 1,000 results are returned", with NextToken for the next page,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSnapshots.html - moto ignores both and
        answers every snapshot at once, so a listing looks like one call at any size."""
        answer = original(self)
        result = dict(answer.result)  # type: ignore[call-overload]
        page, following = _page(
            list(result["Snapshots"]), self._get_int_param("MaxResults"), self._get_param("NextToken")
        )
        result["Snapshots"] = page
        if following:
            result["NextToken"] = following
        return ActionResult(result)

    return describe_snapshots


def _direct_tags(self: Any) -> list[dict[str, str]]:
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id) or {}
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]


@contextmanager
def fast_tags() -> Iterator[None]:
    """Performance, not fidelity: moto finds a resource's tags by scanning every tag of the region (quadratic in
    resources); this looks them up directly. Same answers (`check_fast_tags`); for benchmarks over thousands of
    snapshots."""
    with mock.patch.object(TaggedEC2Resource, "get_tags", _direct_tags):
        yield


def check_fast_tags(resources: list[Any]) -> bool:
    """The direct lookup answers what moto's scan answers, for `resources`."""
    return all(_direct_tags(r) == TaggedEC2Resource.get_tags(r) for r in resources)


# ---------------------------------------------------------------------------------------------------------------
# SSM Run Command (E40-E49): the patches; state, hooks and the timeline are on `_SsmMixin`
# ---------------------------------------------------------------------------------------------------------------


def _ssm_send_command(fidelity: MotoFidelity) -> Callable[..., Any]:
    def send_command(self: Any, **kwargs: Any) -> Any:
        """E40, E41, E43. SendCommand runs on what was asked, on managed nodes only, on the fidelity clock.

        E40 - "SendCommand" (AWS Systems Manager API Reference), InstanceIds: "The IDs of the managed nodes where the
        command should run."; Targets: "An array of search criteria that targets managed nodes using a Key,Value
        combination that you specify.", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html;
        "Target": for Run Command "Key=InstanceIds,Values=instance-id-1,instance-id-2,instance-id-3" and
        "Key=tag:tag-key,Values=tag-value-1,tag-value-2",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html; "Run commands at scale":
        "When you run the command, the system locates and attempts to run the command on all instances that match the
        specified tags." and "If you include more than one Key criteria, the system targets instances that meet all of
        the criteria.", https://docs.aws.amazon.com/systems-manager/latest/userguide/send-commands-multiple.html
        (awsdocs doc_source/send-commands-multiple.md @ 0dbec07e, where today's page says "managed nodes") - moto
        adds every EC2 instance of the Region to an InstanceIds command, targets terminated and unmanaged instances by
        tag, fails `Key=InstanceIds` with NotImplementedError and counts targets from an undeduplicated list. Here: the
        ids given (order kept, duplicates dropped - AWS documents nothing for duplicates), or the managed nodes in a
        valid state whose tags match every `tag:`/`tag-key` target (values ORed); TargetCount is the number of
        invocations.
        Assumed, settable: stopped managed nodes carrying the tag are targets (`ssm_tag_targets_stopped`); other
        Target keys (`resource-groups:Name`) fail with a ValidationException naming the fidelity.

        E41 - same page, Errors, InvalidInstanceId: "The following problems can cause this exception: You don't have
        permission to access the managed node. Amazon Web Services Systems Manager Agent (SSM Agent) isn't running.
        Verify that SSM Agent is running. SSM Agent isn't registered with the SSM endpoint. Try reinstalling SSM
        Agent. The managed node isn't in a valid state. Valid states are: Running, Pending, Stopped, and Stopping.
        Invalid states are: Shutting-down and Terminated." - moto accepts any id. Here an id given (InstanceIds or
        `Key=InstanceIds`) that is no instance of the Region, is shutting-down or terminated, or is not a managed node
        (`unmanage`) refuses the whole request, no command made, with the message observed in public reports
        ("Instances [[i-00903e1796f3b1cb6]] not in a valid state for account 775288309636",
        aws-samples/eks-security-compromised-cluster-remediation#12; how several ids are joined is assumed: ", ").
        Every instance is a managed node with its agent online unless a test says otherwise.

        E43 - RequestedDateTime on the fidelity clock (moto: the wall clock); ExpiresAfter "calculated based on the
        total timeout for the overall command" ("Command",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Command.html), and "Total timeout is equal
        to the value of delivery timeout plus execution timeout." ("Understanding command statuses",
        https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html, read at awsdocs
        aws-systems-manager-user-guide doc_source/monitor-commands.md @ 03c7112c) - moto: requested + TimeoutSeconds.
        The executionTimeout parameter (default 3600, AWS-RunShellScript's) is read from Parameters.

        E42 (document checks, `_ssm_check_document`), E45 (`ssm_schedule`), E50 (InvalidOutputFolder; the
        CloudWatchOutputConfig and DocumentVersion moto drops are kept on the command).
        """
        extra = _SSM_REQUEST.__dict__.copy()
        _SSM_REQUEST.__dict__.clear()
        _ssm_check_send_command(kwargs)
        _ssm_check_document(fidelity, self, kwargs.get("document_name"), extra.get("document_version"), kwargs)
        bucket = kwargs.get("output_s3_bucket_name")
        if bucket and bucket not in s3_backends.bucket_accounts:
            # "SendCommand", Errors: "InvalidOutputFolder The S3 bucket doesn't exist." (HTTP 400),
            # https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html - moto accepts it.
            raise _ssm_error("InvalidOutputFolder", "The S3 bucket doesn't exist.")
        fidelity_ids = fidelity.ssm_targets(
            self.account_id, self.region_name, kwargs.get("instance_ids") or [], kwargs.get("targets") or []
        )
        with mock.patch.object(Command, "_get_instance_ids_from_targets", lambda _self: []):
            command = Command(
                account_id=self.account_id, backend_region=self.region_name, **{**kwargs, "instance_ids": []}
            )
        now = fidelity.now()
        execution_timeout = _ssm_execution_timeout(kwargs.get("parameters"))
        command.instance_ids = fidelity_ids
        command.requested_date_time = now
        command.expires_after = now + timedelta(seconds=command.timeout_seconds) + execution_timeout
        command.invocations = []
        records = []
        for instance_id in fidelity_ids:
            instance = _ssm_ec2_instance(self.account_id, self.region_name, instance_id)
            node = fidelity.ssm_node(instance_id)
            planned = fidelity.ssm_outcomes.get(instance_id) or _SsmOutcome(after=fidelity.ssm_run_time)
            records.append(
                _SsmInvocation(
                    command_id=command.command_id,
                    instance_id=instance_id,
                    document_name=str(command.document_name or ""),
                    plugin=_ssm_plugin(command.document_name),
                    requested=now,
                    expires=command.expires_after,
                    execution_timeout=execution_timeout,
                    delivery_time=fidelity.ssm_delivery_time,
                    outcome=copy.copy(planned),
                    delayed=instance is not None and instance.state in SSM_DELIVERY_STATES,
                    agent_lost=node.lost_at is not None,
                )
            )
        fidelity.ssm_schedule(records, command.max_concurrency, command.max_errors)
        fidelity.ssm_invocations[command.command_id] = records
        fidelity.ssm_commands[command.command_id] = command
        setattr(command, "fidelity_document_version", extra.get("document_version"))  # noqa: B010 - moto has none
        setattr(command, "fidelity_cloudwatch", extra.get("cloudwatch_output_config"))  # noqa: B010
        self._commands.append(command)
        return command

    return send_command


def _ssm_command_response_object(original: Callable[..., dict[str, Any]], fidelity: MotoFidelity) -> Callable[..., Any]:
    def response_object(self: Command) -> dict[str, Any]:
        """E44. "Understanding command statuses" (Detailed status for a command): Success "All command invocations
        have reached a terminal state, and the value of max-errors wasn't reached."; Failed "The value of max-errors
        or more command invocations shows a status of Failed."; Delivery Timed Out and Execution Timed Out likewise;
        Incomplete "The command was attempted on all instances and one or more of the invocations doesn't have a
        value of Success. However, not enough invocations failed for the status to be Failed."; No Instances In Tag
        "The tag key-pair value or resource group targeted by the command doesn't match any managed instances."; "if all
        invocations in a command have the status Undeliverable, then the command status returned is Failed. However,
        if a command has five invocations, four of which return the status Undeliverable and one of which returns the
        status Success, then the parent command's status is Success.",
        https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html; "Command": CompletedCount
        "The number of targets for which the command invocation reached a terminal state. Terminal states include
        the following: Success, Failed, Execution Timed Out, Delivery Timed Out, Cancelled, Terminated, or
        Undeliverable."; ErrorCount "The number of targets for which the status is Failed or
        Execution Timed Out."; DeliveryTimedOutCount "The number of targets for which the status is Delivery Timed
        Out.", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Command.html - moto: Success,
        counts from an undeduplicated list, ErrorCount and DeliveryTimedOutCount 0. Here computed from the
        invocations at the fidelity clock ("max-errors ... reached" read as more errors than MaxErrors allows, as
        SendCommand's MaxErrors says: "When the command fails one more time beyond the value of MaxErrors, the
        systems stops sending the command"). Assumed (the CommandStatus enum has none of them, settable): the Status
        of Incomplete (`ssm_incomplete_status`) and of NoInstancesInTag (`ssm_no_instances_status`), both `Failed`;
        StatusDetails in the CommandFilter spellings (`DeliveryTimedOut`, `NoInstancesInTag`)."""
        answer = original(self)
        if self.command_id in fidelity.ssm_invocations:
            fidelity.ssm_settle()
            answer.update(fidelity.ssm_command_summary(self.command_id, self.max_errors))
            answer["CloudWatchOutputConfig"] = _ssm_cloudwatch(self)
            if getattr(self, "fidelity_document_version", None):
                answer["DocumentVersion"] = getattr(self, "fidelity_document_version")  # noqa: B009
        return answer

    return response_object


def _ssm_send_command_response(original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    def send_command(self: Any) -> ActionResult:
        """E44. The SendCommand answer is Pending with every count 0: "All of these counts are 0 in the
        ssm:SendCommand response received from a real AWS backend" (moto's own note in `Command.__init__`), and a
        published CLI answer shows `"Status": "Pending"`, `"TargetCount": 0` (observed, not documented; the API
        Reference says only "The request as it was received by Systems Manager. Also provides the command ID which
        can be used future references to this request.",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html). moto answers the
        aggregated state.

        E42, E50: DocumentVersion and CloudWatchOutputConfig, which moto's parser drops, are handed to the backend
        patch (same thread)."""
        _SSM_REQUEST.document_version = self._get_param("DocumentVersion")
        _SSM_REQUEST.cloudwatch_output_config = self._get_param("CloudWatchOutputConfig")
        try:
            result = original(self)
        finally:
            _SSM_REQUEST.__dict__.clear()
        answer = result.result
        assert isinstance(answer, dict)
        answer["Command"].update(
            Status="Pending",
            StatusDetails="Pending",
            TargetCount=0,
            CompletedCount=0,
            ErrorCount=0,
            DeliveryTimedOutCount=0,
        )
        return result

    return send_command


def _ssm_invocation_record(fidelity: MotoFidelity, command: Command, instance_id: str) -> _SsmInvocation:
    for record in fidelity.ssm_invocations.get(command.command_id, []):
        if record.instance_id == instance_id:
            return record
    raise SSMException(
        "InvocationDoesNotExist",
        "An error occurred (InvocationDoesNotExist) when calling the GetCommandInvocation operation",
    )


def _ssm_get_invocation(original: Callable[..., dict[str, Any]], fidelity: MotoFidelity) -> Callable[..., Any]:
    def get_invocation(self: Command, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        """E46. "GetCommandInvocation": ResponseCode "If the response code is -1, then the command hasn't started
        running on the managed node, or it wasn't received by the node."; ExecutionStartDateTime "If the plugin hasn't
        started to run, the string is empty."; ExecutionEndDateTime "If the plugin hasn't started to run, the string
        is empty."; StandardOutputContent "The first 24,000 characters written by the plugin to stdout.";
        StandardErrorContent "The first 8,000 characters written by the plugin to stderr."; errors InvalidPluginName
        "The plugin name isn't valid." and InvocationDoesNotExist "The command ID and managed node ID you specified
        didn't match any invocations. Verify the command ID and the managed node ID and try again.",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html - moto answers
        Success, ResponseCode 0, a hard-coded PT5M on the wall clock and `aws:runShellScript` whatever the document.
        Here the invocation's state at the fidelity clock (E43), its planned output, the document's plugin
        (`aws:runPowerShellScript` for AWS-RunPowerShellScript); another PluginName is InvalidPluginName. Assumed
        forms: times as ISO 8601 UTC with milliseconds and `Z`, ExecutionElapsedTime as `PT<seconds>S`. Not
        modelled: the output URLs (E50), DocumentVersion, CloudWatchOutputConfig, eventual consistency (E46's
        visibility window)."""
        if self.command_id not in fidelity.ssm_invocations:
            return original(self, instance_id, plugin_name)
        fidelity.ssm_settle()
        record = _ssm_invocation_record(fidelity, self, instance_id)
        if plugin_name is not None and plugin_name != record.plugin:
            raise _ssm_error("InvalidPluginName", f"The plugin name {plugin_name!r} isn't valid.")
        state = fidelity.ssm_state(record)
        ran = state.started is not None and state.ended is not None and state.details != "DeliveryTimedOut"
        stdout_url, stderr_url = fidelity.ssm_output_urls(self, record)
        return {
            "CommandId": self.command_id,
            "InstanceId": instance_id,
            "Comment": self.comment,
            "DocumentName": self.document_name,
            "PluginName": record.plugin,
            "ResponseCode": state.code,
            "ExecutionStartDateTime": _ssm_iso(state.started),
            "ExecutionElapsedTime": _ssm_duration(state.started, state.ended),
            "ExecutionEndDateTime": _ssm_iso(state.ended if state.started is not None else None),
            "Status": state.status,
            "StatusDetails": state.details,
            "StandardOutputContent": record.outcome.stdout[:SSM_STDOUT_LIMIT] if ran else "",
            "StandardOutputUrl": stdout_url,
            "StandardErrorContent": record.outcome.stderr[:SSM_STDERR_LIMIT] if ran else "",
            "StandardErrorUrl": stderr_url,
            "CloudWatchOutputConfig": _ssm_cloudwatch(self),
            **(
                {"DocumentVersion": getattr(self, "fidelity_document_version")}  # noqa: B009
                if getattr(self, "fidelity_document_version", None)
                else {}
            ),
        }

    return get_invocation


def _ssm_page(items: list[Any], max_results: int, token: str | None) -> tuple[list[Any], str | None]:
    """`_page` with SSM's error for a token it did not hand out (`InvalidNextToken`)."""
    if token and not (token.startswith(PAGE_TOKEN_PREFIX) and token[len(PAGE_TOKEN_PREFIX) :].isdigit()):
        raise _ssm_error("InvalidNextToken", "The specified token isn't valid.")
    return _page(items, max_results, token)


def _ssm_list_command_invocations(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def list_command_invocations(self: Any) -> ActionResult:
        """E47. ListCommandInvocations - moto does not implement it ("The list_command_invocations action has not been
        implemented").

        "ListCommandInvocations": "An invocation is copy of a command sent to a specific managed node. A command can
        apply to one or more managed nodes. A command invocation applies to one managed node."; CommandId, InstanceId,
        Details "(Optional) If set this returns the response of the command executions and any command output. The
        default value is false."; MaxResults "Valid Range: Minimum value of 1. Maximum value of 50."; errors
        InvalidCommandId, InvalidNextToken,
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommandInvocations.html;
        "CommandInvocation" (CommandId, InstanceId, InstanceName, Comment, DocumentName, RequestedDateTime, Status,
        StatusDetails, StandardOutputUrl, StandardErrorUrl, CommandPlugins, ServiceRole, NotificationConfig),
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandInvocation.html; "CommandPlugin"
        (Name, Status, StatusDetails, ResponseCode, ResponseStartDateTime, ResponseFinishDateTime, Output "Output of
        the plugin execution." at most 2,500 characters, StandardOutputUrl "If the S3 bucket for the command wasn't
        specified, then this string is empty."),
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html; "CommandFilter",
        Status values "Pending InProgress Delayed Success Cancelled Failed TimedOut (this includes both Delivery and
        Execution time outs) AccessDenied DeliveryTimedOut ExecutionTimedOut Undeliverable InvalidPlatform
        Terminated", https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandFilter.html.

        Answered from the invocations of E43 at the fidelity clock, in the order the commands were sent and their
        targets chosen; the Status filter (StatusDetails value, or `TimedOut` for both time outs) and DocumentName
        filter. Assumed: MaxResults defaults to 50 (not documented); a plugin's Output is its stdout (AWS documents
        no form for the combination with stderr). Not modelled: InvokedAfter/InvokedBefore filters, the URLs (E50),
        eventual consistency."""
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        details = bool(self._get_param("Details", False))
        max_results = self._get_int_param("MaxResults") or SSM_LIST_INVOCATIONS_MAX
        token = self._get_param("NextToken")
        filters = self._get_param("Filters") or []
        if not 1 <= max_results <= SSM_LIST_INVOCATIONS_MAX:
            raise _ssm_error("ValidationException", f"MaxResults must be between 1 and {SSM_LIST_INVOCATIONS_MAX}.")
        backend = self.ssm_backend
        fidelity.ssm_settle()
        commands = [backend.get_command_by_id(command_id)] if command_id else list(backend._commands)
        wanted_status = [f["value"] for f in filters if f.get("key") == "Status"]
        wanted_document = [f["value"] for f in filters if f.get("key") == "DocumentName"]
        for item in filters:
            if item.get("key") not in ("Status", "DocumentName"):
                raise _ssm_error("InvalidFilterKey", f"Filter key {item.get('key')!r} is not modelled by the fidelity")
        rows = []
        for command in commands:
            if wanted_document and command.document_name not in wanted_document:
                continue
            for record in fidelity.ssm_invocations.get(command.command_id, []):
                if instance_id and record.instance_id != instance_id:
                    continue
                state = fidelity.ssm_state(record)
                names = {state.details, state.status}
                if wanted_status and not names & set(wanted_status):
                    continue
                rows.append((command, record, state))
        page, following = _ssm_page(rows, max_results, token)
        invocations = []
        for command, record, state in page:
            stdout_url, stderr_url = fidelity.ssm_output_urls(command, record)
            entry: dict[str, Any] = {
                "CommandId": command.command_id,
                "InstanceId": record.instance_id,
                "InstanceName": "",
                "Comment": command.comment,
                "DocumentName": command.document_name,
                "RequestedDateTime": record.requested,
                "Status": state.status,
                "StatusDetails": state.details,
                "TraceOutput": "",
                "StandardOutputUrl": stdout_url,
                "StandardErrorUrl": stderr_url,
                "CommandPlugins": [],
                "ServiceRole": command.service_role_arn,
                "CloudWatchOutputConfig": _ssm_cloudwatch(command),
            }
            if details:
                ran = state.started is not None and state.details != "DeliveryTimedOut"
                plugin: dict[str, Any] = {
                    "Name": record.plugin,
                    "Status": state.status,
                    "StatusDetails": state.details,
                    "ResponseCode": state.code,
                    "Output": record.outcome.stdout[:SSM_PLUGIN_OUTPUT_LIMIT] if ran and state.terminal else "",
                    "StandardOutputUrl": stdout_url,
                    "StandardErrorUrl": stderr_url,
                    "OutputS3BucketName": command.output_s3_bucket_name,
                    "OutputS3KeyPrefix": command.output_s3_key_prefix,
                }
                if state.started is not None:
                    plugin["ResponseStartDateTime"] = state.started
                if state.ended is not None and state.started is not None:
                    plugin["ResponseFinishDateTime"] = state.ended
                entry["CommandPlugins"] = [plugin]
            invocations.append(entry)
        result: dict[str, Any] = {"CommandInvocations": invocations}
        if following is not None:
            result["NextToken"] = following
        return ActionResult(result)

    return list_command_invocations


def _ssm_describe_instance_information(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_instance_information(self: Any) -> ActionResult:
        """E49. DescribeInstanceInformation - moto does not implement it.

        "DescribeInstanceInformation": "Provides information about one or more of your managed nodes, including the
        operating system platform, SSM Agent version, association status, and IP address. This operation does not
        return information for nodes that are either Stopped or Terminated. If you specify one or more node IDs, the
        operation returns information for those managed nodes. If you don't specify node IDs, it returns information
        for all your managed nodes. If you specify a node ID that isn't valid or a node that you don't own, you
        receive an error."; MaxResults "The maximum number of items to return for this call. The call also returns a
        token that you can specify in a subsequent call to get the next set of results. The default value is 10
        items." (Minimum 5, maximum 50); errors InvalidInstanceId, InvalidFilterKey, InvalidNextToken,
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeInstanceInformation.html;
        "InstanceInformation": PingStatus "Connection status of SSM Agent." (Online | ConnectionLost | Inactive),
        LastPingDateTime "The date and time when the agent last pinged the Systems Manager service.",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html.

        Answered from the registry: every EC2 instance of the Region in `pending` or `running` that is a managed node
        (all unless `unmanage`), PingStatus Online (LastPingDateTime the fidelity clock) or ConnectionLost since
        `lose_agent` (LastPingDateTime that moment); Filters InstanceIds and PingStatus (and the legacy
        InstanceInformationFilterList with key InstanceIds). Assumed (the text does not say which ids are "not valid"):
        an id that is no instance of the Region is InvalidInstanceId; an instance of the account that is stopped,
        terminated or not managed is simply absent (the usual way to tell a managed node). AgentVersion
        (`ssm_agent_version`), PlatformName and PlatformVersion are placeholders."""
        max_results = self._get_int_param("MaxResults") or SSM_INSTANCE_INFORMATION_DEFAULT
        token = self._get_param("NextToken")
        if not 5 <= max_results <= SSM_INSTANCE_INFORMATION_MAX:
            raise _ssm_error("ValidationException", f"MaxResults must be between 5 and {SSM_INSTANCE_INFORMATION_MAX}.")
        wanted_ids: list[str] = []
        wanted_ping: list[str] = []
        for item in self._get_param("Filters") or []:
            if item.get("Key") == "InstanceIds":
                wanted_ids.extend(item.get("Values") or [])
            elif item.get("Key") == "PingStatus":
                wanted_ping.extend(item.get("Values") or [])
            else:
                raise _ssm_error("InvalidFilterKey", f"Filter key {item.get('Key')!r} is not modelled by the fidelity")
        for item in self._get_param("InstanceInformationFilterList") or []:
            if item.get("key") != "InstanceIds":
                raise _ssm_error("InvalidFilterKey", f"Filter key {item.get('key')!r} is not modelled by the fidelity")
            wanted_ids.extend(item.get("valueSet") or [])
        unknown = [i for i in wanted_ids if _ssm_ec2_instance(self.current_account, self.region, i) is None]
        if unknown:
            raise _ssm_error("InvalidInstanceId", f"Instance ids {unknown} are not valid.")
        now = fidelity.now()
        nodes = []
        for instance in ec2_backends[self.current_account][self.region].all_instances():
            node = fidelity.ssm_node(instance.id)
            if not node.managed or instance.state not in SSM_LISTED_INSTANCE_STATES:
                continue
            if wanted_ids and instance.id not in wanted_ids:
                continue
            ping = "ConnectionLost" if node.lost_at is not None else "Online"
            if wanted_ping and ping not in wanted_ping:
                continue
            windows = str(instance.platform or "").lower() == "windows"
            nodes.append(
                {
                    "InstanceId": instance.id,
                    "PingStatus": ping,
                    "LastPingDateTime": node.lost_at or now,
                    "AgentVersion": fidelity.ssm_agent_version,
                    "IsLatestVersion": True,
                    "PlatformType": "Windows" if windows else "Linux",
                    "PlatformName": "Microsoft Windows Server" if windows else "Amazon Linux",
                    "PlatformVersion": "2022" if windows else "2023",
                    "ResourceType": "EC2Instance",
                    "IPAddress": instance.private_ip,
                    "ComputerName": f"{instance.id}.{self.region}.compute.internal",
                }
            )
        page, following = _ssm_page(nodes, max_results, token)
        result: dict[str, Any] = {"InstanceInformationList": page}
        if following is not None:
            result["NextToken"] = following
        return ActionResult(result)

    return describe_instance_information


def _ssm_filter_time(value: str) -> datetime:
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as error:
        raise _ssm_error("InvalidFilterValue", f"Invalid timestamp {value!r}") from error


def _ssm_list_commands(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def list_commands(self: Any) -> ActionResult:
        """E48. ListCommands honours Filters, MaxResults and NextToken (moto ignores all three and answers one page).

        "ListCommands": MaxResults "(Optional) The maximum number of items to return for this call. The call also
        returns a token that you can specify in a subsequent call to get the next set of results." (1-50); Filters
        "(Optional) One or more filters. Use a filter to return a more specific list of results."; errors
        InvalidCommandId, InvalidInstanceId, InvalidFilterKey, InvalidNextToken,
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommands.html; "CommandFilter":
        "InvokedAfter: Specify a timestamp to limit your results. For example, specify 2024-07-07T00:00:00Z to see a
        list of command executions occurring July 7, 2021, and later."; "InvokedBefore: ... to see a list of command
        executions from before July 7, 2021."; "Status: Specify a valid command status to see a list of all command
        executions with that status. ... The status values you can specify for ListCommands are: Pending InProgress
        Success Cancelled Failed TimedOut (this includes both Delivery and Execution time outs) AccessDenied
        DeliveryTimedOut ExecutionTimedOut Incomplete NoInstancesInTag LimitExceeded"; "DocumentName: Specify name of
        the Amazon Web Services Systems Manager document (SSM document) for which you want to see command execution
        results."; "ExecutionStage: ... Executing: Returns a list of command executions that are currently still
        running. Complete: Returns a list of command executions that have already completed.",
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandFilter.html.

        Here the filters apply to the command's state at the fidelity clock (E44): Status matches the Status or the
        StatusDetails; InvokedAfter includes its moment, InvokedBefore excludes it (as the examples read); Executing
        is Pending or InProgress, Complete everything else. Assumed (not documented): MaxResults defaults to 50; the
        order is the order the commands were sent; InstanceId with Status=Pending is not refused (AWS says it can't be
        combined; no error code is documented)."""
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        max_results = self._get_int_param("MaxResults") or SSM_LIST_INVOCATIONS_MAX
        token = self._get_param("NextToken")
        if not 1 <= max_results <= SSM_LIST_INVOCATIONS_MAX:
            raise _ssm_error("ValidationException", f"MaxResults must be between 1 and {SSM_LIST_INVOCATIONS_MAX}.")
        answers = [command.response_object() for command in self.ssm_backend.list_commands(command_id, instance_id)]
        for item in self._get_param("Filters") or []:
            key, value = item.get("key"), str(item.get("value", ""))
            if key == "Status":
                answers = [a for a in answers if value in (a["Status"], a["StatusDetails"])]
            elif key == "DocumentName":
                answers = [a for a in answers if a["DocumentName"] == value]
            elif key == "InvokedAfter":
                moment = _ssm_filter_time(value)
                answers = [a for a in answers if _aware(a["RequestedDateTime"]) >= moment]
            elif key == "InvokedBefore":
                moment = _ssm_filter_time(value)
                answers = [a for a in answers if _aware(a["RequestedDateTime"]) < moment]
            elif key == "ExecutionStage" and value in ("Executing", "Complete"):
                running = ("Pending", "InProgress")
                answers = [a for a in answers if (a["Status"] in running) == (value == "Executing")]
            else:
                raise _ssm_error("InvalidFilterKey", f"Filter {key!r}={value!r} is not valid for ListCommands.")
        page, following = _ssm_page(answers, max_results, token)
        result: dict[str, Any] = {"Commands": page}
        if following is not None:
            result["NextToken"] = following
        return ActionResult(result)

    return list_commands


# Documented limits of the SendCommand request (E42): the API model's list sizes, lengths and patterns.
SSM_MAX_INSTANCE_IDS = 50
SSM_MAX_TARGETS = 5
SSM_MAX_TARGET_VALUES = 50
SSM_MAX_COMMENT = 100
SSM_MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
SSM_MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")


def _ssm_check_send_command(kwargs: dict[str, Any]) -> None:
    """E42 (request limits only). "SendCommand": InstanceIds "... though you can specify up to 50 IDs."; a Target's
    Values "Depending on the type of target, the maximum number of values for a key might be lower than the global
    maximum of 50."; and the request shapes' limits (not prose): InstanceIdList at most 50 items, Targets at most 5,
    TargetValues at most 50, Comment at most 100 characters, MaxConcurrency pattern
    `^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`, MaxErrors pattern `^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html (read from botocore's
    ssm/2014-11-06/service-2.json, which the pages are generated from) - botocore checks none of these client-side and
    moto accepts anything (60 ids, 6 targets, MaxConcurrency "abc"). Here the request fails with ValidationException
    in AWS's usual "1 validation error detected: ..." wording (the wording is assumed). Not built: the document
    checks of E42 (InvalidDocument, InvalidDocumentVersion, InvalidParameters)."""
    checks = [
        ("instanceIds", len(kwargs.get("instance_ids") or []) <= SSM_MAX_INSTANCE_IDS, f"<= {SSM_MAX_INSTANCE_IDS}"),
        ("targets", len(kwargs.get("targets") or []) <= SSM_MAX_TARGETS, f"<= {SSM_MAX_TARGETS}"),
        ("comment", len(kwargs.get("comment") or "") <= SSM_MAX_COMMENT, f"<= {SSM_MAX_COMMENT}"),
        ("maxConcurrency", bool(SSM_MAX_CONCURRENCY.match(str(kwargs.get("max_concurrency") or "50"))), "the pattern"),
        ("maxErrors", bool(SSM_MAX_ERRORS.match(str(kwargs.get("max_errors") or "0"))), "the pattern"),
    ]
    for target in kwargs.get("targets") or []:
        values = target.get("Values") or []
        checks.append(("targets.member.values", len(values) <= SSM_MAX_TARGET_VALUES, f"<= {SSM_MAX_TARGET_VALUES}"))
    for field, ok, constraint in checks:
        if not ok:
            raise _ssm_error(
                "ValidationException",
                f"1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}",
            )


_SSM_REQUEST = threading.local()  # E42, E50: SendCommand parameters moto's parser drops, response -> backend patch


def _ssm_cloudwatch(command: Command) -> dict[str, Any]:
    """E50: CloudWatchOutputConfig as sent ("CloudWatchOutputConfig": CloudWatchLogGroupName, CloudWatchOutputEnabled,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CloudWatchOutputConfig.html); when none was
    sent, disabled with an empty group (assumed). Nothing is written to CloudWatch Logs (not modelled)."""
    given = getattr(command, "fidelity_cloudwatch", None) or {}
    return {
        "CloudWatchLogGroupName": str(given.get("CloudWatchLogGroupName", "")),
        "CloudWatchOutputEnabled": bool(given.get("CloudWatchOutputEnabled", False)),
    }


def _ssm_check_document(
    fidelity: MotoFidelity, backend: Any, name: str | None, version: str | None, kwargs: dict[str, Any]
) -> None:
    """E42 (document checks). "SendCommand": DocumentName "If you specify a document name or ARN that hasn't been shared
    with your account, you receive an InvalidDocument error."; DocumentVersion "You can specify $DEFAULT, $LATEST, or a
    specific version number."; Errors: "InvalidDocument The specified SSM document doesn't exist.",
    "InvalidDocumentVersion The document version isn't valid or doesn't exist.", "InvalidParameters You must specify
    values for all required parameters in the Amazon Web Services Systems Manager document (SSM document). You can only
    supply values to parameters defined in the SSM document.",
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html - moto accepts any name,
    version and parameters (and holds no AWS-owned documents).

    Here the document is an account document of moto's store (its versions, its content's `parameters`; one with a
    `default` is optional) or one of `fidelity.ssm_aws_documents` (versions $DEFAULT, $LATEST, 1); a name may be given
    as its ARN (`arn:aws:ssm:<region>::document/<name>` for AWS-owned ones). Not modelled: documents shared from another
    account, document types (an Automation document is accepted), allowed patterns of values."""
    text = str(name or "")
    short = text.split(":document/", 1)[1] if text.startswith("arn:") and ":document/" in text else text
    parameters = kwargs.get("parameters") or {}
    declared: dict[str, bool]
    if short in fidelity.ssm_aws_documents and short not in backend._documents:
        if version and version not in SSM_AWS_DOCUMENT_VERSIONS:
            raise _ssm_error("InvalidDocumentVersion", "The document version isn't valid or doesn't exist.")
        declared = fidelity.ssm_aws_documents[short]
    else:
        documents = backend._documents.get(short)
        if documents is None:
            raise _ssm_error("InvalidDocument", "The specified SSM document doesn't exist.")
        if not version or version == "$DEFAULT":
            document = documents.get_default_version()
        elif version == "$LATEST":
            document = documents.get_latest_version()
        else:
            document = documents.find_by_version(version)
        if document is None:
            raise _ssm_error("InvalidDocumentVersion", "The document version isn't valid or doesn't exist.")
        specs = (document.content_json or {}).get("parameters") or {}
        declared = {key: not (isinstance(spec, dict) and "default" in spec) for key, spec in specs.items()}
    unknown = sorted(set(parameters) - set(declared))
    missing = sorted(key for key, required in declared.items() if required and key not in parameters)
    if unknown or missing:
        raise _ssm_error(
            "InvalidParameters",
            "You must specify values for all required parameters in the Amazon Web Services Systems Manager document "
            "(SSM document). You can only supply values to parameters defined in the SSM document."
            f" (unknown: {unknown}, missing: {missing})",
        )


def _ssm_cancel_command(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def cancel_command(self: Any) -> ActionResult:
        """E51. CancelCommand - moto does not implement it. "CancelCommand": "Attempts to cancel the command specified
        by the Command ID. There is no guarantee that the command will be terminated and the underlying process
        stopped."; InstanceIds "(Optional) A list of managed node IDs on which you want to cancel the command. If not
        provided, the command is canceled on every node on which it was requested."; errors InvalidCommandId,
        InvalidInstanceId, DuplicateInstanceId; an empty answer,
        https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CancelCommand.html; "Cancelled: The
        command was terminated before it was completed. This is a terminal state." (API_CommandInvocation).

        Here every invocation not terminal at the fidelity clock (of the InstanceIds given, else all) is
        Cancelled/Cancelled at once (assumed: no Cancelling phase, the attempt always succeeds); a command cancelled as
        a whole is Cancelled once terminal (E44). An instance id the command does not have is InvalidInstanceId
        (assumed)."""
        command_id = self._get_param("CommandId")
        instance_ids = self._get_param("InstanceIds") or []
        command = self.ssm_backend.get_command_by_id(command_id)  # InvalidCommandId when unknown
        known = {record.instance_id for record in fidelity.ssm_invocations.get(command.command_id, [])}
        strangers = [i for i in instance_ids if i not in known]
        if strangers:
            raise _ssm_error("InvalidInstanceId", f"Instances {strangers} are not targets of command {command_id}.")
        fidelity.ssm_cancel(command.command_id, instance_ids)
        return ActionResult({})

    return cancel_command


def ssm_event_entries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """E52: `MotoFidelity.ssm_events()` as PutEvents entries (Source, DetailType, Resources, Detail, Time), for a tier-3
    emitter putting them on the local default bus as `tests/e2e/scenario.py`'s `put_events` does (EventBridge sets
    `id`, `account` and `region` there)."""
    return [
        {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Resources": list(event["resources"]),
            "Detail": json.dumps(event["detail"]),
            "Time": datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
        }
        for event in events
    ]


# ---------------------------------------------------------------------------------------------------------------
# IAM/STS: AssumeRole evaluates the role's trust policy (I1); role sessions' policies on EC2's mutating calls (I2)
# ---------------------------------------------------------------------------------------------------------------

# I2: the EC2 calls of the modules that change something. Reads (Describe*, ListImagesInRecycleBin) are left alone:
# EC2 authorises them on "*", with no resource-level permissions, so the module policies allow them on "*".
EC2_MUTATING_ACTIONS = frozenset(
    {
        "CreateImage",
        "CreateSnapshot",
        "CreateSnapshots",
        "CreateTags",
        "DeleteSnapshot",
        "DeregisterImage",
        "StartInstances",
        "StopInstances",
        # restore tests
        "RunInstances",
        "TerminateInstances",
        "CreateVolume",
        "DeleteVolume",
    }
)
# EC2 resource types by id prefix, and those whose ARN has an empty account field (Service Authorization Reference,
# "Actions, resources, and condition keys for Amazon EC2", Resource types: arn:${Partition}:ec2:${Region}::image/
# ${ImageId}, ...::snapshot/${SnapshotId}, arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId},
# ...:volume/${VolumeId}; https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html).
EC2_RESOURCE_TYPES = {
    "ami": "image",
    "snap": "snapshot",
    "i": "instance",
    "vol": "volume",
    "subnet": "subnet",
    "sg": "security-group",
    "eni": "network-interface",
}
EC2_UNOWNED_ARN_TYPES = frozenset({"image", "snapshot"})
# The condition operators evaluated (IAM User Guide, "IAM JSON policy elements: Condition operators",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html); any
# other operator (Numeric*, Date*, IpAddress, Binary*) or a policy variable raises `UnmodelledPolicy`.
_NEGATED_OPERATORS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_CONDITION_OPERATOR = re.compile(
    r"^(?:(?P<set>ForAllValues|ForAnyValue):)?(?P<name>[A-Za-z]+?)(?P<if_exists>IfExists)?$"
)


class UnmodelledPolicy(RuntimeError):
    """A policy element I1/I2 do not evaluate: the request fails (HTTP 500 through the server) instead of being
    allowed or denied by a guess."""


@dataclass(frozen=True)
class IamDecision:
    """One authorisation I1 or I2 made: who (the session ARN), in which account, what, on which resource."""

    principal: str
    account: str
    action: str
    resource: str
    allowed: bool


@dataclass(frozen=True)
class _Session:
    account: str
    partition: str
    role_arn: str
    session_arn: str


class IamFidelity:
    """State of I1/I2: the organization of each account (`join_organization`, for `aws:PrincipalOrgID`) and the
    decisions made (`decisions`, CloudTrail's view: which session did what where, allowed or not)."""

    def __init__(self) -> None:
        self.organizations: dict[str, str] = {}
        self.decisions: list[IamDecision] = []

    def join_organization(self, account_id: str, organization_id: str) -> None:
        self.organizations[account_id] = organization_id

    def organization_of(self, account_id: str) -> str | None:
        """The organization `join_organization` set, else the one moto's Organizations has the account in (as its
        management account or a member)."""
        if account_id in self.organizations:
            return self.organizations[account_id]
        owner = organizations_backends.master_accounts.get(account_id)
        backend = organizations_backends[owner[0]][owner[1]] if owner else None
        if backend is None:
            backend = next(
                (
                    candidate
                    for partitions in (organizations_backends.get(account_id),)
                    if partitions is not None
                    for candidate in partitions.values()
                    if candidate.org is not None
                ),
                None,
            )
        return str(backend.org.id) if backend is not None and backend.org is not None else None

    def decisions_of(self, action: str, *, allowed: bool | None = None) -> list[IamDecision]:
        return [d for d in self.decisions if d.action == action and (allowed is None or d.allowed == allowed)]

    def forget(self) -> None:
        """The decisions go with the resources; the organizations are the accounts' setup and stay."""
        self.decisions.clear()


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, dict)) else list(value or [])


def _policy_statements(document: str | dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(document, str):
        text = document.strip()
        # IAM hands documents back URL-encoded; moto stores what it was given, either way.
        document = json.loads(urllib.parse.unquote(text) if text.startswith("%") else text)
    return [dict(statement) for statement in _listed(document.get("Statement"))]


@functools.lru_cache(maxsize=4096)
def _iam_wildcard(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """`*` any run, `?` one character, everything else literal (IAM's wildcards in actions, resources and the
    *Like operators)."""
    if "${" in pattern:
        raise UnmodelledPolicy(f"policy variables are not evaluated: {pattern!r}")
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def _arn_like(value: str, pattern: str) -> bool:
    """ArnEquals/ArnLike: each of the six colon-delimited parts matched on its own, wildcards allowed."""
    values, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(values) == len(patterns) == 6 and all(
        _iam_wildcard(p, True).match(v) for v, p in zip(values, patterns, strict=True)
    )


_POSITIVE_TESTS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, pattern: value == pattern,
    "StringEqualsIgnoreCase": lambda value, pattern: value.lower() == pattern.lower(),
    "StringLike": lambda value, pattern: bool(_iam_wildcard(pattern, True).match(value)),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda value, pattern: value.lower() == pattern.lower(),
}


def _condition_holds(operator: str, key: str, patterns: list[str], context: dict[str, list[str]]) -> bool:
    """One operator/key pair of a Condition block. A key missing from the request context fails the positive
    operators and passes the negated ones; `...IfExists` passes on a missing key; `ForAllValues` passes on a missing
    or empty key and `ForAnyValue` fails (Condition operators; "Set operators for multivalued context keys")."""
    parsed = _CONDITION_OPERATOR.match(operator)
    if parsed is None:
        raise UnmodelledPolicy(f"condition operator {operator!r}")
    name, set_operator, if_exists = parsed["name"], parsed["set"], parsed["if_exists"]
    patterns = [str(pattern) for pattern in patterns]
    values = context.get(key.lower())
    if name == "Null":
        if set_operator or if_exists:
            raise UnmodelledPolicy(f"condition operator {operator!r}")
        return any((values is None) == (pattern.lower() == "true") for pattern in patterns)
    negated = name in _NEGATED_OPERATORS
    test = _POSITIVE_TESTS.get(_NEGATED_OPERATORS.get(name, name))
    if test is None:
        raise UnmodelledPolicy(f"condition operator {operator!r}")
    for pattern in patterns:
        if "${" in pattern:
            raise UnmodelledPolicy(f"policy variables are not evaluated: {pattern!r}")

    def matches(value: str) -> bool:
        hit = any(test(value, pattern) for pattern in patterns)
        return not hit if negated else hit

    if set_operator == "ForAllValues":
        return all(matches(value) for value in values or [])
    if set_operator == "ForAnyValue":
        return any(matches(value) for value in values or [])
    if values is None:
        return bool(if_exists) or negated
    return all(matches(value) for value in values) if negated else any(matches(value) for value in values)


def _conditions_hold(block: dict[str, dict[str, Any]], context: dict[str, list[str]]) -> bool:
    return all(
        _condition_holds(operator, key, _listed(patterns), context)
        for operator, keys in block.items()
        for key, patterns in keys.items()
    )


def _statement_covers(statement: dict[str, Any], field: str, value: str, case_sensitive: bool) -> bool:
    """Action/NotAction, Resource/NotResource; a statement without either (a trust policy's) covers everything."""
    if field in statement:
        return any(_iam_wildcard(str(p), case_sensitive).match(value) for p in _listed(statement[field]))
    if f"Not{field}" in statement:
        return not any(_iam_wildcard(str(p), case_sensitive).match(value) for p in _listed(statement[f"Not{field}"]))
    return field == "Resource"


def _principal_named(statement: dict[str, Any], session: _Session) -> str | None:
    """How a trust statement's Principal names the caller: `role` (its role or session ARN, or "*"), `account`
    (its account id or root ARN), or None (another principal, or a service/federated one)."""
    if "NotPrincipal" in statement:
        raise UnmodelledPolicy("NotPrincipal is not evaluated")
    principal = statement.get("Principal")
    if principal == "*":
        return "role"
    identities = principal.get("AWS") if isinstance(principal, dict) else None
    for identity in _listed(identities):
        if identity in ("*", session.role_arn, session.session_arn):
            return "role"
        if identity in (session.account, f"arn:{session.partition}:iam::{session.account}:root"):
            return "account"
    return None


def _decide(
    documents: list[str | dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, list[str]],
    session: _Session | None = None,
) -> tuple[str, set[str]]:
    """("deny" | "allow" | "implicit", how the allowing statements named the caller): an explicit Deny wins over
    every Allow, and nothing allowed is an implicit deny ("Policy evaluation logic", How AWS enforcement code logic
    evaluates requests). With `session`, the documents are trust policies and each statement's Principal must
    name the caller."""
    decision, named_by = "implicit", set()
    for document in documents:
        for statement in _policy_statements(document):
            named = _principal_named(statement, session) if session is not None else "identity"
            if named is None or not _statement_covers(statement, "Action", action, False):
                continue
            if not _statement_covers(statement, "Resource", resource, True):
                continue
            if not _conditions_hold(statement.get("Condition", {}), context):
                continue
            if statement.get("Effect") == "Deny":
                return "deny", set()
            decision = "allow"
            named_by.add(named)
    return decision, named_by


def _session_of(access_key: str, account: str, partition: str) -> _Session | None:
    """The assumed-role session an access key belongs to, or None (an IAM user's or the emulator's dummy key)."""
    assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
    if assumed is None:
        return None
    return _Session(account=account, partition=partition, role_arn=assumed.role_arn, session_arn=assumed.arn)


def _role(account: str, partition: str, role_arn: str) -> Role | None:
    try:
        return iam_backends[account][partition].get_role_by_arn(role_arn)
    except IamNotFound:
        return None


def _identity_documents(role: Role) -> list[str | dict[str, Any]]:
    """The role's inline and attached managed policies. A permissions boundary would narrow them: not modelled."""
    if role.permissions_boundary_arn:
        raise UnmodelledPolicy(f"permissions boundary of {role.arn} is not evaluated")
    managed = [
        version.document
        for policy in role.managed_policies.values()
        for version in policy.versions
        if version.is_default
    ]
    return [*role.policies.values(), *managed]


def _assume_role_response(fidelity: MotoFidelity, original: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    def assume_role(self: TokenResponse) -> ActionResult:
        """I1: AssumeRole by a role session into a role that exists is decided as AWS decides it: the role's trust
        policy, in the role's own account, must allow the caller (Principal: its role ARN, session ARN, account or
        "*"; Condition on sts:ExternalId, sts:RoleSessionName, aws:PrincipalArn, aws:PrincipalOrgID,
        aws:PrincipalAccount, aws:ResourceOrgID), and the caller's identity policies must allow sts:AssumeRole on
        the RoleArn (cross-account both are needed; in the same account a trust policy naming the role itself is enough,
        while one naming the account delegates to the identity policies); an explicit Deny in either wins.
        Otherwise `AccessDenied` "User: <session ARN> is not authorized to perform: sts:AssumeRole on resource:
        <role ARN>" (IAM User Guide, "Cross-account policy evaluation logic",
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html;
        "Policy evaluation for requests within a single account"; "AWS global condition context keys"
        (aws:PrincipalArn of a role session is the role's ARN; aws:PrincipalOrgID; aws:ResourceOrgID, "the
        identifier of the organization in AWS Organizations to which the resource being requested belongs"),
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html; "How to use an
        external ID when granting access to your AWS resources to a third party"). moto assumes any role for
        anyone (its optional IAM enforcement reads the trust policy in the caller's account only).

        Left as moto has it: callers that are no role session (the emulator's dummy key, with which Terraform and
        the harness act) and roles that do not exist in an account outside any organization (moto lets a session
        reach any account through a role ARN: Terraform's OrganizationAccountAccessRole). In an account of an
        organization (moto's Organizations, or `join_organization`) a role that does not exist is refused with the
        same AccessDenied: AWS answers a missing role as a trust that does not allow the caller."""
        partition = get_partition(self.region)
        session = _session_of(self.get_access_key(), self.current_account, partition)
        role_arn = self._get_param("RoleArn")
        target_account = role_arn.split(":")[4] if role_arn and role_arn.count(":") >= 5 else ""
        target = _role(target_account, partition, role_arn) if session is not None else None
        if session is None:
            return original(self)
        if target is None:
            if fidelity.iam.organization_of(target_account) is None:
                return original(self)
            # A role that does not exist in an account of an organization (moto's Organizations made the account,
            # and its OrganizationAccountAccessRole): refused as AWS refuses it, with the same answer.
            fidelity.iam.decisions.append(
                IamDecision(session.session_arn, target_account, "sts:AssumeRole", role_arn, False)
            )
            raise AccessDeniedError(session.session_arn, f"sts:AssumeRole on resource: {role_arn}")
        context = {
            "aws:principalarn": [session.role_arn],
            "aws:principalaccount": [session.account],
            "aws:principaltype": ["AssumedRole"],
            "sts:rolesessionname": [self._get_param("RoleSessionName") or ""],
        }
        external_id = self._get_param("ExternalId")
        if external_id is not None:
            context["sts:externalid"] = [external_id]
        organization = fidelity.iam.organization_of(session.account)
        if organization is not None:
            context["aws:principalorgid"] = [organization]
        resource_organization = fidelity.iam.organization_of(target_account)
        if resource_organization is not None:
            context["aws:resourceorgid"] = [resource_organization]
        trust, named_by = _decide([target.assume_role_policy_document], "sts:AssumeRole", role_arn, context, session)
        caller = _role(session.account, partition, session.role_arn)
        identity, _ = _decide(_identity_documents(caller) if caller else [], "sts:AssumeRole", role_arn, context)
        trusted_alone = session.account == target_account and "role" in named_by
        allowed = trust == "allow" and identity != "deny" and (identity == "allow" or trusted_alone)
        decision = IamDecision(session.session_arn, target_account, "sts:AssumeRole", role_arn, allowed)
        fidelity.iam.decisions.append(decision)
        if not allowed:
            raise AccessDeniedError(session.session_arn, f"sts:AssumeRole on resource: {role_arn}")
        return original(self)

    return assume_role


def _ec2_arn(partition: str, region: str, account: str, resource_id: str) -> str:
    kind = EC2_RESOURCE_TYPES.get(resource_id.split("-", 1)[0])
    if kind is None:
        raise UnmodelledPolicy(f"no ARN known for EC2 resource {resource_id!r}")
    owner = "" if kind in EC2_UNOWNED_ARN_TYPES else account
    return f"arn:{partition}:ec2:{region}:{owner}:{kind}/{resource_id}"


def _exists(backend: Any, resource_id: str) -> bool:
    kind = EC2_RESOURCE_TYPES.get(resource_id.split("-", 1)[0])
    collections = {
        "image": backend.amis,
        "snapshot": backend.snapshots,
        "volume": backend.volumes,
    }
    if kind == "instance":
        return backend.get_instance_by_id(resource_id) is not None
    if kind == "security-group":
        return backend.get_security_group_from_id(resource_id) is not None
    lookups = {"subnet": backend.get_subnet, "network-interface": backend.get_network_interface}
    if kind in lookups:
        try:
            lookups[kind](resource_id)
        except EC2ClientError:
            return False
        return True
    return resource_id in collections.get(kind or "", {})


def _tag_context(prefix: str, tags: Mapping[str, str]) -> dict[str, list[str]]:
    context = {f"{prefix}/{key}".lower(): [value] for key, value in tags.items()}
    if prefix == "aws:RequestTag" and tags:
        context["aws:tagkeys"] = list(tags)
    return context


_Authorisation = tuple[str, str, dict[str, list[str]]]


def _ec2_authorisations(request: EC2Response, partition: str, account: str) -> list[_Authorisation]:
    """(action, resource ARN, request context) of each authorisation EC2 makes for the request: every existing
    resource with its tags (aws:ResourceTag/*), every resource the call creates (`<type>/*`) with the tags of its
    TagSpecification (aws:RequestTag/*, aws:TagKeys), and for those tags an ec2:CreateTags with ec2:CreateAction
    (EC2 User Guide, "Grant permission to tag Amazon EC2 resources during creation",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html)."""
    action = request._get_action()
    region = request.region
    backend = ec2_backends[account][region]

    def existing(resource_id: str, extra: Mapping[str, list[str]] | None = None) -> list[_Authorisation]:
        if not resource_id or not _exists(backend, resource_id):
            return []  # moto answers NotFound, as EC2 does
        context = _tag_context("aws:ResourceTag", backend.tags.get(resource_id, {}))
        context.update(extra or {})
        return [(f"ec2:{action}", _ec2_arn(partition, region, account, resource_id), context)]

    def created(kind: str, tags: Mapping[str, str]) -> list[_Authorisation]:
        arn = f"arn:{partition}:ec2:{region}:{'' if kind in EC2_UNOWNED_ARN_TYPES else account}:{kind}/*"
        requested = _tag_context("aws:RequestTag", tags)
        tagging = [("ec2:CreateTags", arn, {**requested, "ec2:createaction": [action]})] if tags else []
        return [(f"ec2:{action}", arn, requested), *tagging]

    specified = request._parse_tag_specification() if action != "CreateTags" else {}
    if action == "CreateImage":
        return [
            *existing(request._get_param("InstanceId")),
            *created("image", specified.get("image", {})),
            *created("snapshot", specified.get("snapshot", {})),
        ]
    if action == "CreateSnapshot":
        return [*existing(request._get_param("VolumeId")), *created("snapshot", specified.get("snapshot", {}))]
    if action == "CreateSnapshots":
        instance_id = (request._get_param("InstanceSpecification", {}) or {}).get("InstanceId", "")
        instance = backend.get_instance_by_id(instance_id) if instance_id else None
        volumes = [mapping.volume_id for _, mapping in instance.get_block_device_mapping] if instance else []
        return [
            *existing(instance_id),
            *(authorisation for volume_id in volumes for authorisation in existing(volume_id)),
            *created("snapshot", specified.get("snapshot", {})),
        ]
    if action == "CreateTags":
        tags = {tag["Key"]: tag.get("Value", "") for tag in request._get_param("Tags", [])}
        requested = _tag_context("aws:RequestTag", tags)
        resource_ids = request._get_param("Resources", [])
        return [item for resource_id in resource_ids for item in existing(resource_id, requested)]
    if action == "RunInstances":
        return _run_instances_authorisations(request, specified, existing, created, backend, partition)
    if action == "CreateVolume":
        return [
            *created("volume", specified.get("volume", {})),
            *existing(request._get_param("SnapshotId") or ""),
        ]
    if action == "DeleteVolume":
        return existing(request._get_param("VolumeId"))
    if action == "DeleteSnapshot":
        return existing(request._get_param("SnapshotId"))
    if action == "DeregisterImage":
        return existing(request._get_param("ImageId"))
    return [item for instance_id in request._get_param("InstanceIds", []) for item in existing(instance_id)]


def _run_instances_authorisations(
    request: EC2Response,
    specified: Mapping[str, Mapping[str, str]],
    existing: Callable[[str], list[_Authorisation]],
    created: Callable[[str, Mapping[str, str]], list[_Authorisation]],
    backend: Any,
    partition: str,
) -> list[_Authorisation]:
    """I2 for RunInstances: the resources EC2 authorises ec2:RunInstances on (Service Authorization Reference,
    "Actions, resources, and condition keys for Amazon EC2", RunInstances: image*, instance*, network-interface*,
    security-group*, subnet*, volume*, key-pair, snapshot, ...,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html): the AMI and any snapshot
    of BlockDeviceMappings with their tags (aws:ResourceTag), the subnet(s), the security groups and existing network
    interfaces named, the key pair (by name), and the instance, its volumes and a new network interface it creates
    (`<type>/*` with aws:RequestTag/aws:TagKeys from their TagSpecification, and ec2:CreateTags with
    ec2:CreateAction=RunInstances for the tags; EC2 User Guide, "Grant permission to tag Amazon EC2 resources during
    creation"). Not modelled: the VPC's default security group when none is named, launch templates, placement
    groups, capacity reservations."""
    interfaces = request._get_param("NetworkInterfaces", []) or []
    subnets = [request._get_param("SubnetId") or "", *(str(n.get("SubnetId", "")) for n in interfaces)]
    groups = [
        *(request._get_param("SecurityGroupIds", []) or []),
        *(str(g) for n in interfaces for g in (n.get("Groups") or [])),
    ]
    enis = [str(n["NetworkInterfaceId"]) for n in interfaces if n.get("NetworkInterfaceId")]
    snapshots = [
        str(m["Ebs"]["SnapshotId"])
        for m in request._get_param("BlockDeviceMappings", []) or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    ]
    key_name = request._get_param("KeyName")
    key_pairs = []
    if key_name:
        key_pair = backend.key_pairs.get(key_name)
        tags = backend.tags.get(key_pair.id, {}) if key_pair is not None else {}
        arn = f"arn:{partition}:ec2:{request.region}:{backend.account_id}:key-pair/{key_name}"
        key_pairs = [("ec2:RunInstances", arn, _tag_context("aws:ResourceTag", tags))]
    new_interface = not interfaces or any(not n.get("NetworkInterfaceId") for n in interfaces)
    new_interfaces = created("network-interface", specified.get("network-interface", {})) if new_interface else []
    # ec2:AssociatePublicIpAddress, a condition key of the network-interface resource type of RunInstances (Service
    # Authorization Reference, list_amazonec2): the request's AssociatePublicIpAddress of the new interface, absent
    # from the context when the request does not say (the subnet's default then applies, which IAM does not see).
    public_ip = next((n["AssociatePublicIpAddress"] for n in interfaces if "AssociatePublicIpAddress" in n), None)
    if public_ip is not None and new_interfaces:
        action, arn, context = new_interfaces[0]
        # The query API sends the boolean as text ("false"), as moto hands it over.
        new_interfaces[0] = (action, arn, {**context, "ec2:associatepublicipaddress": [str(public_ip).lower()]})
    return [
        *existing(request._get_param("ImageId") or ""),
        *(item for snapshot_id in snapshots for item in existing(snapshot_id)),
        *(item for subnet_id in dict.fromkeys(s for s in subnets if s) for item in existing(subnet_id)),
        *(item for group_id in dict.fromkeys(groups) for item in existing(group_id)),
        *(item for eni_id in enis for item in existing(eni_id)),
        *key_pairs,
        *new_interfaces,
        *created("instance", specified.get("instance", {})),
        *created("volume", specified.get("volume", {})),
    ]


def _camel_to_snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def _ec2_authorized(fidelity: MotoFidelity, original: Callable[..., Any]) -> Callable[..., Any]:
    def handler(self: EC2Response) -> Any:
        """I2: a mutating EC2 call the modules make (`EC2_MUTATING_ACTIONS`), made with an assumed-role session
        whose role exists and has policies, is decided against those policies for every resource EC2 authorises
        (`_ec2_authorisations`): an explicit Deny first, then some Allow whose Action, Resource and Condition
        match; otherwise `UnauthorizedOperation` and nothing is done (EC2 Developer Guide, "Troubleshoot API
        request errors", Unauthorized operations,
        https://docs.aws.amazon.com/ec2/latest/devguide/query-api-troubleshooting.html; IAM User Guide, "Policy
        evaluation logic"). moto allows every call (its optional IAM enforcement checks actions against resource
        "*" and no conditions, so an Allow naming ARNs never matches and conditions always pass).

        Left as moto has it: the dummy key's calls, sessions of roles that do not exist or have no policy, reads,
        and the calls the modules do not make (`CopyImage`, `ModifySnapshotAttribute`, SSM)."""
        partition = get_partition(self.region)
        session = _session_of(self.get_access_key(), self.current_account, partition)
        role = _role(session.account, partition, session.role_arn) if session is not None else None
        documents = _identity_documents(role) if role is not None else []
        if session is None or not documents:
            return original(self)
        for ec2_action, arn, context in _ec2_authorisations(self, partition, session.account):
            decision, _ = _decide(documents, ec2_action, arn, context)
            made = IamDecision(session.session_arn, session.account, ec2_action, arn, decision == "allow")
            fidelity.iam.decisions.append(made)
            if decision != "allow":
                why = (
                    "with an explicit deny in an identity-based policy"
                    if decision == "deny"
                    else f"because no identity-based policy allows the {ec2_action} action"
                )
                raise EC2ClientError(
                    UNAUTHORIZED,
                    "You are not authorized to perform this operation. User: "
                    f"{session.session_arn} is not authorized to perform: {ec2_action} on resource: {arn} {why}",
                )
        return original(self)

    return handler


# ---------------------------------------------------------------------------------------------------------------
# Accounts of an organization: opt-in Regions (E53), service control policies (E54), account states and the
# Organizations list pages (E55)
# ---------------------------------------------------------------------------------------------------------------

# E53: "Default Regions - Regions launched before March 20, 2019 are enabled by default ... Default Regions cannot be
# enabled or disabled. Opt-in Regions - Regions launched after March 20, 2019 are disabled by default" (AWS Account
# Management Reference Guide, "Enable or disable AWS Regions in your account",
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html). The aws-cn and aws-us-gov
# partitions have no opt-in Regions, and "You can't describe or access the Regions of one type of account from
# another" ("AWS Regions", https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-regions.html).
DEFAULT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
    }
)
OPT_IN_NOT_REQUIRED = "opt-in-not-required"
OPTED_IN = "opted-in"
NOT_OPTED_IN = "not-opted-in"
REGION_FILTERS = ("endpoint", "opt-in-status", "region-name")
# E53 codes: EC2 answers `AuthFailure` "AWS was not able to validate the provided access credentials" in a Region the
# account has not enabled; the other services `InvalidClientTokenId` (AWS re:Post Knowledge Center, "How do I
# resolve the error 'AWS was not able to validate the provided access credentials'?",
# https://repost.aws/knowledge-center/iam-validate-access-credentials: "For Regions that are manually enabled,
# activate the Region in the account that makes the request and in the account that generates the credentials. If
# you don't activate the Region in both accounts, then you receive the InvalidClientTokenId error"; Account
# Management API Reference, Common Errors: InvalidClientTokenId "The X.509 certificate or AWS access key ID
# provided does not exist in our records", HTTP 403).
AUTH_FAILURE = "AuthFailure"
AUTH_FAILURE_MESSAGE = "AWS was not able to validate the provided access credentials"
INVALID_CLIENT_TOKEN = "InvalidClientTokenId"
INVALID_CLIENT_TOKEN_MESSAGE = "The security token included in the request is invalid."
# E54: the SCP policy type and the condition keys the SCP evaluation provides; any other key in an SCP statement that
# applies raises `UnmodelledPolicy` (its value would be missing, which passes the negated operators: a guess).
SCP_TYPE = "SERVICE_CONTROL_POLICY"
SCP_CONDITION_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principaltype",
        "aws:requestedregion",
        "aws:tagkeys",
        "ec2:createaction",
    }
)
SCP_CONDITION_KEY_PREFIXES = ("aws:resourcetag/", "aws:requesttag/")
# IAM action prefixes that differ from the boto3 service name.
IAM_PREFIXES = {"stepfunctions": "states", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}
# E55: account states and the closure timeline. CloseAccount: "While the close account request is in progress, Account
# status will indicate PENDING_CLOSURE. When the close account request completes, the status will change to
# SUSPENDED." (Organizations API Reference, CloseAccount,
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_CloseAccount.html); the State field: ACTIVE,
# SUSPENDED ("the account is unusable because AWS has restricted access"), PENDING_CLOSURE, CLOSED (the 90-day
# reinstatement window) and PENDING_ACTIVATION (Organizations User Guide, "Monitor the state of your AWS accounts",
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_account_state.html; What's New,
# "AWS Organizations now provides account state information for member accounts": "'SUSPENDED' for AWS-enforced
# suspension, 'PENDING_CLOSURE' for in-process closure requests, and 'CLOSED' for accounts in their 90-day
# reinstatement window"). How long the closure takes is "a few minutes": assumed 5, settable.
DEFAULT_ACCOUNT_CLOSURE_TIME = timedelta(minutes=5)
# E55: MaxResults of ListAccounts, ListAccountsForParent and ListOrganizationalUnitsForParent: 1-20 (API Reference,
# "Valid Range: Minimum value of 1. Maximum value of 20."). Without MaxResults the page size is "a value that is
# specific to the operation": assumed the maximum, 20 (moto: 100 for ListAccounts). A larger value is refused with
# InvalidInputException, reason MAX_VALUE_EXCEEDED "You provided a numeric parameter that has a larger value than
# allowed" (InvalidInputException's documented reasons; which reason AWS sends here is assumed).
ORGANIZATIONS_MAX_RESULTS = 20
ORGANIZATIONS_PAGED_ACTIONS = ("list_accounts", "list_accounts_for_parent", "list_organizational_units_for_parent")


@dataclass(frozen=True)
class ScpDecision:
    """One request an SCP decided (E54): who, in which account, what, on which resource, and why not (None: allowed)."""

    principal: str
    account: str
    action: str
    resource: str
    denied: str | None


@functools.lru_cache(maxsize=1)
def _aws_regions() -> frozenset[str]:
    return frozenset(AccountFidelity.regions_of("aws"))


class AccountFidelity:
    """State of E53-E55: each account's enabled opt-in Regions, closed and suspended accounts, the SCP decisions."""

    def __init__(self, now: Clock) -> None:
        self._now = now
        self.opted_in: dict[str, set[str]] = {}
        self.closures: dict[str, datetime] = {}  # account -> when CloseAccount was called
        self.suspended: set[str] = set()  # AWS-enforced suspensions
        self.account_closure_time = DEFAULT_ACCOUNT_CLOSURE_TIME
        self.scp_decisions: list[ScpDecision] = []

    # -- E53 --------------------------------------------------------------------------------------------------

    @staticmethod
    def regions_of(partition: str) -> list[str]:
        """Every Region of the partition EC2 knows (moto's list, which also holds the other partitions' Regions)."""
        from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

        return sorted(r.name for r in RegionsAndZonesBackend.regions if get_partition(r.name) == partition)

    @staticmethod
    def is_opt_in(region: str) -> bool:
        """A Region of the aws partition EC2 knows, launched after 20 March 2019 (not "global" or "aws-global")."""
        return region not in DEFAULT_REGIONS and region in _aws_regions()

    def enable_region(self, account_id: str, region: str) -> None:
        """EnableRegion (done): the opt-in `region` is usable by `account_id` from now on."""
        if not self.is_opt_in(region):
            raise ValueError(f"{region} is no opt-in Region: default Regions cannot be enabled or disabled")
        self.opted_in.setdefault(account_id, set()).add(region)

    def disable_region(self, account_id: str, region: str) -> None:
        if not self.is_opt_in(region):
            raise ValueError(f"{region} is no opt-in Region: default Regions cannot be enabled or disabled")
        self.opted_in.get(account_id, set()).discard(region)

    def region_enabled(self, account_id: str, region: str) -> bool:
        return not self.is_opt_in(region) or region in self.opted_in.get(account_id, set())

    def opt_in_status(self, account_id: str, region: str) -> str:
        if not self.is_opt_in(region):
            return OPT_IN_NOT_REQUIRED
        return OPTED_IN if self.region_enabled(account_id, region) else NOT_OPTED_IN

    def enabled_regions(self, account_id: str, partition: str = "aws") -> list[str]:
        return [region for region in self.regions_of(partition) if self.region_enabled(account_id, region)]

    # -- E55 --------------------------------------------------------------------------------------------------

    def suspend_account(self, account_id: str, suspended: bool = True) -> None:
        """AWS restricted the account (no API does this): Status and State SUSPENDED until `suspended=False`."""
        (self.suspended.add if suspended else self.suspended.discard)(account_id)

    def close(self, account_id: str) -> None:
        if account_id in self.closures:
            raise AccountAlreadyClosedException()
        self.closures[account_id] = self._now()

    def status_and_state(self, account_id: str) -> tuple[str, str]:
        """(Status, State) of a member account now, on the fidelity clock."""
        closed_at = self.closures.get(account_id)
        if closed_at is not None:
            if self._now() < closed_at + self.account_closure_time:
                return "PENDING_CLOSURE", "PENDING_CLOSURE"
            return "SUSPENDED", "CLOSED"
        if account_id in self.suspended:
            return "SUSPENDED", "SUSPENDED"
        return "ACTIVE", "ACTIVE"

    def forget(self) -> None:
        """The decisions go; Regions, closures and suspensions are the accounts' setup and stay."""
        self.scp_decisions.clear()


def _account_properties(fidelity: MotoFidelity) -> dict[str, property]:
    """E55: FakeAccount's `status` and `state` as AWS reports them now (moto stores SUSPENDED/SUSPENDED at once on
    CloseAccount); assignments by moto's code are ignored, the fidelity's record decides."""

    def status(self: FakeAccount) -> str:
        return fidelity.accounts.status_and_state(self.id)[0]

    def state(self: FakeAccount) -> str:
        return fidelity.accounts.status_and_state(self.id)[1]

    def ignore(self: FakeAccount, value: str) -> None:
        pass

    return {"status": property(status, ignore), "state": property(state, ignore)}


def _close_account(fidelity: MotoFidelity) -> Callable[..., None]:
    def close(self: FakeAccount) -> None:
        """E55. CloseAccount: PENDING_CLOSURE for `account_closure_time`, then Status SUSPENDED and State CLOSED (see
        the constants); a second CloseAccount is AccountAlreadyClosedException, as moto answers it."""
        fidelity.accounts.close(self.id)

    return close


def _organizations_page(original: Callable[..., str]) -> Callable[..., str]:
    def handler(self: OrganizationsResponse) -> str:
        """E55. MaxResults 1-20 (above: InvalidInputException); without it, pages of 20 (`limit_default` of moto's
        pagination model, patched in `faithful_aws`)."""
        raw = self._get_param("MaxResults")
        if raw is not None and not 1 <= int(raw) <= ORGANIZATIONS_MAX_RESULTS:
            reason, message = (
                ("MAX_VALUE_EXCEEDED", "You provided a numeric parameter that has a larger value than allowed.")
                if int(raw) > 1
                else ("MIN_VALUE_EXCEEDED", "You provided a numeric parameter that has a smaller value than allowed.")
            )
            error = InvalidInputException(message)
            error.description = json.dumps({"__type": "InvalidInputException", "message": message, "Reason": reason})
            raise error
        return original(self)

    return handler


# -- E53, E54: every request through moto's response classes -------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _protocol(service: str) -> str:
    from moto.core.responses import get_service_model

    return str(get_service_model(service).protocol)


def _caller(request: BaseResponse, account: str, partition: str) -> tuple[str, str, str]:
    """(principal ARN, aws:PrincipalArn, aws:PrincipalType) of the request's credentials: an assumed-role session,
    else the account (the emulator's dummy key acts as the account)."""
    session = _session_of(request.get_access_key(), account, partition)
    if session is not None:
        return session.session_arn, session.role_arn, "AssumedRole"
    root = f"arn:{partition}:iam::{account}:root"
    return root, root, "Account"


def _service_error(service: str, code: str, message: str, status: int) -> HTTPException:
    """An error answer in the service's protocol: ErrorResponse XML for the query protocol, JSON otherwise."""
    error = _RESTError(code, message) if _protocol(service) == "query" else JsonRESTError(code, message)
    error.code = status
    return error


_Refusal = ServiceException | HTTPException


def _opt_in_refusal(fidelity: MotoFidelity, request: BaseResponse, service: str) -> _Refusal | None:
    """E53: the caller's account has not enabled the opt-in Region of the endpoint; for AssumeRole at an opt-in
    Regional STS endpoint the role's account must have enabled it too."""
    region = request.region
    if not AccountFidelity.is_opt_in(region):
        return None
    accounts = [request.current_account]
    if service == "sts" and request._get_action() == "AssumeRole":
        role_arn = request._get_param("RoleArn") or ""
        if role_arn.count(":") >= 5:
            accounts.append(role_arn.split(":")[4])
    if all(fidelity.accounts.region_enabled(account, region) for account in accounts):
        return None
    if service == "ec2":
        return EC2ClientError(AUTH_FAILURE, AUTH_FAILURE_MESSAGE)
    return _service_error(service, INVALID_CLIENT_TOKEN, INVALID_CLIENT_TOKEN_MESSAGE, 403)


def _member_path(account: str) -> tuple[Any, list[Any]] | None:
    """The organization's backend and the SCP targets from the root down to `account` (root, OUs, the account), when
    `account` is a member account (not the management account) and SCPs are enabled on the root."""
    owner = organizations_backends.master_accounts.get(account)
    if owner is None:
        return None
    backend = organizations_backends[owner[0]][owner[1]]
    member = next((candidate for candidate in backend.accounts if candidate.id == account), None)
    if member is None:
        return None
    path: list[Any] = [member]
    parent = member.parent_id
    while parent is not None:
        unit = next((candidate for candidate in backend.ou if candidate.id == parent), None)
        if unit is None:
            break
        path.insert(0, unit)
        parent = getattr(unit, "parent_id", None)
    root = path[0]
    if not any(t["Type"] == SCP_TYPE and t["Status"] == "ENABLED" for t in getattr(root, "policy_types", [])):
        return None
    return backend, path


def _check_scp_statements(documents: list[str | dict[str, Any]], action: str, resource_known: bool) -> None:
    """E54: refuse to guess. A statement that applies to `action` with a condition key the evaluation does not provide,
    or (for a request whose resource is not modelled) a Resource other than "*" or a NotResource, raises."""
    for document in documents:
        for statement in _policy_statements(document):
            if not _statement_covers(statement, "Action", action, False):
                continue
            for keys in statement.get("Condition", {}).values():
                for key in keys:
                    lowered = key.lower()
                    if lowered not in SCP_CONDITION_KEYS and not lowered.startswith(SCP_CONDITION_KEY_PREFIXES):
                        raise UnmodelledPolicy(f"SCP condition key {key!r} is not evaluated")
            if resource_known:
                continue
            if "NotResource" in statement or any(str(r) != "*" for r in _listed(statement.get("Resource", "*"))):
                raise UnmodelledPolicy(f"SCP resource of {action} is not modelled: {statement}")


def _scp_refusal(fidelity: MotoFidelity, request: BaseResponse, service: str) -> _Refusal | None:
    """E54 (see `_account_checks`)."""
    account = request.current_account
    found = _member_path(account)
    if found is None:
        return None
    _, path = found
    partition = get_partition(request.region)
    principal, principal_arn, principal_type = _caller(request, account, partition)
    base = {
        "aws:principalarn": [principal_arn],
        "aws:principalaccount": [account],
        "aws:principaltype": [principal_type],
        "aws:requestedregion": [request.region],
        "aws:principalorgid": [path[0].organization_id],
    }
    action = request._get_action()
    if service == "sts" and action == "GetCallerIdentity":
        # "No permissions are required to perform this operation. If an administrator attaches a policy to your
        # identity that explicitly denies access to the sts:GetCallerIdentity action, you can still perform this
        # operation." (STS API Reference, GetCallerIdentity)
        return None
    if service == "ec2" and action in EC2_MUTATING_ACTIONS:
        authorisations = [(a, r, {**base, **c}) for a, r, c in _ec2_authorisations(request, partition, account)]
        resource_known = True
    else:
        prefix = IAM_PREFIXES.get(service, service)
        authorisations = [(f"{prefix}:{action}", "*", base)]
        resource_known = False
    levels = [[policy.content for policy in target.attached_policies if policy.type == SCP_TYPE] for target in path]
    for iam_action, resource, context in authorisations:
        for documents in levels:
            _check_scp_statements(documents, iam_action, resource_known)
        decisions = [_decide(documents, iam_action, resource, context)[0] for documents in levels]
        denied = (
            "with an explicit deny in a service control policy"
            if "deny" in decisions
            else f"because no service control policy allows the {iam_action} action"
            if "implicit" in decisions
            else None
        )
        fidelity.accounts.scp_decisions.append(ScpDecision(principal, account, iam_action, resource, denied))
        if denied is None:
            continue
        message = f"User: {principal} is not authorized to perform: {iam_action} on resource: {resource} {denied}"
        if service == "ec2":
            return EC2ClientError(UNAUTHORIZED, f"You are not authorized to perform this operation. {message}")
        code = "AccessDenied" if _protocol(service) == "query" else "AccessDeniedException"
        return _service_error(service, code, message, 403)
    return None


def _account_checks(fidelity: MotoFidelity, original: Callable[..., Any]) -> Callable[..., Any]:
    def call_action(self: BaseResponse) -> Any:
        """E53 and E54, before moto dispatches any request of any service (S3 excepted: it authorises on its own
        path).

        E53 - a request to an endpoint in an opt-in Region the account of the credentials has not enabled
        (`fidelity.accounts.enable_region`) fails: EC2 `AuthFailure`, other services `InvalidClientTokenId` (see
        the constants); moto serves every Region to every account.

        E54 - a request by a principal of a member account (an account the organization lists, not its management
        account: "SCPs don't affect users or roles in the management account", Organizations User Guide, "Service
        control policies (SCPs)", https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps.html)
        is decided against the SCPs attached to the root, each OU on the way down and the account, when the SCP
        policy type is enabled on the root: an explicit Deny anywhere denies, and every level must have an SCP that
        allows it ("SCP evaluation": "For a permission to be allowed for a specific account, there must be an
        explicit Allow statement at every level from the root through each OU in the direct path to the account
        (including the target account itself)" and "a Deny at any level ... is inherited",
        https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html). The
        EC2 calls of I2 are authorised per resource with their tags (I2's `_ec2_authorisations`); every other
        request on resource "*" (an SCP statement naming resources for it raises `UnmodelledPolicy`). Refusal:
        EC2 `UnauthorizedOperation`, query-protocol services `AccessDenied`, JSON ones `AccessDeniedException`,
        with IAM's message forms "... with an explicit deny in a service control policy" / "... because no service
        control policy allows the <action> action" (IAM User Guide, "Access denied error messages",
        https://docs.aws.amazon.com/IAM/latest/UserGuide/access-denied-error-messages.html). moto stores SCPs and
        enforces none. Conditions: I1/I2's operators over aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalOrgID,
        aws:PrincipalType, aws:RequestedRegion and the EC2 tag keys; anything else raises `UnmodelledPolicy`."""
        service = self.boto3_service_name
        refusal = _opt_in_refusal(fidelity, self, service) or _scp_refusal(fidelity, self, service)
        if refusal is None:
            return original(self)
        if isinstance(refusal, ServiceException):  # EC2's errors serialise through the EC2 model
            status, headers, body = self.serialized(ActionResult(refusal))
        else:
            answer = {**dict(refusal.get_headers()), "status": refusal.code}
            status, headers, body = self._transform_response(self.response_headers, (refusal.description, answer))
        headers, body = self._enrich_response(headers, body)
        return status, headers, body

    return call_action


def _describe_regions_response(fidelity: MotoFidelity) -> Callable[..., ActionResult]:
    def describe_regions(self: AvailabilityZonesAndRegions) -> ActionResult:
        """E53. DescribeRegions "Describes the Regions that are enabled for your account, or all Regions"
        (AllRegions: "including Regions that are disabled for your account"); RegionNames: "You can specify any
        Regions, whether they are enabled and disabled for your account"; filters endpoint, opt-in-status,
        region-name; OptInStatus opt-in-not-required | opted-in | not-opted-in (EC2 API Reference, DescribeRegions,
        https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html). Only the partition's own
        Regions. moto lists every Region of every partition whatever AllRegions says, ignores the filters, and marks
        af-south-1, ap-southeast-3 and eu-south-1 (opt-in Regions) opt-in-not-required."""
        self.error_on_dryrun()
        account = self.current_account
        partition = get_partition(self.region)
        names = self._get_param("RegionNames", [])
        all_regions = str(self._get_param("AllRegions", "false")).lower() == "true"
        filters = self._filters_from_querystring() or {}
        unknown = sorted(set(filters) - set(REGION_FILTERS))
        if unknown:
            raise EC2ClientError(INVALID_PARAMETER_VALUE, f"The filter '{unknown[0]}' is invalid")
        endpoints = {r.name: r.endpoint for r in self.ec2_backend.regions}
        regions = []
        for name in AccountFidelity.regions_of(partition):
            if names and name not in names:
                continue
            if not names and not all_regions and not fidelity.accounts.region_enabled(account, name):
                continue
            region = {
                "RegionName": name,
                "Endpoint": endpoints[name],
                "OptInStatus": fidelity.accounts.opt_in_status(account, name),
            }
            values = {"endpoint": region["Endpoint"], "opt-in-status": region["OptInStatus"], "region-name": name}
            if all(any(_aws_wildcard_match(values[k], p) for p in patterns) for k, patterns in filters.items()):
                regions.append(region)
        return ActionResult({"Regions": regions})

    return describe_regions
