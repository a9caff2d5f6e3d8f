# Business permissions of the two functions: exactly the EC2 calls of
# lambda_src/ops_automation/ami_backup (handlers and the core they use). The internal module adds the
# ownership conditions (ownership = "request" on creation, "resource" on destruction), the
# sts:AssumeRole on target_role_arns, and the plumbing (logs, queue, ledger, alert topic, key, X-Ray).

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  image_arns    = ["arn:${local.partition}:ec2:*::image/*"]
  snapshot_arns = ["arn:${local.partition}:ec2:*::snapshot/*"]

  # Where listed instances can live: the deployment region and account unless regions/target roles
  # (or target accounts, OUs, all-enabled regions) widen it, to exactly one region or account where only one is given.
  target_accounts = distinct(concat([for arn in var.target_role_arns : split(":", arn)[4]], var.target_accounts))
  instance_region = length(var.regions) == 0 ? local.region : length(var.regions) == 1 && !contains(var.regions, "all-enabled") ? var.regions[0] : "*"
  instance_account = (
    length(var.target_organizational_units) > 0 ? "*" :
    length(local.target_accounts) == 0 ? local.account_id :
    length(local.target_accounts) == 1 ? local.target_accounts[0] : "*"
  )

  # CreateImage is authorised on the source instance too: only the targeted instances may be imaged
  # (and, with no_reboot = false, rebooted), so a message forged onto the queue cannot reach others.
  create_image_on_instances = concat(
    length(var.target_tags) == 0 ? [] : [{
      sid       = "CreateImageFromTaggedInstances"
      actions   = ["ec2:CreateImage"]
      resources = ["arn:${local.partition}:ec2:*:*:instance/*"]
      ownership = "none"
      conditions = [for key in sort(keys(var.target_tags)) : {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${key}"
        values   = [var.target_tags[key]]
      }]
    }],
    length(var.instance_ids) == 0 ? [] : [{
      sid        = "CreateImageFromListedInstances"
      actions    = ["ec2:CreateImage"]
      resources  = [for id in var.instance_ids : "arn:${local.partition}:ec2:${local.instance_region}:${local.instance_account}:instance/${id}"]
      ownership  = "none"
      conditions = []
    }],
  )

  planner_statements = [
    {
      # Describe* calls have no resource-level permissions. DescribeImages: the dry-run report.
      sid        = "ReadInstancesAndImages"
      actions    = ["ec2:DescribeInstances", "ec2:DescribeImages"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  worker_statements = concat(
    [
      {
        # DescribeInstances only after IncorrectInstanceState, to tell a stopping instance (retried in
        # the same slot) from a gone one; the tags to copy arrive in the create_image message.
        # DescribeLockedSnapshots only after a refused DeleteSnapshot: a locked snapshot is kept and
        # reported, not retried (AWS does not document the error code DeleteSnapshot returns for a lock).
        # ListImagesInRecycleBin before purging a deregistered AMI's snapshots: AWS lets them be deleted
        # while the AMI is in the Recycle Bin, and the AMI could then never be restored.
        sid        = "ReadInstancesImagesSnapshots"
        actions    = ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeLockedSnapshots", "ec2:ListImagesInRecycleBin"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.create_image_on_instances,
    [
      {
        sid        = "CreateImageOnlyWithOwnershipTags"
        actions    = ["ec2:CreateImage"]
        resources  = concat(local.image_arns, local.snapshot_arns)
        ownership  = "request"
        conditions = []
      },
      {
        # Tags given to CreateImage (TagSpecifications) are authorised as CreateTags; existing
        # resources can never be re-tagged, so ownership tags cannot be forged onto foreign AMIs.
        sid       = "TagOnlyOnCreateImage"
        actions   = ["ec2:CreateTags"]
        resources = concat(local.image_arns, local.snapshot_arns)
        ownership = "request"
        conditions = [{
          test     = "StringEquals"
          variable = "ec2:CreateAction"
          values   = ["CreateImage"]
        }]
      },
      {
        sid        = "DeregisterOwnImages"
        actions    = ["ec2:DeregisterImage"]
        resources  = local.image_arns
        ownership  = "resource"
        conditions = []
      },
      {
        sid        = "DeleteOwnSnapshots"
        actions    = ["ec2:DeleteSnapshot"]
        resources  = local.snapshot_arns
        ownership  = "resource"
        conditions = []
      },
    ],
  )
}
