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

    # Restore tests act in ONE target (README, Restore tests): a region the policy backs up and an account it
    # reaches; landing-zone fan-out is left for later.
    precondition {
      condition     = var.restore_test == null || !local.fans_out
      error_message = "restore_test cannot be combined with target_accounts or target_organizational_units yet (restore tests act in one account: this one or one of target_role_arns); got target_accounts = ${jsonencode(var.target_accounts)}, target_organizational_units = ${jsonencode(var.target_organizational_units)}."
    }

    precondition {
      condition     = var.restore_test == null || try(length(var.target_role_arns) == 0 ? var.restore_test.role_arn == null : contains(var.target_role_arns, var.restore_test.role_arn), false)
      error_message = "restore_test.role_arn must be one of target_role_arns (the accounts whose backups this policy makes), or null when target_role_arns is empty (this account); got restore_test.role_arn = ${jsonencode(try(var.restore_test.role_arn, null))}, target_role_arns = ${jsonencode(var.target_role_arns)}."
    }

    precondition {
      condition     = var.restore_test == null || contains(length(var.regions) == 0 ? [data.aws_region.current.id] : var.regions, try(coalesce(var.restore_test.region, data.aws_region.current.id), ""))
      error_message = "restore_test.region (null = the deployment region ${data.aws_region.current.id}) must be one of the regions this policy backs up (regions, or the deployment region when empty); got restore_test.region = ${jsonencode(try(var.restore_test.region, null))}, regions = ${jsonencode(var.regions)}."
    }

    # iam:PassRole passes a role only to a service of the role's own account (IAM user guide, "Grant a user
    # permissions to pass a role to an AWS service", https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
    precondition {
      condition     = try(var.restore_test.instance_role_arn == null, true) || try(split(":", var.restore_test.instance_role_arn)[4] == (var.restore_test.role_arn == null ? data.aws_caller_identity.current.account_id : split(":", var.restore_test.role_arn)[4]), false)
      error_message = "restore_test.instance_role_arn must be a role of the account the restore tests run in (this account, or restore_test.role_arn's): EC2 accepts only a role of its own account; got restore_test.instance_role_arn = ${jsonencode(try(var.restore_test.instance_role_arn, null))}, restore_test.role_arn = ${jsonencode(try(var.restore_test.role_arn, null))}."
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

  # Restore tests: the state changes of instances (EC2 user guide, "Amazon EventBridge events for Amazon EC2":
  # detail-type "EC2 Instance State-change Notification", detail.state), so a restored instance's run or fall is
  # seen without waiting for the next check. Every instance of the region matches; the worker ignores, without an
  # EC2 call, an instance with no restore-test ledger entry. Events of the deployment account and region only:
  # a restore target elsewhere is observed by the delayed checks alone.
  instance_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Instance State-change Notification"]
    detail = {
      state = ["running", "shutting-down", "terminated", "stopped"]
    }
  }
  event_patterns = merge(
    { ami-state = jsonencode(local.ami_state_pattern) },
    var.restore_test == null ? {} : { instance-state = jsonencode(local.instance_state_pattern) },
  )

  # Every function the module can deploy; `restore` only with restore_test (module.this.functions filters).
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
      description    = "Creates, checks and retires the AMIs of backup policy ${var.name}, and runs its restore tests."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
    # Plans the restore tests (reads only): the worker launches, checks and cleans them up.
    restore = {
      handler     = "ops_automation.ami_backup.handlers.restore_handler"
      description = "Selects the AMIs of backup policy ${var.name} to restore-test and enqueues one test each."
      timeout     = 300
      statements  = local.restore_statements
      schedule = {
        expression           = try(var.restore_test.schedule_expression, "rate(7 days)")
        timezone             = try(var.restore_test.schedule_timezone, "UTC")
        own_missed_run_alarm = true
      }
    }
  }
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  # Every function of local.functions but the restore planner when restore_test is off.
  functions = { for key, fn in local.functions : key => fn if key != "restore" || var.restore_test != null }

  event_patterns = local.event_patterns

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
  restore_test = {
    config = var.restore_test == null ? null : {
      region                = var.restore_test.region
      role_arn              = var.restore_test.role_arn
      subnet_id             = var.restore_test.subnet_id
      security_group_id     = var.restore_test.security_group_id
      sources               = var.restore_test.sources
      sample_size           = var.restore_test.sample_size
      source_tags           = var.restore_test.source_tags
      max_concurrent        = var.restore_test.max_concurrent
      deadline_minutes      = var.restore_test.deadline_minutes
      instance_type         = var.restore_test.instance_type
      validation_document   = var.restore_test.validation_document
      validation_parameters = var.restore_test.validation_parameters
      instance_profile_name = var.restore_test.instance_profile_name
      allow_routed_subnet   = var.restore_test.allow_routed_subnet
      # Not used by AMI restore tests (RestoreTestConfig.volume_type is a string): internal's default, gp3.
    }
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
