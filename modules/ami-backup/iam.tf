# Business permissions of the two functions: exactly the EC2/STS calls of
# lambda_src/ops_automation/ami_backup.py. Logs, queue, tables, KMS and X-Ray come from the internal
# module. Mutating actions never get a "*" resource, and every one is bound to the ownership tags
# (docs/DESIGN.md): creation must apply them, destruction requires them.

locals {
  partition = data.aws_partition.current.partition

  managed_by_value = "terraform-aws-ops-automation"
  managed_by_key   = "ops-automation:managed-by"
  policy_key       = "ops-automation:policy"

  instance_arns = ["arn:${local.partition}:ec2:*:*:instance/*"]
  image_arns    = ["arn:${local.partition}:ec2:*::image/*"]
  snapshot_arns = ["arn:${local.partition}:ec2:*::snapshot/*"]
}

data "aws_iam_policy_document" "planner_ec2" {
  # Describe* calls have no resource-level permissions.
  statement {
    sid       = "ReadInstancesAndImages"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeImages"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "worker_ec2" {
  # No ec2:DescribeInstances: the instance tags to copy arrive in the create_image message.
  statement {
    sid       = "ReadImagesSnapshots"
    actions   = ["ec2:DescribeImages", "ec2:DescribeSnapshots"]
    resources = ["*"]
  }

  # CreateImage is authorised on the source instance and on the image and snapshots it creates.
  statement {
    sid       = "CreateImageFromInstance"
    actions   = ["ec2:CreateImage"]
    resources = local.instance_arns
  }

  statement {
    sid       = "CreateImageOnlyWithOwnershipTags"
    actions   = ["ec2:CreateImage"]
    resources = concat(local.image_arns, local.snapshot_arns)

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.managed_by_key}"
      values   = [local.managed_by_value]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.policy_key}"
      values   = [var.name]
    }
  }

  # Tags given to CreateImage (TagSpecifications) are authorised as CreateTags; existing resources
  # can never be re-tagged, so ownership tags cannot be forged onto foreign AMIs.
  statement {
    sid       = "TagOnlyOnCreateImage"
    actions   = ["ec2:CreateTags"]
    resources = concat(local.image_arns, local.snapshot_arns)

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateImage"]
    }
  }

  statement {
    sid       = "DeregisterOwnImages"
    actions   = ["ec2:DeregisterImage"]
    resources = local.image_arns

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_by_key}"
      values   = [local.managed_by_value]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.policy_key}"
      values   = [var.name]
    }
  }

  statement {
    sid       = "DeleteOwnSnapshots"
    actions   = ["ec2:DeleteSnapshot"]
    resources = local.snapshot_arns

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_by_key}"
      values   = [local.managed_by_value]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.policy_key}"
      values   = [var.name]
    }
  }
}

# What each function's role gets: its EC2 permissions, plus the cross-account hop when target roles are set.
data "aws_iam_policy_document" "assume_target_roles" {
  dynamic "statement" {
    for_each = length(var.target_role_arns) == 0 ? [] : [var.target_role_arns]

    content {
      sid       = "AssumeTargetRoles"
      actions   = ["sts:AssumeRole"]
      resources = statement.value
    }
  }
}

data "aws_iam_policy_document" "planner" {
  source_policy_documents = [
    data.aws_iam_policy_document.planner_ec2.json,
    data.aws_iam_policy_document.assume_target_roles.json,
  ]
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [
    data.aws_iam_policy_document.worker_ec2.json,
    data.aws_iam_policy_document.assume_target_roles.json,
  ]
}

# The role each target account provides: both functions work through it, so it needs the EC2
# permissions of both (same ownership conditions) and nothing else.
data "aws_iam_policy_document" "target_role" {
  source_policy_documents = [
    data.aws_iam_policy_document.planner_ec2.json,
    data.aws_iam_policy_document.worker_ec2.json,
  ]
}
