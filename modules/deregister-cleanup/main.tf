data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  service_name = "deregister-cleanup"

  # EC2 emits `EC2 AMI State Change` for every AMI of the account and region without CloudTrail (EC2 user
  # guide, "Amazon EventBridge events for AMIs"); the event carries only ImageId, State and ErrorMessage.
  # Only this account's own events: another account's, forwarded to this bus, are not this policy's (the worker
  # ignores them too).
  ami_deregistered_pattern = {
    source        = ["aws.ec2"]
    account       = [data.aws_caller_identity.current.account_id]
    "detail-type" = ["EC2 AMI State Change"]
    detail = {
      State = ["deregistered"]
    }
  }
  # Optional second source: the CloudTrail record of the DeregisterImage call, delivered to EventBridge only
  # when a trail records management events in the account. A failed call (errorCode) never matches; the
  # worker ignores events with errorCode or errorMessage as well.
  deregister_image_call_pattern = {
    source        = ["aws.ec2"]
    account       = [data.aws_caller_identity.current.account_id]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource  = ["ec2.amazonaws.com"]
      eventName    = ["DeregisterImage"]
      errorCode    = [{ exists = false }]
      errorMessage = [{ exists = false }]
    }
  }
  event_patterns = merge(
    { ami-deregistered = jsonencode(local.ami_deregistered_pattern) },
    var.cloudtrail_events ? { deregister-image-call = jsonencode(local.deregister_image_call_pattern) } : {},
  )
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  functions = {
    sweeper = {
      handler     = "ops_automation.deregister_cleanup.handlers.sweep_handler"
      description = "Finds the EBS snapshots of deregistered AMIs that policy ${var.name} missed and enqueues their purge."
      # Pages of 1,000 snapshots, the image and Recycle Bin checks and SendMessageBatch calls for a whole
      # account and region, even when the account's EC2 API throttles.
      timeout    = 900
      statements = local.sweeper_statements
      schedule = {
        expression = var.sweep_schedule_expression
        timezone   = var.sweep_schedule_timezone
      }
    }
    worker = {
      handler        = "ops_automation.deregister_cleanup.handlers.work_handler"
      description    = "Deletes the EBS snapshots left behind by deregistered AMIs for policy ${var.name}."
      timeout        = 300
      statements     = local.worker_statements
      denials        = local.worker_denials
      consumes_queue = true
    }
  }

  # Scope managed: DeleteSnapshot requires the managed-by tag only, since the snapshots were made by other
  # policies of this project (ami-backup, ebs-snapshot), never by this one.
  resource_ownership = "project"

  event_patterns = local.event_patterns

  # The OPS_* contract (docs/DESIGN.md): only the scope group; targets, retention and completion are not
  # used by this module (its settings are the OPS_CLEANUP_* variables below).
  scope = {
    regions     = var.regions
    role_arns   = var.target_role_arns
    external_id = var.target_role_external_id
  }
  environment = {
    OPS_CLEANUP_SCOPE                 = var.scope
    OPS_CLEANUP_EXCLUSION_TAG_KEY     = var.exclusion_tag_key
    OPS_CLEANUP_GRACE_HOURS           = tostring(var.orphan_grace_hours)
    OPS_CLEANUP_DELETE_ARCHIVED_EARLY = tostring(var.delete_archived_before_minimum)
    OPS_CLEANUP_DRY_RUN               = tostring(var.dry_run)
    OPS_CLEANUP_PRICES = jsonencode({
      standard = var.snapshot_price_per_gb_month.standard
      archive  = var.snapshot_price_per_gb_month.archive
    })
  }

  queue_consumer_max_concurrency = var.worker_max_concurrency
  missed_run_alarm_hours         = var.missed_run_alarm_hours

  log_retention_days     = var.log_retention_days
  kms_key_arn            = var.kms_key_arn
  powertools_layer_arn   = var.powertools_layer_arn
  tracing_enabled        = var.tracing_enabled
  point_in_time_recovery = var.point_in_time_recovery
  alarm_sns_topic_arn    = var.alarm_sns_topic_arn
  tags                   = var.tags
}
