# Every module of the project in one account and one region (Tokyo), plus the Osaka side of the DR copies.
provider "aws" {
  region = var.region
}

provider "aws" {
  alias  = "osaka"
  region = var.dr_region
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # One policy name per module: role, queue, table and schedule names, and the ops-automation:policy tag that
  # scopes each policy's retirement to its own backups, must not collide.
  policy_names = {
    ami_backup          = "${var.name}-ami-backup"
    ebs_snapshot        = "${var.name}-ebs-snapshot"
    ebs_snapshot_weekly = "${var.name}-ebs-weekly"
    snapshot_copy       = "${var.name}-snapshot-copy"
    deregister_cleanup  = "${var.name}-deregister-cleanup"
    instance_scheduler  = "${var.name}-instance-scheduler"
    ssm_runcommand      = "${var.name}-ssm-runcommand"
  }

  # The modules choose at plan time what to create for a key (kms_key_arn == null decides a for_each): the key's
  # arn is unknown until it exists, while a string built around its id is known not to be null (Terraform 1.6
  # refinements), so one apply creates the key and everything that uses it.
  kms_key_arn = "arn:${local.partition}:kms:${data.aws_region.current.id}:${local.account_id}:key/${aws_kms_key.ops.key_id}"

  alert_topic_name = "${var.name}-alerts"
  # Built from its name, not read from the topic: the topic is encrypted with the key, whose policy holds the
  # modules' statements, one of which exists because the module has an alert topic; a reference would make the
  # key depend on itself. CloudWatch accepts an alarm action naming a topic that does not exist yet.
  alert_topic_arn    = "arn:${local.partition}:sns:${data.aws_region.current.id}:${local.account_id}:${local.alert_topic_name}"
  output_bucket_name = "${local.policy_names.ssm_runcommand}-output-${local.account_id}-${data.aws_region.current.id}"

  tags = {
    Example = "complete"
  }
}

################################################################################
# The shared key and alert topic
################################################################################

locals {
  # Each module's statements for the key (EventBridge to its encrypted queues, CloudWatch alarms to the encrypted
  # topic, CloudWatch Logs for its log groups) under the same Sids as the other modules': prefixed per module,
  # since a key policy's Sids must be unique.
  module_key_policies = {
    AmiBackup         = module.ami_backup.kms_key_policy_json
    EbsSnapshot       = module.ebs_snapshot.kms_key_policy_json
    EbsSnapshotWeekly = module.ebs_snapshot_weekly.kms_key_policy_json
    SnapshotCopy      = module.snapshot_copy.kms_key_policy_json
    DeregisterCleanup = module.deregister_cleanup.kms_key_policy_json
    InstanceScheduler = module.instance_scheduler.kms_key_policy_json
    SsmRunCommand     = module.ssm_runcommand.kms_key_policy_json
  }
  module_key_statements = flatten([
    for prefix, document in local.module_key_policies : [
      for statement in jsondecode(document).Statement : merge(statement, { Sid = "${prefix}${statement.Sid}" })
    ]
  ])
}

# source_policy_documents refuses two statements with one Sid: a collision fails the plan instead of one statement
# silently replacing another.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" is the key itself; the account root statement is the one that lets the account's IAM policies decide (the default key policy's).
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" is the key itself; the account root statement is the one that lets the account's IAM policies decide (the default key policy's).
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" is the key itself (a key policy can name no other resource).
  source_policy_documents = [jsonencode({ Version = "2012-10-17", Statement = local.module_key_statements })]

  # Everything else uses the key as an IAM principal of the account (the function and scheduler roles,
  # DynamoDB and Lambda through grants on behalf of whoever deploys): the account's IAM policies decide.
  statement {
    sid       = "AccountIamPolicies"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "ops" {
  description         = "Encrypts the ${var.name} ops automation: queues, tables, logs, functions' environment, schedules and the alert topic."
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json

  tags = local.tags
}

resource "aws_kms_alias" "ops" {
  name          = "alias/${var.name}-ops-automation"
  target_key_id = aws_kms_key.ops.key_id
}

# Encrypted with the shared key: CloudWatch alarms publish to it as cloudwatch.amazonaws.com (the modules' key
# policy statements admit it), the functions as their roles (which hold the key).
resource "aws_sns_topic" "alerts" {
  name              = local.alert_topic_name
  kms_master_key_id = aws_kms_key.ops.arn

  tags = local.tags

  lifecycle {
    postcondition {
      condition     = self.arn == local.alert_topic_arn
      error_message = "The alert topic is ${self.arn}, not ${local.alert_topic_arn} as the modules were told."
    }
  }
}

################################################################################
# Backups: nightly AMIs, hourly snapshots of data volumes, weekly copies to Osaka
################################################################################

# Every night at 01:00 Asia/Tokyo, an AMI of each instance tagged Backup = nightly, stopped ones included
# (CreateImage accepts a stopped instance); seven kept.
module "ami_backup" {
  source = "../../modules/ami-backup"

  name                = local.policy_names.ami_backup
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "nightly" }
  generations         = 7

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# Every hour, a snapshot of each data volume (the root volume left out) of the instances tagged
# Snapshot = data-volumes; a day of them kept.
module "ebs_snapshot" {
  source = "../../modules/ebs-snapshot"

  name                = local.policy_names.ebs_snapshot
  schedule_expression = "cron(0 * * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  instance_tags       = { Snapshot = "data-volumes" }
  exclude_root_volume = true
  generations         = 24
  # The module derives a day from any cron that fires daily; an hourly policy is late after two hours.
  missed_run_alarm_hours = 2

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# The source of the DR copies: snapshot-copy copies every completed snapshot of its source policies as soon as
# its event arrives, so copying the hourly policy would send 24 copies a day to Osaka. A weekly policy on the
# same volumes (Sunday 03:30, clear of the hourly one at 03:00) makes the copies weekly; two kept in Tokyo.
# Weekly runs are too far apart for the module's missed-run alarm (CloudWatch watches at most 7 days).
module "ebs_snapshot_weekly" {
  source = "../../modules/ebs-snapshot"

  name                = local.policy_names.ebs_snapshot_weekly
  schedule_expression = "cron(30 3 ? * SUN *)"
  schedule_timezone   = "Asia/Tokyo"
  instance_tags       = { Snapshot = "data-volumes" }
  exclude_root_volume = true
  generations         = 2

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# The key of the copies in Osaka (KMS keys are regional): the account's IAM policies decide, which lets the copy
# worker's KMS permissions apply.
resource "aws_kms_key" "osaka_copies" {
  provider = aws.osaka

  description         = "Encrypts the ${local.policy_names.snapshot_copy} snapshot copies in ${var.dr_region}."
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountIamPolicies"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })

  tags = local.tags
}

# Each weekly snapshot is copied to Osaka when it completes; the catch-up, Sundays after the weekly snapshots,
# copies what the events missed (a daily one would alert "no source matched" every day before the first one).
# Four copies (a month) kept per volume there.
module "snapshot_copy" {
  source = "../../modules/snapshot-copy"

  name                = local.policy_names.snapshot_copy
  schedule_expression = "cron(0 6 ? * SUN *)"
  schedule_timezone   = "Asia/Tokyo"
  source_policies     = [local.policy_names.ebs_snapshot_weekly]
  destinations = {
    (var.dr_region) = {
      kms_key_arn = aws_kms_key.osaka_copies.arn
    }
  }
  generations = 4

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# Forwards the copy results of Osaka to the work queue in Tokyo.
module "snapshot_copy_osaka" {
  source = "../../modules/snapshot-copy/modules/destination"

  providers = {
    aws = aws.osaka
  }

  name                     = local.policy_names.snapshot_copy
  event_bus_arn            = module.snapshot_copy.event_bus_arn
  event_forwarder_role_arn = module.snapshot_copy.event_forwarder_role_arn
  copy_images              = module.snapshot_copy.copy_images

  tags = local.tags
}

# When ami-backup retires an AMI (or anyone deregisters an AMI this project made), the snapshots EC2 created for
# it are deleted; the sweep at 03:30, after the night's retirements, catches what the events missed. Scope
# managed: only snapshots carrying the project's ownership tag.
module "deregister_cleanup" {
  source = "../../modules/deregister-cleanup"

  name                      = local.policy_names.deregister_cleanup
  scope                     = "managed"
  sweep_schedule_expression = "cron(30 3 * * ? *)"
  sweep_schedule_timezone   = "Asia/Tokyo"
  orphan_grace_hours        = 24

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

################################################################################
# Office hours
################################################################################

# Instances tagged Schedule = office-hours run 08:00-20:00 Asia/Tokyo, Monday to Friday, except on
# excluded_dates. Asia/Tokyo observes no daylight saving time, so every slot happens exactly once.
module "instance_scheduler" {
  source = "../../modules/instance-scheduler"

  name              = local.policy_names.instance_scheduler
  start_schedule    = "cron(0 8 ? * MON-FRI *)"
  stop_schedule     = "cron(0 20 ? * MON-FRI *)"
  schedule_timezone = "Asia/Tokyo"
  excluded_dates    = var.excluded_dates
  target_tags       = { Schedule = "office-hours" }

  hibernate           = false
  auto_scaling_groups = "skip"

  # Friday's runs to Monday's are 72 hours apart: one hour of grace over that.
  missed_run_alarm_hours = 73

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

################################################################################
# The nightly Run Command
################################################################################

# The command runs at night, when the office-hours instances are stopped (SSM would report them
# DeliveryTimedOut). It targets Schedule = always-on: an instance has one value per tag key, so no instance can
# be both a target of the command and of the scheduler.
module "ssm_runcommand" {
  source = "../../modules/ssm-runcommand"

  name                = local.policy_names.ssm_runcommand
  schedule_expression = "cron(30 2 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Schedule = "always-on", RunCommand = "nightly-db-backup" }

  document_name = "AWS-RunShellScript"
  parameters = {
    commands         = var.nightly_commands
    workingDirectory = ["/tmp"]
  }
  # An hour for the command itself; ten minutes for an instance to pick it up.
  execution_timeout_seconds = 3600
  timeout_seconds           = 600
  # Each instance's run is independent: one failure must not cancel the others.
  max_concurrency = "10"
  max_errors      = "100%"

  # .bucket, not .id: the name is known at plan time, and the module decides at plan time whether there is S3
  # output at all.
  output_s3_bucket_name = aws_s3_bucket.command_output.bucket
  output_s3_key_prefix  = local.policy_names.ssm_runcommand

  alarm_sns_topic_arn  = local.alert_topic_arn
  kms_key_arn          = local.kms_key_arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = local.tags
}

# SSE-KMS under the AWS managed aws/s3 key, not the shared key: its key policy lets every principal of the
# account use it through S3, so the instances' role needs no KMS permission. Versioned, private, emptied by the
# lifecycle rule below.
resource "aws_s3_bucket" "command_output" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket; who wrote the output is already in CloudTrail's SendCommand record and the command's history.
  #checkov:skip=CKV_AWS_144:Cross-region replication of a script's output has no recovery value: the next night writes a new one.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new output objects; the module learns each instance's outcome from SSM, not from S3.
  bucket        = local.output_bucket_name
  force_destroy = var.force_destroy_output_bucket

  tags = local.tags

  lifecycle {
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

# SSM Agent writes the output with the instances' own role: attach this policy to the role of the targets'
# instance profile (AmazonSSMManagedInstanceCore does not cover the bucket).
resource "aws_iam_policy" "instance_output" {
  name        = "${local.policy_names.ssm_runcommand}-instance-output"
  description = "Lets SSM Agent on the ${local.policy_names.ssm_runcommand} targets write the command output to ${aws_s3_bucket.command_output.id}/${local.policy_names.ssm_runcommand}/."
  policy      = module.ssm_runcommand.instance_output_policy_json

  tags = local.tags
}
