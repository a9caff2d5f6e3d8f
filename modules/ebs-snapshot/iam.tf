# Business permissions of the two functions: exactly the EC2 calls of
# lambda_src/ops_automation/ebs_snapshot (handlers and the core they use), for the chosen snapshot_mode
# only. The internal module adds the ownership conditions (ownership = "request" on creation, "resource" on
# destruction), the sts:AssumeRole on target_role_arns, and the plumbing (logs, queue, ledger, alert topic,
# key, X-Ray).
#
# Service Authorization Reference (Amazon EC2): CreateSnapshot is authorised on the source volume and on the
# new snapshot; CreateSnapshots on the source instance, each of its volumes and each new snapshot. The
# volume and instance resource types support aws:ResourceTag, the snapshot aws:RequestTag, so the sources
# and the snapshots get statements of their own: the sources with ownership "none" (they are not ours),
# limited to the targets; the snapshots with ownership "request".

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  snapshot_arns   = ["arn:${local.partition}:ec2:*::snapshot/*"]
  any_volume_arns = ["arn:${local.partition}:ec2:*:*:volume/*"]

  # Where listed volumes and instances can live: the deployment region and account unless regions/target
  # roles (or target accounts, OUs, all-enabled regions) widen it, to exactly one region or account where only one
  # is given.
  target_accounts = distinct(concat([for arn in var.target_role_arns : split(":", arn)[4]], var.target_accounts))
  listed_region   = length(var.regions) == 0 ? local.region : length(var.regions) == 1 && !contains(var.regions, "all-enabled") ? var.regions[0] : "*"
  listed_account = (
    length(var.target_organizational_units) > 0 ? "*" :
    length(local.target_accounts) == 0 ? local.account_id :
    length(local.target_accounts) == 1 ? local.target_accounts[0] : "*"
  )

  volume_mode       = var.snapshot_mode == "volume"
  targets_instances = length(var.instance_ids) > 0 || length(var.instance_tags) > 0

  # Volume mode: CreateSnapshot on the targeted volumes only. The volumes of targeted instances carry no
  # tag known here, so instance targets need every volume (a forged message can then snapshot, never
  # delete, a foreign volume; the snapshot still carries this policy's tags and is retired by retention).
  create_snapshot_on_volumes = !local.volume_mode ? [] : concat(
    !local.targets_instances ? [] : [{
      sid        = "CreateSnapshotOfInstanceVolumes"
      actions    = ["ec2:CreateSnapshot"]
      resources  = local.any_volume_arns
      ownership  = "none"
      conditions = []
    }],
    local.targets_instances || length(var.volume_tags) == 0 ? [] : [{
      sid       = "CreateSnapshotOfTaggedVolumes"
      actions   = ["ec2:CreateSnapshot"]
      resources = local.any_volume_arns
      ownership = "none"
      conditions = [for key in sort(keys(var.volume_tags)) : {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${key}"
        values   = [var.volume_tags[key]]
      }]
    }],
    local.targets_instances || length(var.volume_ids) == 0 ? [] : [{
      sid        = "CreateSnapshotOfListedVolumes"
      actions    = ["ec2:CreateSnapshot"]
      resources  = [for id in var.volume_ids : "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:volume/${id}"]
      ownership  = "none"
      conditions = []
    }],
    [
      {
        sid        = "CreateSnapshotOnlyWithOwnershipTags"
        actions    = ["ec2:CreateSnapshot"]
        resources  = local.snapshot_arns
        ownership  = "request"
        conditions = []
      },
      {
        # Tags given to CreateSnapshot (TagSpecifications) are authorised as CreateTags; existing
        # snapshots can never be re-tagged, so ownership tags cannot be forged onto foreign snapshots.
        sid       = "TagOnlyOnCreateSnapshot"
        actions   = ["ec2:CreateTags"]
        resources = local.snapshot_arns
        ownership = "request"
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CreateSnapshot"]
        }]
      },
    ],
  )

  # Instance mode: CreateSnapshots of the targeted instances only, on all of their volumes.
  create_snapshots_of_instances = local.volume_mode ? [] : concat(
    length(var.instance_tags) == 0 ? [] : [{
      sid       = "CreateSnapshotsOfTaggedInstances"
      actions   = ["ec2:CreateSnapshots"]
      resources = ["arn:${local.partition}:ec2:*:*:instance/*"]
      ownership = "none"
      conditions = [for key in sort(keys(var.instance_tags)) : {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${key}"
        values   = [var.instance_tags[key]]
      }]
    }],
    length(var.instance_ids) == 0 ? [] : [{
      sid        = "CreateSnapshotsOfListedInstances"
      actions    = ["ec2:CreateSnapshots"]
      resources  = [for id in var.instance_ids : "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/${id}"]
      ownership  = "none"
      conditions = []
    }],
    [
      {
        sid        = "CreateSnapshotsOfInstanceVolumes"
        actions    = ["ec2:CreateSnapshots"]
        resources  = local.any_volume_arns
        ownership  = "none"
        conditions = []
      },
      {
        sid        = "CreateSnapshotsOnlyWithOwnershipTags"
        actions    = ["ec2:CreateSnapshots"]
        resources  = local.snapshot_arns
        ownership  = "request"
        conditions = []
      },
      {
        sid       = "TagOnlyOnCreateSnapshots"
        actions   = ["ec2:CreateTags"]
        resources = local.snapshot_arns
        ownership = "request"
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CreateSnapshots"]
        }]
      },
    ],
  )

  # Volumes encrypted with a customer managed key: what the EBS user guide asks of a principal using EBS
  # encryption ("Requirements for Amazon EBS encryption"; Data Lifecycle Manager asks the same for its
  # role), on exactly the listed keys. No AWS page says CreateSnapshot itself needs them; our code never
  # calls KMS: EBS does, with the caller's permissions. Grants only for AWS resources.
  # Only in requests EC2 makes on the function's behalf, in any target region.
  through_ec2 = {
    test     = "StringLike"
    variable = "kms:ViaService"
    values   = ["ec2.*.amazonaws.com"]
  }
  use_volume_keys = length(var.volume_kms_key_arns) == 0 ? [] : [
    {
      sid       = "GrantVolumeKeysToEbs"
      actions   = ["kms:CreateGrant"]
      resources = var.volume_kms_key_arns
      ownership = "none"
      conditions = [
        {
          test     = "Bool"
          variable = "kms:GrantIsForAWSResource"
          values   = ["true"]
        },
        local.through_ec2,
      ]
    },
    {
      sid        = "UseVolumeKeysThroughEbs"
      actions    = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
      resources  = var.volume_kms_key_arns
      ownership  = "none"
      conditions = [local.through_ec2]
    },
  ]

  planner_statements = [
    {
      # Describe* calls have no resource-level permissions. DescribeSnapshots: the dry-run report.
      sid        = "ReadInstancesVolumesSnapshots"
      actions    = ["ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  worker_statements = concat(
    [
      {
        # DescribeImages (IncludeDisabled): a snapshot used by a registered AMI, disabled ones included,
        # is never deleted. DescribeLockedSnapshots: a locked snapshot is kept and reported (asked before
        # deleting a multi-volume set, after a refused DeleteSnapshot otherwise: the error code
        # DeleteSnapshot returns for a lock is not documented).
        sid        = "ReadSnapshotsImagesLocks"
        actions    = ["ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.create_snapshot_on_volumes,
    local.create_snapshots_of_instances,
    local.use_volume_keys,
    [
      {
        sid        = "DeleteOwnSnapshots"
        actions    = ["ec2:DeleteSnapshot"]
        resources  = local.snapshot_arns
        ownership  = "resource"
        conditions = []
      },
    ],
    local.restore_worker_statements,
  )
}

################################################################################
# Restore tests (restore_test): the `restore` planner reads, the worker creates, checks and deletes volumes.
#
# Service Authorization Reference, Amazon EC2
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html): CreateVolume is authorised
# on the new volume (aws:RequestTag, aws:TagKeys) and on the source snapshot (aws:ResourceTag); DeleteVolume on the
# volume (aws:ResourceTag). Tags given to CreateVolume (TagSpecifications) are authorised as ec2:CreateTags with
# ec2:CreateAction = CreateVolume (EC2 user guide, "Grant permission to tag resources during creation",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
#
# "Tag present" is a `Null` condition with "false" on the restore-test key: the IAM operator made to test a key's
# presence (IAM user guide, "Condition operator to check existence of condition keys",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Null);
# its value is a test id nobody can know in advance, so StringLike "*" would say the same less directly.
################################################################################

locals {
  restore_on = var.restore_test != null
  # The one target of the restore tests: restore_test.region (null: the deployment region) and the account of
  # restore_test.role_arn (null: this account); both checked against regions / target_role_arns in main.tf.
  restore_region    = try(coalesce(var.restore_test.region, local.region), local.region)
  restore_account   = try(split(":", var.restore_test.role_arn)[4], local.account_id)
  restore_ec2       = "arn:${local.partition}:ec2:${local.restore_region}:${local.restore_account}"
  restore_snapshots = ["arn:${local.partition}:ec2:${local.restore_region}::snapshot/*"]
  restore_key_arns  = try(var.restore_test.kms_key_arns, [])

  restore_tag_requested = {
    test     = "Null"
    variable = "aws:RequestTag/ops-automation:restore-test"
    values   = ["false"]
  }

  # The planner lists the policy's snapshots (and their restore tags) in the target.
  restore_statements = [
    {
      sid        = "ReadSnapshots"
      actions    = ["ec2:DescribeSnapshots"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  restore_worker_statements = !local.restore_on ? [] : concat(
    [
      {
        # The subnet's Availability Zone, the restored volumes' state. No resource-level permissions.
        sid        = "RestoreReads"
        actions    = ["ec2:DescribeSubnets", "ec2:DescribeVolumes"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
      {
        # Only this policy's snapshots are restored.
        sid        = "RestoreFromOwnSnapshots"
        actions    = ["ec2:CreateVolume"]
        resources  = local.restore_snapshots
        ownership  = "resource"
        conditions = []
      },
      {
        # The volumes carry the ownership and restore-test tags from creation.
        sid        = "RestoreCreateTaggedVolumes"
        actions    = ["ec2:CreateVolume"]
        resources  = ["${local.restore_ec2}:volume/*"]
        ownership  = "request"
        conditions = [local.restore_tag_requested]
      },
      {
        sid       = "RestoreTagOnlyOnCreateVolume"
        actions   = ["ec2:CreateTags"]
        resources = ["${local.restore_ec2}:volume/*"]
        ownership = "request"
        conditions = [
          {
            test     = "StringEquals"
            variable = "ec2:CreateAction"
            values   = ["CreateVolume"]
          },
          local.restore_tag_requested,
        ]
      },
      {
        # Only restored volumes of this policy are ever deleted, never a backed-up one.
        sid       = "RestoreDeleteRestoredVolumes"
        actions   = ["ec2:DeleteVolume"]
        resources = ["${local.restore_ec2}:volume/*"]
        ownership = "resource"
        conditions = [{
          test     = "Null"
          variable = "aws:ResourceTag/ops-automation:restore-test"
          values   = ["false"]
        }]
      },
      {
        # The result on this policy's snapshots: the two restore tag keys and no other, so ownership tags can never
        # be written this way (aws:TagKeys, with Null so that an empty key set does not pass ForAllValues: IAM user
        # guide, "Multivalued context key examples").
        sid       = "RestoreMarkOwnSnapshots"
        actions   = ["ec2:CreateTags"]
        resources = local.restore_snapshots
        ownership = "resource"
        conditions = [
          {
            test     = "ForAllValues:StringEquals"
            variable = "aws:TagKeys"
            values   = ["ops-automation:restore-result", "ops-automation:restore-tested"]
          },
          {
            test     = "Null"
            variable = "aws:TagKeys"
            values   = ["false"]
          },
        ]
      },
    ],
    # Encrypted snapshots: creating a volume from them uses their keys as the caller ("Requirements for Amazon EBS
    # encryption", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html: kms:CreateGrant
    # limited by kms:GrantIsForAWSResource, Decrypt, DescribeKey, GenerateDataKeyWithoutPlaintext, ReEncrypt*), only
    # in requests EC2 makes in the restore region.
    length(local.restore_key_arns) == 0 ? [] : [
      {
        sid       = "RestoreGrantBackupKeysToEbs"
        actions   = ["kms:CreateGrant"]
        resources = local.restore_key_arns
        ownership = "none"
        conditions = [
          {
            test     = "Bool"
            variable = "kms:GrantIsForAWSResource"
            values   = ["true"]
          },
          {
            test     = "StringEquals"
            variable = "kms:ViaService"
            values   = ["ec2.${local.restore_region}.amazonaws.com"]
          },
        ]
      },
      {
        sid       = "RestoreUseBackupKeysThroughEbs"
        actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
        resources = local.restore_key_arns
        ownership = "none"
        conditions = [{
          test     = "StringEquals"
          variable = "kms:ViaService"
          values   = ["ec2.${local.restore_region}.amazonaws.com"]
        }]
      },
    ],
  )
}
