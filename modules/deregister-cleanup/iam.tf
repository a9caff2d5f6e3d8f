# Business permissions of the two functions, as CONTRACT.md (issue 7) lists them. The internal module adds
# the ownership condition (ownership = "resource" with resource_ownership = "project": the snapshot must
# carry ops-automation:managed-by = terraform-aws-ops-automation, whatever policy made it), the
# sts:AssumeRole on target_role_arns, and the plumbing (logs, queue, ledger, alert topic, key, X-Ray).
#
# Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html; tier 1 checks
# every statement against its machine-readable copy shipped by `parliament`):
# - ec2:DeleteSnapshot: resource type snapshot (required), condition keys aws:ResourceTag/${TagKey},
#   ec2:ResourceTag/${TagKey}, ec2:SnapshotID, ec2:Owner, ec2:ParentVolume, ec2:SnapshotTime,
#   ec2:VolumeSize, ec2:AvailabilityZone, ec2:OutpostArn; so both the ownership Allow and the exclusion Deny
#   bind on aws:ResourceTag/<key> of the snapshot. Snapshot ARNs have an empty account field
#   (arn:<partition>:ec2:<region>::snapshot/<id>); EC2 authorises DeleteSnapshot only on the caller
#   account's own snapshots.
# - ec2:ListImagesInRecycleBin: no resource type (only ec2:Region), so Resource "*"; the EBS user guide,
#   "Recover deleted AMIs from the Recycle Bin" (permissions section), grants it on "*" too.
# - ec2:DescribeSnapshots, ec2:DescribeImages, ec2:DescribeLockedSnapshots, ec2:DescribeSnapshotTierStatus:
#   no resource type, Resource "*".

locals {
  partition     = data.aws_partition.current.partition
  snapshot_arns = ["arn:${local.partition}:ec2:*::snapshot/*"]

  # Both functions decide the same way: the snapshot's description links it to its AMI; the AMI must be
  # gone (DescribeImages with IncludeDisabled: disabled AMIs count as registered), not in the Recycle Bin
  # (restoring it needs its snapshots), the snapshot neither locked nor in the archive tier before its
  # minimum period (DescribeLockedSnapshots, DescribeSnapshotTierStatus).
  read_statements = [
    {
      sid        = "ReadSnapshotsImagesRecycleBin"
      actions    = ["ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:ListImagesInRecycleBin"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  sweeper_statements = local.read_statements

  # scope = "managed": only snapshots a policy of this project created (managed-by tag, added by internal).
  # scope = "any": the snapshots of any deregistered AMI of the account, no tag condition: the explicit
  # opt-out of the ownership rule (ownership "unowned"), which the user asks for with scope = "any".
  worker_statements = concat(
    local.read_statements,
    [
      {
        # Right before deleting: a lock refused the deletion, or an archived snapshot's minimum period.
        sid        = "ReadLocksAndTiers"
        actions    = ["ec2:DescribeLockedSnapshots", "ec2:DescribeSnapshotTierStatus"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    var.scope == "managed" ? [
      {
        sid        = "DeleteManagedSnapshots"
        actions    = ["ec2:DeleteSnapshot"]
        resources  = local.snapshot_arns
        ownership  = "resource"
        conditions = []
      },
      ] : [
      {
        sid        = "DeleteAnySnapshot"
        actions    = ["ec2:DeleteSnapshot"]
        resources  = local.snapshot_arns
        ownership  = "unowned"
        conditions = []
      },
    ],
  )

  # Both scopes: a snapshot carrying the exclusion tag key (any value) can never be deleted, whatever the
  # code decides. Null aws:ResourceTag/<key> = false means "the key is present".
  worker_denials = [
    {
      sid       = "NeverDeleteExcludedSnapshots"
      actions   = ["ec2:DeleteSnapshot"]
      resources = local.snapshot_arns
      conditions = [{
        test     = "Null"
        variable = "aws:ResourceTag/${var.exclusion_tag_key}"
        values   = ["false"]
      }]
    },
  ]
}
