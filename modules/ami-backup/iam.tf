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
    local.restore_worker_statements,
  )
}

################################################################################
# Restore tests (restore_test): the `restore` planner reads, the worker launches, checks and cleans up.
#
# Resource types and condition keys per the Service Authorization Reference, Amazon EC2
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html): RunInstances is
# authorised on the image, subnet and security group (existing: aws:ResourceTag) and on the instance, its
# network interface and volumes (created: aws:RequestTag, aws:TagKeys), and on the snapshots behind the AMI;
# TerminateInstances on the instance (aws:ResourceTag). Tags given at launch (TagSpecifications) are authorised
# as ec2:CreateTags with ec2:CreateAction = RunInstances (EC2 user guide, "Grant permission to tag resources
# during creation", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html).
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
  restore_region  = try(coalesce(var.restore_test.region, local.region), local.region)
  restore_account = try(split(":", var.restore_test.role_arn)[4], local.account_id)
  restore_ec2     = "arn:${local.partition}:ec2:${local.restore_region}:${local.restore_account}"
  restore_images  = ["arn:${local.partition}:ec2:${local.restore_region}::image/*", "arn:${local.partition}:ec2:${local.restore_region}::snapshot/*"]
  restored        = ["${local.restore_ec2}:instance/*", "${local.restore_ec2}:volume/*", "${local.restore_ec2}:network-interface/*"]
  launched        = ["${local.restore_ec2}:instance/*", "${local.restore_ec2}:volume/*"]

  restore_tag_requested = {
    test     = "Null"
    variable = "aws:RequestTag/ops-automation:restore-test"
    values   = ["false"]
  }
  restore_tag_present = {
    test     = "Null"
    variable = "aws:ResourceTag/ops-automation:restore-test"
    values   = ["false"]
  }

  # The SSM document of validation_document: a name is this account's document or an AWS-owned one, whose ARN has
  # no account ("arn:aws:ssm:us-east-2::document/AWS-RunPowerShellScript", Systems Manager user guide, "Restricting
  # Run Command access based on tags"); a shared document is given by its ARN.
  validation_document = try(var.restore_test.validation_document, null)
  validation_document_arns = local.validation_document == null ? [] : startswith(local.validation_document, "arn:") ? [local.validation_document] : [
    "arn:${local.partition}:ssm:${local.restore_region}::document/${local.validation_document}",
    "arn:${local.partition}:ssm:${local.restore_region}:${local.restore_account}:document/${local.validation_document}",
  ]
  instance_role_arn = try(var.restore_test.instance_role_arn, null)
  restore_key_arns  = try(var.restore_test.kms_key_arns, [])

  # The planner lists the policy's AMIs (and their restore tags) in the target.
  restore_statements = [
    {
      sid        = "ReadImages"
      actions    = ["ec2:DescribeImages"]
      resources  = ["*"]
      ownership  = "none"
      conditions = []
    },
  ]

  restore_worker_statements = !local.restore_on ? [] : concat(
    [
      {
        # The security group (no ingress rule allowed), the AMI's architecture against the instance type, status
        # checks, the subnet's route table (no route out unless allow_routed_subnet); DescribeInstances and
        # DescribeImages are granted above. No resource-level permissions.
        sid        = "RestoreReads"
        actions    = ["ec2:DescribeInstanceStatus", "ec2:DescribeSecurityGroups", "ec2:DescribeInstanceTypes", "ec2:DescribeSubnets", "ec2:DescribeRouteTables"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
      {
        # Only this policy's AMIs (and their snapshots) can be launched.
        sid        = "RestoreLaunchOwnImages"
        actions    = ["ec2:RunInstances"]
        resources  = local.restore_images
        ownership  = "resource"
        conditions = []
      },
      {
        # Only into the isolated subnet and security group the user named.
        sid        = "RestoreLaunchIntoIsolatedSubnet"
        actions    = ["ec2:RunInstances"]
        resources  = ["${local.restore_ec2}:subnet/${try(var.restore_test.subnet_id, "")}", "${local.restore_ec2}:security-group/${try(var.restore_test.security_group_id, "")}"]
        ownership  = "none"
        conditions = []
      },
      {
        # The instance and its volumes carry the ownership and restore-test tags from launch.
        sid        = "RestoreLaunchTaggedResources"
        actions    = ["ec2:RunInstances"]
        resources  = local.launched
        ownership  = "request"
        conditions = [local.restore_tag_requested]
      },
      {
        # Its network interface too, and never with a public IP address (ec2:AssociatePublicIpAddress, a key of the
        # network-interface resource type only: a statement of its own).
        sid       = "RestoreLaunchPrivateInterface"
        actions   = ["ec2:RunInstances"]
        resources = ["${local.restore_ec2}:network-interface/*"]
        ownership = "request"
        conditions = [
          local.restore_tag_requested,
          {
            test     = "Bool"
            variable = "ec2:AssociatePublicIpAddress"
            values   = ["false"]
          },
        ]
      },
      {
        sid       = "RestoreTagOnlyAtLaunch"
        actions   = ["ec2:CreateTags"]
        resources = local.restored
        ownership = "request"
        conditions = [
          {
            test     = "StringEquals"
            variable = "ec2:CreateAction"
            values   = ["RunInstances"]
          },
          local.restore_tag_requested,
        ]
      },
      {
        # Only restored instances of this policy are ever terminated, never a backed-up one.
        sid        = "RestoreTerminateRestoredInstances"
        actions    = ["ec2:TerminateInstances"]
        resources  = ["${local.restore_ec2}:instance/*"]
        ownership  = "resource"
        conditions = [local.restore_tag_present]
      },
      {
        # The result on this policy's AMIs: the two restore tag keys and no other, so ownership tags can never be
        # written this way (aws:TagKeys, with Null so that an empty key set does not pass ForAllValues: IAM user
        # guide, "Multivalued context key examples").
        sid       = "RestoreMarkOwnImages"
        actions   = ["ec2:CreateTags"]
        resources = ["arn:${local.partition}:ec2:${local.restore_region}::image/*"]
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
    local.validation_document == null ? [] : [
      {
        sid        = "RestoreRunValidationDocument"
        actions    = ["ssm:SendCommand"]
        resources  = local.validation_document_arns
        ownership  = "none"
        conditions = []
      },
      {
        # SendCommand is authorised on the document and on each instance; only on restored instances of this policy.
        sid        = "RestoreValidateRestoredInstances"
        actions    = ["ssm:SendCommand"]
        resources  = ["${local.restore_ec2}:instance/*"]
        ownership  = "resource"
        conditions = [local.restore_tag_present]
      },
      {
        sid        = "RestoreReadValidationResult"
        actions    = ["ssm:GetCommandInvocation"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.instance_role_arn == null ? [] : [
      {
        # "To launch an instance with a role, the developer must have permission to launch EC2 instances and
        # permission to pass IAM roles" (EC2 user guide, "Grant permissions to attach an IAM role to an instance",
        # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permission-to-pass-iam-roles.html): exactly that
        # role, to EC2 only.
        sid       = "RestorePassInstanceRole"
        actions   = ["iam:PassRole"]
        resources = [local.instance_role_arn]
        ownership = "none"
        conditions = [{
          test     = "StringEquals"
          variable = "iam:PassedToService"
          values   = ["ec2.amazonaws.com"]
        }]
      },
    ],
    # Encrypted backups: launching from them uses their keys as the caller ("Requirements for Amazon EBS
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
