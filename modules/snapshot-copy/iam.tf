# Business permissions of the two functions, as CONTRACT.md (issue 8) lists them: exactly the EC2, KMS and
# STS calls of lambda_src/ops_automation/snapshot_copy (handlers and the core they use). The internal module
# adds the ownership conditions (ownership = "request" on the copies, "resource" on destroying them; the
# sources get ownership = "source", see below) and the plumbing (logs, queue, ledger, alert topic, key, X-Ray).
#
# Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html), and the EBS user
# guide, "Example IAM policies for Amazon EBS": "Resource-level permissions specified for the CopySnapshot
# action apply to both the new snapshot and the source snapshot" (AWS Storage Blog, "Enhancing
# resource-level permissions for copying Amazon EBS snapshots"); CopyImage is authorised on the source AMI
# since October 28, 2024 (EC2 user guide, "Grant permissions to copy Amazon EC2 AMIs"). So a copy needs two
# grants: on the new snapshot/AMI in the destination region (arn:<p>:ec2:<destination>::snapshot/*, empty
# account field) with the ownership request tags, and on the source in this region. The machine-readable copy
# tier 1 checks against (parliament 1.6.4) predates both changes; see tests/hcl/test_iam_authorization.py.
#
# The sources are another policy's or the user's (ownership "source", internal's second exception to the
# ownership rule, docs/DESIGN.md): each statement on them names what the sources are, never any snapshot:
# (a) source_policies: the managed-by tag and one of the listed policy tags; (b) source_tags: every tag;
# (c) source_ids: exactly those ARNs. One statement per non-empty kind.
#
# Cross-account destinations (role_arn): the worker shares the source with the DR account
# (ModifySnapshotAttribute createVolumePermission, limited by ec2:Add/userId to those accounts; EBS user
# guide, "Share an Amazon EBS snapshot") and assumes the role, which copies in the DR account: the copy,
# tag, delete and key permissions of those regions are the DR role's (destination_role_policy_json), not
# the worker's.

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  same_account_regions  = sort([for region, d in var.destinations : region if d.role_arn == null])
  cross_account_regions = sort([for region, d in var.destinations : region if d.role_arn != null])
  destination_roles     = sort(distinct([for d in values(var.destinations) : d.role_arn if d.role_arn != null]))
  dr_accounts           = sort(distinct([for arn in local.destination_roles : split(":", arn)[4]]))

  # The sources, in this (the source) region only: snapshots, or AMIs with copy_images.
  any_source_snapshot_arns    = ["arn:${local.partition}:ec2:${local.region}::snapshot/*"]
  any_source_image_arns       = ["arn:${local.partition}:ec2:${local.region}::image/*"]
  listed_source_snapshot_arns = [for id in var.source_ids : "arn:${local.partition}:ec2:${local.region}::snapshot/${id}"]
  listed_source_image_arns    = [for id in var.source_ids : "arn:${local.partition}:ec2:${local.region}::image/${id}"]
  source_policy_conditions = [
    {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ops-automation:managed-by"
      values   = ["terraform-aws-ops-automation"]
    },
    {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ops-automation:policy"
      values   = var.source_policies
    },
  ]
  source_tag_conditions = [for key in sort(keys(var.source_tags)) : {
    test     = "StringEquals"
    variable = "aws:ResourceTag/${key}"
    values   = [var.source_tags[key]]
  }]
  share_conditions = [
    {
      test     = "StringEquals"
      variable = "ec2:Add/userId"
      values   = local.dr_accounts
    },
    {
      test     = "StringEquals"
      variable = "ec2:Attribute"
      values   = ["createVolumePermission"]
    },
  ]
  copies_here    = length(local.same_account_regions) > 0
  has_policies   = length(var.source_policies) > 0
  has_tags       = length(var.source_tags) > 0
  has_ids        = length(var.source_ids) > 0
  copy_snapshots = local.copies_here && !var.copy_images
  copy_images    = local.copies_here && var.copy_images

  # Same-account copies: the worker copies in the destination region, from the source.
  copy_from_sources = concat(
    local.copy_snapshots && local.has_policies ? [{
      sid        = "CopyFromPoliciesSnapshots"
      actions    = ["ec2:CopySnapshot"]
      resources  = local.any_source_snapshot_arns
      ownership  = "source"
      conditions = local.source_policy_conditions
    }] : [],
    local.copy_snapshots && local.has_tags ? [{
      sid        = "CopyFromTaggedSnapshots"
      actions    = ["ec2:CopySnapshot"]
      resources  = local.any_source_snapshot_arns
      ownership  = "source"
      conditions = local.source_tag_conditions
    }] : [],
    local.copy_snapshots && local.has_ids ? [{
      sid        = "CopyFromListedSnapshots"
      actions    = ["ec2:CopySnapshot"]
      resources  = local.listed_source_snapshot_arns
      ownership  = "source"
      conditions = []
    }] : [],
    local.copy_images && local.has_policies ? [{
      sid        = "CopyFromPoliciesImages"
      actions    = ["ec2:CopyImage"]
      resources  = local.any_source_image_arns
      ownership  = "source"
      conditions = local.source_policy_conditions
    }] : [],
    local.copy_images && local.has_tags ? [{
      sid        = "CopyFromTaggedImages"
      actions    = ["ec2:CopyImage"]
      resources  = local.any_source_image_arns
      ownership  = "source"
      conditions = local.source_tag_conditions
    }] : [],
    local.copy_images && local.has_ids ? [{
      sid        = "CopyFromListedImages"
      actions    = ["ec2:CopyImage"]
      resources  = local.listed_source_image_arns
      ownership  = "source"
      conditions = []
    }] : [],
  )

  # Cross-account copies (snapshots only): share the source with the DR accounts only
  # (createVolumePermission).
  shares = length(local.dr_accounts) > 0
  share_sources = concat(
    local.shares && local.has_policies ? [{
      sid        = "SharePoliciesSnapshots"
      actions    = ["ec2:ModifySnapshotAttribute"]
      resources  = local.any_source_snapshot_arns
      ownership  = "source"
      conditions = concat(local.source_policy_conditions, local.share_conditions)
    }] : [],
    local.shares && local.has_tags ? [{
      sid        = "ShareTaggedSnapshots"
      actions    = ["ec2:ModifySnapshotAttribute"]
      resources  = local.any_source_snapshot_arns
      ownership  = "source"
      conditions = concat(local.source_tag_conditions, local.share_conditions)
    }] : [],
    local.shares && local.has_ids ? [{
      sid        = "ShareListedSnapshots"
      actions    = ["ec2:ModifySnapshotAttribute"]
      resources  = local.listed_source_snapshot_arns
      ownership  = "source"
      conditions = local.share_conditions
    }] : [],
  )

  # The copies in the same-account destination regions: created with the ownership tags, tagged only as
  # part of the copy, destroyed only when they carry this policy's tags.
  copy_snapshot_arns = [for region in local.same_account_regions : "arn:${local.partition}:ec2:${region}::snapshot/*"]
  copy_image_arns    = [for region in local.same_account_regions : "arn:${local.partition}:ec2:${region}::image/*"]
  own_copies = concat(
    !local.copy_snapshots ? [] : [
      {
        sid        = "CopySnapshotOnlyWithOwnershipTags"
        actions    = ["ec2:CopySnapshot"]
        resources  = local.copy_snapshot_arns
        ownership  = "request"
        conditions = []
      },
      {
        # Tags given to the copy (TagSpecifications) are authorised as CreateTags; existing snapshots can
        # never be re-tagged, so ownership tags cannot be forged onto foreign ones.
        sid       = "TagOnlyOnCopySnapshot"
        actions   = ["ec2:CreateTags"]
        resources = local.copy_snapshot_arns
        ownership = "request"
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CopySnapshot"]
        }]
      },
    ],
    !local.copy_images ? [] : [
      {
        # The new AMI and its new snapshots (EC2 user guide, "Grant permissions to copy Amazon EC2 AMIs").
        sid        = "CopyImageOnlyWithOwnershipTags"
        actions    = ["ec2:CopyImage"]
        resources  = concat(local.copy_image_arns, local.copy_snapshot_arns)
        ownership  = "request"
        conditions = []
      },
      {
        sid       = "TagOnlyOnCopyImage"
        actions   = ["ec2:CreateTags"]
        resources = concat(local.copy_image_arns, local.copy_snapshot_arns)
        ownership = "request"
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CopyImage"]
        }]
      },
      {
        sid        = "DeregisterOwnCopies"
        actions    = ["ec2:DeregisterImage"]
        resources  = local.copy_image_arns
        ownership  = "resource"
        conditions = []
      },
    ],
    !local.copies_here ? [] : [
      {
        sid        = "DeleteOwnCopies"
        actions    = ["ec2:DeleteSnapshot"]
        resources  = local.copy_snapshot_arns
        ownership  = "resource"
        conditions = []
      },
    ],
  )

  # Encrypted copies: the six actions the EBS user guide lists for copying an encrypted snapshot ("Copy an
  # Amazon EBS snapshot": kms:DescribeKey, kms:CreateGrant, kms:GenerateDataKey,
  # kms:GenerateDataKeyWithoutPlaintext, kms:ReEncrypt, kms:Decrypt), on the destination keys and on the
  # keys of the source region (encrypted sources). Which key needs which is not documented, so both get all
  # of them (FINDINGS §4). Only in requests EC2 makes on the worker's behalf; grants only for AWS resources.
  # Apart from the one DescribeKey below, our code never calls KMS: EBS does, with the caller's permissions.
  copy_key_arns = length(local.same_account_regions) == 0 ? [] : concat(
    sort(distinct([for region in local.same_account_regions : var.destinations[region].kms_key_arn if var.destinations[region].kms_key_arn != null])),
    ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"],
  )
  through_ec2 = {
    test     = "StringLike"
    variable = "kms:ViaService"
    values   = ["ec2.*.amazonaws.com"]
  }
  # Counted from the regions, not the keys: a key created in the same apply is unknown at plan time, and the
  # number of statements must be known then.
  use_copy_keys = length(local.same_account_regions) == 0 ? [] : [
    {
      sid       = "GrantCopyKeysToEbs"
      actions   = ["kms:CreateGrant"]
      resources = local.copy_key_arns
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
      sid        = "UseCopyKeysThroughEbs"
      actions    = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
      resources  = local.copy_key_arns
      ownership  = "none"
      conditions = [local.through_ec2]
    },
  ]

  # Before sharing a source with a DR account the worker itself asks whether the source's key is an AWS
  # managed key (KeyMetadata.KeyManager = AWS), which cannot be shared ("You can't share snapshots that are
  # encrypted with the default AWS managed key", EBS user guide). A direct call carries no kms:ViaService
  # ("only applies for forward access sessions", KMS condition keys), so this statement has no such condition;
  # DescribeKey only reads metadata. The key's ARN, not the alias aws/ebs: describing that alias creates the
  # AWS managed key where none exists (KMS API reference, DescribeKey).
  describe_source_keys = length(local.cross_account_regions) == 0 ? [] : [
    {
      sid        = "DescribeSourceKeysBeforeSharing"
      actions    = ["kms:DescribeKey"]
      resources  = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]
      ownership  = "none"
      conditions = []
    },
  ]

  assume_destination_roles = length(local.destination_roles) == 0 ? [] : [
    {
      sid        = "AssumeDestinationRoles"
      actions    = ["sts:AssumeRole"]
      resources  = local.destination_roles
      ownership  = "none"
      conditions = []
    },
  ]

  # The catch-up lists the copies in every destination, a DR account's through its role.
  planner_statements = concat([
    {
      # Describe* calls have no resource-level permissions: the sources here, the copies in every
      # destination region.
      sid        = "ReadSnapshotsImages"
      actions    = ["ec2:DescribeSnapshots", "ec2:DescribeImages"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ], local.assume_destination_roles)

  worker_statements = concat(
    [
      {
        # What the core purge asks before deleting a copy: used by a registered AMI (DescribeImages,
        # disabled included), in the Recycle Bin (ListImagesInRecycleBin: no resource type), locked
        # (DescribeLockedSnapshots). Archived copies are kept, so no DescribeSnapshotTierStatus.
        sid        = "ReadSnapshotsImagesLocks"
        actions    = ["ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots", "ec2:ListImagesInRecycleBin"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.copy_from_sources,
    local.share_sources,
    local.own_copies,
    local.use_copy_keys,
    local.describe_source_keys,
    local.assume_destination_roles,
  )
}

################################################################################
# Event forwarding from the destination regions (IAM is global: one role for all)
################################################################################

# EventBridge user guide, "Sending and receiving events between AWS Regions in Amazon EventBridge": a rule
# whose target is an event bus in another region needs a role EventBridge assumes, allowed
# events:PutEvents on that bus. The destination sub-module's rules use this one; only this account's rules
# may (aws:SourceAccount).
locals {
  event_bus_arn        = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/default"
  forwarder_role_name  = "${var.name}-events-${local.region}"
  forwarder_role_count = length(local.same_account_regions) > 0 ? 1 : 0
}

data "aws_iam_policy_document" "forwarder_assume" {
  statement {
    sid     = "EventBridgeAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "forwarder" {
  count = local.forwarder_role_count

  name               = local.forwarder_role_name
  description        = "Lets the ${var.name} rules of the destination regions forward copy results to the default bus of ${local.region}."
  assume_role_policy = data.aws_iam_policy_document.forwarder_assume.json
  tags               = merge(var.tags, { Name = local.forwarder_role_name })

  lifecycle {
    precondition {
      condition     = length(local.forwarder_role_name) <= 64
      error_message = "IAM role name ${jsonencode(local.forwarder_role_name)} (name ${jsonencode(var.name)} + -events- + region ${jsonencode(local.region)}) is ${length(local.forwarder_role_name)} characters; IAM allows 64: shorten name."
    }
  }
}

data "aws_iam_policy_document" "forwarder" {
  statement {
    sid       = "PutEventsOnTheSourceBus"
    actions   = ["events:PutEvents"]
    resources = [local.event_bus_arn]
  }
}

resource "aws_iam_role_policy" "forwarder" {
  count = local.forwarder_role_count

  name   = "forward"
  role   = aws_iam_role.forwarder[0].id
  policy = data.aws_iam_policy_document.forwarder.json
}

################################################################################
# What the DR account's role needs (cross-account destinations): an output, not attached here
################################################################################

# The role copies the shared source into its own account (CopySnapshot on the source, which the DR account
# does not own, and on the new copy with the ownership tags), tags only as part of the copy, deletes only
# its own copies, and uses the keys: the source key (shared through its key policy; cross-account KMS needs
# the key policy and IAM both) and its destination keys. Its trust policy must name the worker role and the
# planner role (the planner's catch-up lists the copies in the destination through it).
locals {
  dr_copy_arns = [for region in local.cross_account_regions : "arn:${local.partition}:ec2:${region}::snapshot/*"]
  dr_key_arns = concat(
    sort(distinct([for region in local.cross_account_regions : var.destinations[region].kms_key_arn if var.destinations[region].kms_key_arn != null])),
    ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"],
  )
}

data "aws_iam_policy_document" "destination_role" {
  count = length(local.cross_account_regions) > 0 ? 1 : 0

  statement {
    sid       = "ReadSnapshotsImagesLocks"
    actions   = ["ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:DescribeLockedSnapshots", "ec2:ListImagesInRecycleBin"]
    resources = ["*"]
  }

  # The source snapshot lives in the source account; its tags are not the DR account's to read, so the
  # source account's sharing (limited to the sources, above) is what chooses them.
  statement {
    sid       = "CopySharedSources"
    actions   = ["ec2:CopySnapshot"]
    resources = ["arn:${local.partition}:ec2:${local.region}::snapshot/*"]
  }

  statement {
    sid       = "CopyOnlyWithOwnershipTags"
    actions   = ["ec2:CopySnapshot"]
    resources = local.dr_copy_arns

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ops-automation:managed-by"
      values   = ["terraform-aws-ops-automation"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ops-automation:policy"
      values   = [var.name]
    }
  }

  statement {
    sid       = "TagOnlyOnCopy"
    actions   = ["ec2:CreateTags"]
    resources = local.dr_copy_arns

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CopySnapshot"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ops-automation:managed-by"
      values   = ["terraform-aws-ops-automation"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/ops-automation:policy"
      values   = [var.name]
    }
  }

  statement {
    sid       = "DeleteOwnCopies"
    actions   = ["ec2:DeleteSnapshot"]
    resources = local.dr_copy_arns

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ops-automation:managed-by"
      values   = ["terraform-aws-ops-automation"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/ops-automation:policy"
      values   = [var.name]
    }
  }

  statement {
    sid       = "GrantCopyKeysToEbs"
    actions   = ["kms:CreateGrant"]
    resources = local.dr_key_arns

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["ec2.*.amazonaws.com"]
    }
  }

  statement {
    sid       = "UseCopyKeysThroughEbs"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    resources = local.dr_key_arns

    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["ec2.*.amazonaws.com"]
    }
  }
}
