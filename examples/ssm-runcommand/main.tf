provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  output_bucket_name = "${var.name}-output-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.id}"
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key; a customer managed key is the user's own (see the comment above).
  name = "${var.name}-alarms"
}

################################################################################
# The bucket the instances write the command output to
################################################################################

# SSE-KMS under the AWS managed aws/s3 key: its key policy lets every principal of the account use it through S3,
# so the instances' role needs no KMS permission (a customer managed key would need kms:GenerateDataKey and, for
# outputs over 5 MiB that SSM Agent uploads in parts, kms:Decrypt there).
# Versioned, private (public access blocked, ACLs disabled), and emptied by the lifecycle rule below.
resource "aws_s3_bucket" "command_output" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket; who wrote the output is already in CloudTrail's SendCommand record and the command's history.
  #checkov:skip=CKV_AWS_144:Cross-region replication of a script's output has no recovery value: the next night writes a new one.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new output objects; the module learns each instance's outcome from SSM, not from S3.
  bucket        = local.output_bucket_name
  force_destroy = var.force_destroy_output_bucket

  lifecycle {
    # var.name is at most 28 characters; a region name longer than the 14 its validation assumes would still
    # overflow S3's 63.
    precondition {
      condition     = length(local.output_bucket_name) <= 63
      error_message = "The output bucket name ${local.output_bucket_name} is ${length(local.output_bucket_name)} characters, over S3's 63: shorten name."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "command_output" {
  bucket = aws_s3_bucket.command_output.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "command_output" {
  bucket = aws_s3_bucket.command_output.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "command_output" {
  bucket = aws_s3_bucket.command_output.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "command_output" {
  bucket = aws_s3_bucket.command_output.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Output is read when a night fails (the alert links it), not archived: kept output_retention_days, old versions
# one day, unfinished uploads one day.
resource "aws_s3_bucket_lifecycle_configuration" "command_output" {
  bucket = aws_s3_bucket.command_output.id

  rule {
    id     = "expire-command-output"
    status = "Enabled"

    filter {}

    expiration {
      days = var.output_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.command_output]
}

################################################################################
# The nightly online backup
################################################################################

# Every night at 02:30 Asia/Tokyo, an online backup on each instance tagged Backup = online-db, run by
# AWS-RunShellScript as root. Asia/Tokyo observes no daylight saving time, so every slot happens exactly once.
module "ssm_runcommand" {
  source = "../../modules/ssm-runcommand"

  name                = var.name
  schedule_expression = "cron(30 2 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "online-db" }

  document_name = "AWS-RunShellScript"
  parameters = {
    commands         = var.backup_commands
    workingDirectory = ["/tmp"]
  }
  # An hour for the backup itself; ten minutes for an instance to pick the command up (a stopped or offline
  # instance is reported DeliveryTimedOut, not waited for).
  execution_timeout_seconds = 3600
  timeout_seconds           = 600
  # Each database's backup is independent: one failure must not cancel the others (max_errors 0 would leave
  # them Terminated).
  max_concurrency = "10"
  max_errors      = "100%"

  # .bucket, not .id: the name is known at plan time (id is not until the bucket exists), and the module decides
  # at plan time whether there is S3 output at all.
  output_s3_bucket_name = aws_s3_bucket.command_output.bucket
  output_s3_key_prefix  = var.name

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "ssm-runcommand"
  }
}

# SSM Agent writes the output with the instances' own role: attach this policy to the role of the database
# instances' instance profile (AmazonSSMManagedInstanceCore does not cover the bucket).
resource "aws_iam_policy" "instance_output" {
  name        = "${var.name}-instance-output"
  description = "Lets SSM Agent on the ${var.name} targets write the command output to ${aws_s3_bucket.command_output.id}/${var.name}/."
  policy      = module.ssm_runcommand.instance_output_policy_json
}
