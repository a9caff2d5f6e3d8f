data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rules; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = length(var.instance_ids) > 0 || length(var.target_tags) > 0
      error_message = "At least one of instance_ids or target_tags must be non-empty: the policy needs something to back up."
    }

    # Landing-zone targeting (target_accounts, target_organizational_units): one role name in every account,
    # never next to explicit role ARNs; ids name one account's resources, so such a policy targets by tags.
    precondition {
      condition     = length(var.target_role_arns) == 0 || !local.fans_out
      error_message = "target_role_arns cannot be combined with target_accounts or target_organizational_units (explicit roles, or target_role_name in every account); got target_role_arns = ${jsonencode(var.target_role_arns)}, target_accounts = ${jsonencode(var.target_accounts)}, target_organizational_units = ${jsonencode(var.target_organizational_units)}."
    }

    precondition {
      condition     = !local.fans_out || length(var.instance_ids) == 0
      error_message = "instance_ids name resources of one account and cannot be used with target_accounts or target_organizational_units: target them by tags; got instance_ids = ${jsonencode(var.instance_ids)}."
    }

    precondition {
      condition     = local.fans_out == (var.target_role_name != null)
      error_message = "target_role_name is needed with target_accounts or target_organizational_units, and only with them; got target_role_name = ${jsonencode(var.target_role_name)}, target_accounts = ${jsonencode(var.target_accounts)}, target_organizational_units = ${jsonencode(var.target_organizational_units)}."
    }

    precondition {
      condition     = (length(var.target_organizational_units) > 0) == (var.target_organization_id != null)
      error_message = "target_organization_id is needed with target_organizational_units, and only with them; got target_organization_id = ${jsonencode(var.target_organization_id)}, target_organizational_units = ${jsonencode(var.target_organizational_units)}."
    }

    precondition {
      condition     = var.organizations_role_arn == null || length(var.target_organizational_units) > 0
      error_message = "organizations_role_arn is only used to list target_organizational_units, which is empty; got organizations_role_arn = ${jsonencode(var.organizations_role_arn)}."
    }

    precondition {
      condition     = !contains(var.regions, "all-enabled") || local.fans_out
      error_message = "regions = [\"all-enabled\"] (each target account's enabled regions) needs target_accounts or target_organizational_units; got regions = ${jsonencode(var.regions)}."
    }

    precondition {
      condition     = length(var.exclude_accounts) == 0 || local.fans_out
      error_message = "exclude_accounts only leaves accounts out of target_accounts and target_organizational_units, which are empty; got exclude_accounts = ${jsonencode(var.exclude_accounts)}."
    }
  }
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  service_name = "ami-backup"

  # Landing-zone targeting: accounts and OUs resolved at each slot, one role name in every account.
  fans_out = length(var.target_accounts) > 0 || length(var.target_organizational_units) > 0

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
      handler     = "ops_automation.ami_backup.handlers.plan_handler"
      description = "Resolves the instances of AMI backup policy ${var.name} and enqueues one work item each."
      # Pages of 1,000 instances and SendMessageBatch calls must end well within the timeout even when
      # the account's EC2 API throttles.
      timeout    = 300
      statements = local.planner_statements
      schedule = {
        expression = var.schedule_expression
        timezone   = var.schedule_timezone
      }
    }
    worker = {
      handler        = "ops_automation.ami_backup.handlers.work_handler"
      description    = "Creates, checks and retires the AMIs of backup policy ${var.name}."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
  }

  event_patterns = {
    ami-state = jsonencode(local.ami_state_pattern)
  }

  # The OPS_* contract (docs/DESIGN.md) is encoded by the internal module from these typed groups.
  scope = {
    regions                = var.regions
    role_arns              = var.target_role_arns
    external_id            = var.target_role_external_id
    accounts               = var.target_accounts
    organizational_units   = var.target_organizational_units
    role_name              = var.target_role_name
    organization_id        = var.target_organization_id
    organizations_role_arn = var.organizations_role_arn
    excluded_accounts      = var.exclude_accounts
  }
  targets = {
    instance_ids = var.instance_ids
    tags         = var.target_tags
  }
  retention = {
    generations  = var.generations
    max_age_days = var.max_age_days
    dry_run      = var.dry_run
  }
  completion = {
    timeout_minutes = var.completion_timeout_minutes
    ledger_ttl_days = var.ledger_ttl_days
  }
  environment = {
    OPS_NO_REBOOT          = tostring(var.no_reboot)
    OPS_COPY_INSTANCE_TAGS = tostring(var.copy_instance_tags)
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
