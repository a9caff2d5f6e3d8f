# Business permissions of the three functions: the EC2 (and, when enabled, Auto Scaling and RDS) calls of lambda_src/ops_automation/instance_scheduler
# (handlers and the core they use). The internal module adds the sts:AssumeRole on target_role_arns and the
# plumbing (logs, queue, ledger, alert topic, key, X-Ray). Nothing here creates, changes or destroys images
# or snapshots, so every statement carries ownership "none": the instances are the user's, not this
# project's, and the statements themselves say which ones (their tags or their ARNs). The Auto Scaling
# groups and databases are the user's too: only their target tags bind the statements.
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
#
# "Actions, resources, and condition keys for Amazon EC2 Auto Scaling"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html), used
# only with auto_scaling_groups = "capacity": autoscaling:UpdateAutoScalingGroup, CreateOrUpdateTags and
# DeleteTags take resource type autoScalingGroup (required), which supports aws:ResourceTag/${TagKey}; ARN
# arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:${GroupId}:autoScalingGroupName/${GroupFriendlyName}.
# CreateOrUpdateTags and DeleteTags also support aws:TagKeys (the keys in the request).
# DescribeAutoScalingGroups and DescribeScalingActivities have no resource type, so Resource "*".
#
# "Actions, resources, and condition keys for Amazon RDS"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html), used only with
# schedule_rds: rds:StartDBInstance and rds:StopDBInstance take resource type db (required; StopDBInstance
# also lists snapshot, which applies only when DBSnapshotIdentifier asks for a snapshot before the stop: this
# module never passes one, so no snapshot resource is granted); rds:StartDBCluster and rds:StopDBCluster take
# cluster (required); rds:DescribeDBInstances takes db and rds:DescribeDBClusters takes cluster (both
# required), so even the reads name ARN patterns, not "*". ARNs arn:${Partition}:rds:${Region}:${Account}:db:${DbInstanceName}
# and ...:cluster:${DbClusterInstanceName}. The tag keys are in the Resource types table ("Resource condition
# keys are listed in the Resource types table"): db supports aws:ResourceTag/${TagKey} and
# rds:db-tag/${TagKey}, cluster aws:ResourceTag/${TagKey} and rds:cluster-tag/${TagKey}.

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # Where the target instances can live: the deployment region and account unless regions/target roles
  # (or target accounts, OUs, all-enabled regions) widen it, to exactly one region or account where only one is given (as ebs-snapshot's listed
  # instances); for tagged instances too, unlike ebs-snapshot's CreateSnapshots (any region and account).
  target_accounts = distinct(concat([for arn in var.target_role_arns : split(":", arn)[4]], var.target_accounts))
  listed_region   = length(var.regions) == 0 ? local.region : length(var.regions) == 1 && !contains(var.regions, "all-enabled") ? var.regions[0] : "*"
  listed_account = (
    length(var.target_organizational_units) > 0 ? "*" :
    length(local.target_accounts) == 0 ? local.account_id :
    length(local.target_accounts) == 1 ? local.target_accounts[0] : "*"
  )

  # Both actions in one statement per kind of target: StartInstances and StopInstances take the same
  # resource type and condition keys. Tag targeting: only instances carrying every target tag (the
  # planner resolves them with the same tags, so a forged message cannot start or stop anything else);
  # id targeting: only the listed instances.
  start_stop_tagged = length(var.target_tags) == 0 ? [] : [{
    sid        = "StartStopTaggedInstances"
    actions    = ["ec2:StartInstances", "ec2:StopInstances"]
    resources  = ["arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/*"]
    ownership  = "none"
    conditions = local.target_tag_conditions
  }]
  start_stop_listed = length(var.instance_ids) == 0 ? [] : [{
    sid        = "StartStopListedInstances"
    actions    = ["ec2:StartInstances", "ec2:StopInstances"]
    resources  = [for id in var.instance_ids : "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/${id}"]
    ownership  = "none"
    conditions = []
  }]
  # StartInstances is authorized against the instance's license configuration too (resource type
  # license-configuration, no condition keys); without it an instance associated with one is refused.
  start_licensed = length(var.license_configuration_arns) == 0 ? [] : [{
    sid        = "StartWithLicenseConfigurations"
    actions    = ["ec2:StartInstances"]
    resources  = var.license_configuration_arns
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
  grant_volume_keys = length(var.volume_kms_key_arns) == 0 ? [] : [{
    sid       = "GrantVolumeKeysToEc2OnStart"
    actions   = ["kms:CreateGrant"]
    resources = var.volume_kms_key_arns
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

  # The conditions every tag-targeted statement shares: the resource carries every target tag. Capacity mode
  # and RDS scheduling require target_tags (preconditions in main.tf), so these are never empty where used.
  target_tag_conditions = [for key in sort(keys(var.target_tags)) : {
    test     = "StringEquals"
    variable = "aws:ResourceTag/${key}"
    values   = [var.target_tags[key]]
  }]

  # Auto Scaling groups, capacity mode: only groups carrying every target tag can be resized, and the only tag
  # the worker may write or delete on them is the one holding the saved "<min>/<desired>/<max>". The saved tag
  # is written before the group is set to 0/0/0 and deleted after the sizes are restored (Python, groups.py).
  # Null = false makes the ForAllValues test non-vacuous (it holds for a request without tag keys).
  saved_capacity_tag = "ops-automation:saved-capacity"
  capacity_mode      = var.auto_scaling_groups == "capacity"
  tagged_groups_arn  = "arn:${local.partition}:autoscaling:${local.listed_region}:${local.listed_account}:autoScalingGroup:*:autoScalingGroupName/*"
  # The planners only list the groups; the worker also reads scaling activities to explain a failed check.
  list_groups = local.capacity_mode ? [{
    sid        = "ListAutoScalingGroups"
    actions    = ["autoscaling:DescribeAutoScalingGroups"]
    resources  = ["*"]
    ownership  = "none"
    conditions = []
  }] : []
  read_groups = local.capacity_mode ? [{
    sid        = "ReadAutoScalingGroups"
    actions    = ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities"]
    resources  = ["*"]
    ownership  = "none"
    conditions = []
  }] : []
  resize_tagged_groups = local.capacity_mode ? [
    {
      sid        = "ResizeTaggedGroups"
      actions    = ["autoscaling:UpdateAutoScalingGroup"]
      resources  = [local.tagged_groups_arn]
      ownership  = "none"
      conditions = local.target_tag_conditions
    },
    {
      sid       = "TagSavedCapacityOfTaggedGroups"
      actions   = ["autoscaling:CreateOrUpdateTags", "autoscaling:DeleteTags"]
      resources = [local.tagged_groups_arn]
      ownership = "none"
      conditions = concat(local.target_tag_conditions, [
        {
          test     = "ForAllValues:StringEquals"
          variable = "aws:TagKeys"
          values   = [local.saved_capacity_tag]
        },
        {
          test     = "Null"
          variable = "aws:TagKeys"
          values   = ["false"]
        },
      ])
    },
  ] : []

  # RDS instances and Aurora clusters: listed (with their TagList) by the planners and re-read by the worker;
  # started and stopped only when they carry every target tag. Never a snapshot on stop.
  rds_db_arns      = "arn:${local.partition}:rds:${local.listed_region}:${local.listed_account}:db:*"
  rds_cluster_arns = "arn:${local.partition}:rds:${local.listed_region}:${local.listed_account}:cluster:*"
  read_databases = var.schedule_rds ? [
    {
      sid        = "ReadDbInstances"
      actions    = ["rds:DescribeDBInstances"]
      resources  = [local.rds_db_arns]
      ownership  = "none"
      conditions = []
    },
    {
      sid        = "ReadDbClusters"
      actions    = ["rds:DescribeDBClusters"]
      resources  = [local.rds_cluster_arns]
      ownership  = "none"
      conditions = []
    },
  ] : []
  start_stop_tagged_databases = var.schedule_rds ? [
    {
      sid        = "StartStopTaggedDbInstances"
      actions    = ["rds:StartDBInstance", "rds:StopDBInstance"]
      resources  = [local.rds_db_arns]
      ownership  = "none"
      conditions = local.target_tag_conditions
    },
    {
      sid        = "StartStopTaggedDbClusters"
      actions    = ["rds:StartDBCluster", "rds:StopDBCluster"]
      resources  = [local.rds_cluster_arns]
      ownership  = "none"
      conditions = local.target_tag_conditions
    },
  ] : []

  # Describe* calls of EC2 and Auto Scaling have no resource-level permissions: the planners resolve the
  # targets, the worker reads State, StateReason, tags, RootDeviceType, InstanceLifecycle and
  # HibernationOptions (groups: sizes, instances, scaling activities) before acting and when verifying.
  planner_statements = concat(
    [
      {
        sid        = "ReadInstances"
        actions    = ["ec2:DescribeInstances"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.list_groups,
    local.read_databases,
  )

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
    local.start_licensed,
    local.grant_volume_keys,
    local.read_groups,
    local.resize_tagged_groups,
    local.read_databases,
    local.start_stop_tagged_databases,
  )
}
