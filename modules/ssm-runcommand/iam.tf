# Business permissions of the worker: the EC2, SSM and IAM calls of lambda_src/ops_automation/ssm_runcommand
# (handlers and the core they use). The planner only enqueues (SQS, plumbing) and needs none. The internal module
# adds the sts:AssumeRole on target_role_arns and the plumbing (logs, queue, ledger, alert topic, key, X-Ray).
# Nothing here creates, changes or destroys images or snapshots, so every statement carries ownership "none": the
# instances and the document are the user's, not this project's, and the statements themselves say which ones
# (the target tags or the listed ARNs, the one document).
#
# Service Authorization Reference, "Actions, resources, and condition keys for AWS Systems Manager"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html; tier 1 checks
# every statement against its machine-readable copy shipped by `parliament`):
# - ssm:SendCommand: resource types document (required), bucket (arn:${Partition}:s3:::${BucketName}),
#   instance (arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}) and managed-instance
#   (arn:${Partition}:ssm:${Region}:${Account}:managed-instance/${InstanceId}: hybrid and edge nodes, mi-...); the
#   condition keys aws:ResourceTag/${TagKey} and ssm:resourceTag/${TagKey} (both resource types list the tag
#   keys). Every resource of a request is authorized on its own: the document, each node, and the output bucket
#   when OutputS3BucketName is set.
# - ssm:DescribeInstanceInformation, ssm:ListCommands, ssm:ListCommandInvocations (and GetCommandInvocation, which the
#   worker does not call: ListCommandInvocations with Details gives the exit codes of 50 instances a page): no
#   resource type, so Resource "*".
# - Document ARNs: a document of the account is arn:aws:ssm:<region>:<account>:document/<name>; "The account ID
#   shouldn't be specified in the ARN for AWS owned public documents" (Systems Manager user guide,
#   automation-setup-identity-based-policies), arn:aws:ssm:<region>::document/AWS-RunShellScript. AWS owns the
#   names with the reserved prefixes: "You can't use the following strings as document name prefixes. These are
#   reserved by AWS for use as document name prefixes: aws, amazon, amzn" (SSM API reference, CreateDocument
#   Name). A document shared from another account is run by its ARN, which the statement then names as given.
# - Tag-based access, AWS's own example (Systems Manager user guide, run-command-setting-up, tag-based-access):
#   SendCommand on the instances with "ssm:resourceTag/<key>"; "If the user sends a command to a node that isn't
#   tagged or that has any tag other than ..., the execution results show AccessDenied": with tag Targets an
#   instance outside the condition becomes an AccessDenied invocation, which the worker reports. SSM resolves tag
#   Targets to every managed node carrying the tags ("the system locates and attempts to run the command on all
#   managed nodes that match the specified tags", send-commands-multiple), hybrid nodes too, so the tag-targeted
#   statement names both node types under the same tag conditions; listed ids are EC2 instances only.
#
# "Actions, resources, and condition keys for AWS Identity and Access Management": iam:PassRole on resource type
# role, with the action's condition key iam:PassedToService.
#
# "Actions, resources, and condition keys for Amazon EC2": ec2:DescribeInstances has no resource type, so "*".

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # Where the target instances (and the document, run by name) live: the deployment region and account unless
  # regions/target roles widen it, to exactly one region or account where only one is given.
  target_accounts = distinct([for arn in var.target_role_arns : split(":", arn)[4]])
  listed_region   = length(var.regions) == 0 ? local.region : length(var.regions) == 1 ? var.regions[0] : "*"
  listed_account = (
    length(local.target_accounts) == 0 ? local.account_id :
    length(local.target_accounts) == 1 ? local.target_accounts[0] : "*"
  )

  document_is_arn       = startswith(var.document_name, "arn:")
  document_is_aws_owned = can(regex("^(?i)(aws|amazon|amzn)", var.document_name))
  document_arn = (
    local.document_is_arn ? var.document_name :
    local.document_is_aws_owned ? "arn:${local.partition}:ssm:${local.listed_region}::document/${var.document_name}" :
    "arn:${local.partition}:ssm:${local.listed_region}:${local.listed_account}:document/${var.document_name}"
  )

  # The conditions of the tag-targeted statement: the node carries every target tag (SSM resolves the targets
  # with the same tags, so a forged work message cannot run the document anywhere else).
  target_tag_conditions = [for key in sort(keys(var.target_tags)) : {
    test     = "StringEquals"
    variable = "ssm:resourceTag/${key}"
    values   = [var.target_tags[key]]
  }]

  send_document = [{
    sid        = "SendCommandDocument"
    actions    = ["ssm:SendCommand"]
    resources  = [local.document_arn]
    ownership  = "none"
    conditions = []
  }]
  send_tagged = length(var.target_tags) == 0 ? [] : [{
    sid     = "SendCommandToTaggedInstances"
    actions = ["ssm:SendCommand"]
    resources = [
      "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/*",
      "arn:${local.partition}:ssm:${local.listed_region}:${local.listed_account}:managed-instance/*",
    ]
    ownership  = "none"
    conditions = local.target_tag_conditions
  }]
  send_listed = length(var.instance_ids) == 0 ? [] : [{
    sid        = "SendCommandToListedInstances"
    actions    = ["ssm:SendCommand"]
    resources  = [for id in var.instance_ids : "arn:${local.partition}:ec2:${local.listed_region}:${local.listed_account}:instance/${id}"]
    ownership  = "none"
    conditions = []
  }]
  # The sender only names the bucket; the instances write the output with their own role (below).
  send_output_bucket = var.output_s3_bucket_name == null ? [] : [{
    sid        = "SendCommandOutputBucket"
    actions    = ["ssm:SendCommand"]
    resources  = ["arn:${local.partition}:s3:::${var.output_s3_bucket_name}"]
    ownership  = "none"
    conditions = []
  }]
  # Only the notification role, only to SSM.
  pass_notification_role = var.notification_role_arn == null ? [] : [{
    sid       = "PassNotificationRoleToSsm"
    actions   = ["iam:PassRole"]
    resources = [var.notification_role_arn]
    ownership = "none"
    conditions = [{
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ssm.amazonaws.com"]
    }]
  }]

  # Expected instances (DescribeInstances by the same tags or ids), whether SSM manages them
  # (DescribeInstanceInformation: PingStatus), crash recovery of a send (ListCommands) and each instance's
  # final status and exit code (ListCommandInvocations with Details).
  worker_statements = concat(
    [
      {
        sid        = "ReadInstances"
        actions    = ["ec2:DescribeInstances"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
      {
        sid        = "ReadCommandsAndManagedNodes"
        actions    = ["ssm:DescribeInstanceInformation", "ssm:ListCommands", "ssm:ListCommandInvocations"]
        resources  = ["*"]
        ownership  = "none"
        conditions = []
      },
    ],
    local.send_document,
    local.send_tagged,
    local.send_listed,
    local.send_output_bucket,
    local.pass_notification_role,
  )
}

################################################################################
# What the instances' own role needs for the command output
################################################################################

# SSM Agent writes the output with the instance profile's role, not with the worker's: the Systems Manager user
# guide's custom instance policy for S3 output grants s3:PutObject on the bucket's objects and
# s3:GetEncryptionConfiguration on the bucket ("required if your S3 bucket is configured to use encryption";
# setup-instance-permissions, instance-profile-custom-s3-policy), and AmazonSSMManagedInstanceCore is attached
# beside it, i.e. does not cover the bucket. A bucket encrypted with a customer managed key also needs
# kms:GenerateDataKey and kms:Decrypt on that key: SSM Agent uploads with the SDK's multipart uploader above 5 MiB,
# and "to perform a multipart upload with encryption using an AWS KMS key, the requester must have permission to
# the kms:Decrypt and kms:GenerateDataKey actions on the key" (S3 user guide, mpuoverview). This module does not
# take that key, so the statement is the user's to add; the AWS managed aws/s3 key needs none. For CloudWatch
# output: logs:DescribeLogGroups on "*" and CreateLogGroup, CreateLogStream, DescribeLogStreams, PutLogEvents on
# the group (sysman-rc-setting-up-cwlogs).
locals {
  output_s3_objects = var.output_s3_bucket_name == null ? null : (
    var.output_s3_key_prefix == null ? "arn:${local.partition}:s3:::${var.output_s3_bucket_name}/*" :
    "arn:${local.partition}:s3:::${var.output_s3_bucket_name}/${trimsuffix(var.output_s3_key_prefix, "/")}/*"
  )
  output_log_group_arn = local.output_log_group_name == null ? null : "arn:${local.partition}:logs:${local.listed_region}:${local.listed_account}:log-group:${local.output_log_group_name}"
}

data "aws_iam_policy_document" "instance_output" {
  count = var.output_s3_bucket_name == null && local.output_log_group_name == null ? 0 : 1

  dynamic "statement" {
    for_each = var.output_s3_bucket_name == null ? [] : [local.output_s3_objects]

    content {
      sid       = "WriteCommandOutputObjects"
      actions   = ["s3:PutObject"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.output_s3_bucket_name == null ? [] : [var.output_s3_bucket_name]

    content {
      sid       = "ReadOutputBucketEncryption"
      actions   = ["s3:GetEncryptionConfiguration"]
      resources = ["arn:${local.partition}:s3:::${statement.value}"]
    }
  }

  dynamic "statement" {
    for_each = local.output_log_group_name == null ? [] : [local.output_log_group_arn]

    content {
      sid       = "WriteCommandOutputLogs"
      actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
      resources = [statement.value, "${statement.value}:*"]
    }
  }

  dynamic "statement" {
    for_each = local.output_log_group_name == null ? [] : ["*"]

    content {
      sid       = "FindCommandOutputLogGroup"
      actions   = ["logs:DescribeLogGroups"]
      resources = [statement.value]
    }
  }
}
