data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rule; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = length(var.instance_ids) > 0 || length(var.target_tags) > 0
      error_message = "At least one of instance_ids or target_tags must be non-empty: the policy needs something to back up."
    }
  }
}

locals {
  service_name = "ami-backup"

  # Contract with lambda_src/ops_automation/config.py (docs/DESIGN.md): JSON for lists and maps,
  # "true"/"false" for booleans, "" for an absent number.
  environment = {
    OPS_TARGET_REGIONS             = jsonencode(var.regions)
    OPS_TARGET_ROLE_ARNS           = jsonencode(var.target_role_arns)
    OPS_INSTANCE_IDS               = jsonencode(var.instance_ids)
    OPS_TARGET_TAGS                = jsonencode(var.target_tags)
    OPS_GENERATIONS                = tostring(var.generations)
    OPS_MAX_AGE_DAYS               = var.max_age_days == null ? "" : tostring(var.max_age_days)
    OPS_NO_REBOOT                  = tostring(var.no_reboot)
    OPS_COPY_INSTANCE_TAGS         = tostring(var.copy_instance_tags)
    OPS_DRY_RUN                    = tostring(var.dry_run)
    OPS_COMPLETION_TIMEOUT_MINUTES = tostring(var.completion_timeout_minutes)
    OPS_LEDGER_TTL_DAYS            = tostring(var.ledger_ttl_days)
  }

  ami_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 AMI State Change"]
    detail = {
      State = ["available", "failed"]
    }
  }
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  functions = {
    planner = {
      handler     = "ops_automation.ami_backup.plan_handler"
      description = "Resolves the instances of AMI backup policy ${var.name} and enqueues one work item each."
      policy_json = data.aws_iam_policy_document.planner.json
      schedule = {
        expression = var.schedule_expression
        timezone   = var.schedule_timezone
      }
    }
    worker = {
      handler        = "ops_automation.ami_backup.work_handler"
      description    = "Creates, checks and retires the AMIs of backup policy ${var.name}."
      timeout        = 300
      policy_json    = data.aws_iam_policy_document.worker.json
      consumes_queue = true
    }
  }

  event_patterns = {
    ami-state = jsonencode(local.ami_state_pattern)
  }

  environment     = local.environment
  failure_metrics = ["BackupsFailed"]

  log_retention_days     = var.log_retention_days
  kms_key_arn            = var.kms_key_arn
  powertools_layer_arn   = var.powertools_layer_arn
  tracing_enabled        = var.tracing_enabled
  point_in_time_recovery = var.point_in_time_recovery
  alarm_sns_topic_arn    = var.alarm_sns_topic_arn
  tags                   = var.tags
}
