# Business permissions of the three functions: the EC2 calls of lambda_src/ops_automation/instance_scheduler
# (handlers and the core they use). The internal module adds the sts:AssumeRole on target_role_arns and the
# plumbing (logs, queue, ledger, alert topic, key, X-Ray). Nothing here creates, changes or destroys images
# or snapshots, so every statement carries ownership "none": the instances are the user's, not this
# project's, and the statements themselves say which ones (their tags or their ARNs).
#
# Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html; tier 1 checks
# every statement against its machine-readable copy shipped by `parliament`):
# - ec2:StartInstances: resource types instance (required) and license-configuration; ec2:StopInstances:
#   instance (required). The instance resource type supports aws:ResourceTag/${TagKey} (also
#   ec2:ResourceTag/${TagKey}, ec2:InstanceID, ec2:InstanceMarketType, ec2:RootDeviceType, ...). ARN
#   arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}, the same the state-change event names
#   in `resources`. No volume resource type: the KMS side of an encrypted volume is a separate
#   kms:CreateGrant EC2 makes with the caller's permissions (below).
# - ec2:DescribeInstances: no resource type (only ec2:Region), so Resource "*".
#
# "Actions, resources, and condition keys for AWS Key Management Service"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html):
# kms:CreateGrant on resource type key, with the action's condition keys kms:GrantIsForAWSResource,
# kms:ViaService, kms:GrantOperations and kms:EncryptionContextKeys.

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # Where the target instances can live: the deployment region and account unless regions/target roles
  # widen it, to exactly one region or account where only one is given (as ebs-snapshot's listed
  # instances); for tagged instances too, unlike ebs-snapshot's CreateSnapshots (any region and account).
  target_accounts = distinct([for arn in var.target_role_arns : split(":", arn)[4]])
  listed_region   = length(var.regions) == 0 ? local.region : length(var.regions) == 1 ? var.regions[0] : "*"
  listed_account = (
    length(local.target_accounts) == 0 ? local.account_id :
    length(local.target_accounts) == 1 ? local.target_accounts[0] : "*"
  )

  # Both actions in one statement per kind of target: StartInstances and StopInstances take the same
  # resource type and condition keys. Tag targeting: only instances carrying every target tag (the
  # planner resolves them with the same tags, so a forged message cannot start or stop anything else);
  # id targeting: only the listed instances.
  start_stop_tagged = length(var.target_tags) == 0 ? [] : [{
    sid       = "StartStopTaggedInstances"
    actions   = ["ec2:StartInstances", "ec2:StopInstances"]
    resources = ["arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/*"]
    ownership = "none"
    conditions = [for key in sort(keys(var.target_tags)) : {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${key}"
      values   = [var.target_tags[key]]
    }]
  }]
  start_stop_listed = length(var.instance_ids) == 0 ? [] : [{
    sid        = "StartStopListedInstances"
    actions    = ["ec2:StartInstances", "ec2:StopInstances"]
    resources  = [for id in var.instance_ids : "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/${id}"]
    ownership  = "none"
    conditions = []
  }]

  # An instance whose EBS volumes are encrypted with a customer managed key starts only if the principal
  # calling StartInstances may create a grant on that key for EC2; otherwise it goes from pending back to
  # stopped with StateReason Client.InternalError (AWS Knowledge Center, "Why did my EC2 instance go from
  # Pending to Stopped", kms-iam-ec2-permission). Only on the listed keys, only grants to AWS resources,
  # through EC2, for Decrypt of EBS volumes: the conditions of AWS's own Instance Scheduler
  # (instance-scheduler-on-aws, lib/iam/ec2-kms-permissions-policy.ts). Null = false makes the
  # ForAllValues tests non-vacuous (they hold for a request without the key).
  grant_volume_keys = length(var.kms_key_arns) == 0 ? [] : [{
    sid       = "GrantVolumeKeysToEc2OnStart"
    actions   = ["kms:CreateGrant"]
    resources = var.kms_key_arns
    ownership = "none"
    conditions = [
      {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      },
      {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["ec2.*.amazonaws.com"]
      },
      {
        test     = "ForAllValues:StringEquals"
        variable = "kms:GrantOperations"
        values   = ["Decrypt"]
      },
      {
        test     = "ForAllValues:StringEquals"
        variable = "kms:EncryptionContextKeys"
        values   = ["aws:ebs:id"]
      },
      {
        test     = "Null"
        variable = "kms:GrantOperations"
        values   = ["false"]
      },
      {
        test     = "Null"
        variable = "kms:EncryptionContextKeys"
        values   = ["false"]
      },
    ]
  }]

  # Describe* calls have no resource-level permissions: the planners resolve the targets, the worker reads
  # State, StateReason, tags, RootDeviceType, InstanceLifecycle and HibernationOptions before acting and
  # when verifying.
  planner_statements = [
    {
      sid        = "ReadInstances"
      actions    = ["ec2:DescribeInstances"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  worker_statements = concat(
    [
      {
        sid        = "ReadInstances"
        actions    = ["ec2:DescribeInstances"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.start_stop_tagged,
    local.start_stop_listed,
    local.grant_volume_keys,
  )
}
