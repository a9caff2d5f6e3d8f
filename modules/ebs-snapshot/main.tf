data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rules; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = length(var.volume_ids) > 0 || length(var.volume_tags) > 0 || length(var.instance_ids) > 0 || length(var.instance_tags) > 0
      error_message = "At least one of volume_ids, volume_tags, instance_ids or instance_tags must be non-empty: the policy needs something to snapshot."
    }

    precondition {
      condition     = var.snapshot_mode != "instance" || ((length(var.instance_ids) > 0 || length(var.instance_tags) > 0) && length(var.volume_ids) == 0 && length(var.volume_tags) == 0)
      error_message = "snapshot_mode = \"instance\" takes one crash-consistent set per instance: it needs instance_ids or instance_tags, and volume_ids and volume_tags must be empty (use snapshot_mode = \"volume\" for them); got instance_ids = ${jsonencode(var.instance_ids)}, instance_tags = ${jsonencode(var.instance_tags)}, volume_ids = ${jsonencode(var.volume_ids)}, volume_tags = ${jsonencode(var.volume_tags)}."
    }

    # Landing-zone targeting (target_accounts, target_organizational_units): one role name in every account,
    # never next to explicit role ARNs; ids name one account's resources, so such a policy targets by tags.
    precondition {
      condition     = length(var.target_role_arns) == 0 || !local.fans_out
      error_message = "target_role_arns cannot be combined with target_accounts or target_organizational_units (explicit roles, or target_role_name in every account); got target_role_arns = ${jsonencode(var.target_role_arns)}, target_accounts = ${jsonencode(var.target_accounts)}, target_organizational_units = ${jsonencode(var.target_organizational_units)}."
    }

    precondition {
      condition     = !local.fans_out || (length(var.instance_ids) == 0 && length(var.volume_ids) == 0)
      error_message = "instance_ids and volume_ids name resources of one account and cannot be used with target_accounts or target_organizational_units: target them by tags; got instance_ids = ${jsonencode(var.instance_ids)}, volume_ids = ${jsonencode(var.volume_ids)}."
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
  }
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  service_name = "ebs-snapshot"

  # Landing-zone targeting: accounts and OUs resolved at each slot, one role name in every account.
  fans_out = length(var.target_accounts) > 0 || length(var.target_organizational_units) > 0

  # One rule, for the completion events of the mode's own call only (EBS user guide, "Amazon EventBridge
  # events for Amazon EBS"): CreateSnapshot reports as `EBS Snapshot Notification` / createSnapshot with a
  # result; CreateSnapshots has its own detail-type and reports every volume of the set in one event.
  snapshot_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EBS Snapshot Notification"]
    detail = {
      event  = ["createSnapshot"]
      result = ["succeeded", "failed"]
    }
  }
  snapshot_set_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EBS Multi-Volume Snapshots Completion Status"]
    detail = {
      event = ["createSnapshots"]
    }
  }
  event_rule_key = var.snapshot_mode == "instance" ? "snapshot-set-state" : "snapshot-state"

  # Restore tests: the outcome of each CreateVolume (EBS user guide, "Amazon EventBridge for Amazon EBS": detail-type
  # "EBS Volume Notification", event createVolume, result available | failed), so a restored volume's verdict does not
  # wait for the next check. Every volume of the region matches; the worker ignores, without an EC2 call, a volume
  # with no restore-test ledger entry. Events of the deployment account and region only: a restore target elsewhere is
  # observed by the delayed checks alone.
  volume_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EBS Volume Notification"]
    detail = {
      event = ["createVolume"]
    }
  }
  event_patterns = merge(
    {
      (local.event_rule_key) = var.snapshot_mode == "instance" ? jsonencode(local.snapshot_set_state_pattern) : jsonencode(local.snapshot_state_pattern)
    },
    var.restore_test == null ? {} : { volume-state = jsonencode(local.volume_state_pattern) },
  )

  # Every function the module can deploy; `restore` only with restore_test (module.this.functions filters).
  functions = {
    planner = {
      handler     = "ops_automation.ebs_snapshot.handlers.plan_handler"
      description = "Resolves the volumes or instances of EBS snapshot policy ${var.name} and enqueues one work item each."
      # Pages of volumes and instances and SendMessageBatch calls must end well within the timeout even
      # when the account's EC2 API throttles.
      timeout    = 300
      statements = local.planner_statements
      schedule = {
        expression = var.schedule_expression
        timezone   = var.schedule_timezone
      }
    }
    worker = {
      handler        = "ops_automation.ebs_snapshot.handlers.work_handler"
      description    = "Creates, checks and retires the EBS snapshots of policy ${var.name}, and runs its restore tests."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
    # Plans the restore tests (reads only): the worker creates, checks and deletes the volumes.
    restore = {
      handler     = "ops_automation.ebs_snapshot.handlers.restore_handler"
      description = "Selects the snapshot sets of policy ${var.name} to restore-test and enqueues one test each."
      timeout     = 300
      statements  = local.restore_statements
      # Instance-mode sets are what their ledger claim recorded (a snapshot carrying copied set tags is no member).
      reads_ledger = true
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
    instance_ids        = var.instance_ids
    tags                = var.instance_tags
    volume_ids          = var.volume_ids
    volume_tags         = var.volume_tags
    exclude_volume_tags = var.exclude_volume_tags
    exclude_root_volume = var.exclude_root_volume
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
      region            = var.restore_test.region
      role_arn          = var.restore_test.role_arn
      subnet_id         = var.restore_test.subnet_id
      security_group_id = var.restore_test.security_group_id
      sources           = var.restore_test.sources
      sample_size       = var.restore_test.sample_size
      source_tags       = var.restore_test.source_tags
      max_concurrent    = var.restore_test.max_concurrent
      deadline_minutes  = var.restore_test.deadline_minutes
      volume_type       = var.restore_test.volume_type
      # instance_type, validation_*, instance_profile_name, allow_routed_subnet: AMI restore tests only (internal's
      # defaults: null, {}, false).
    }
  }
  environment = {
    OPS_SNAPSHOT_MODE    = var.snapshot_mode
    OPS_COPY_VOLUME_TAGS = tostring(var.copy_volume_tags)
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
