data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rules; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = var.start_schedule != null || var.stop_schedule != null
      error_message = "At least one of start_schedule and stop_schedule must be set: the policy needs an action to schedule."
    }

    precondition {
      condition     = length(var.instance_ids) > 0 || length(var.target_tags) > 0
      error_message = "At least one of instance_ids and target_tags must be non-empty: the policy needs instances to start and stop."
    }

    # Groups and databases are found by their tags only: without target tags the worker's IAM would have to
    # allow resizing every group, or starting and stopping every database, of the account.
    precondition {
      condition     = var.auto_scaling_groups != "capacity" || length(var.target_tags) > 0
      error_message = "auto_scaling_groups = \"capacity\" needs target_tags: the groups to scale to 0/0/0 and back are those carrying every target tag (instance_ids cannot name a group)."
    }

    precondition {
      condition     = !var.schedule_rds || length(var.target_tags) > 0
      error_message = "schedule_rds = true needs target_tags: the RDS instances and Aurora clusters to stop and start are those carrying every target tag."
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
  service_name = "instance-scheduler"

  # Landing-zone targeting: accounts and OUs resolved at each slot, one role name in every account.
  fans_out = length(var.target_accounts) > 0 || length(var.target_organizational_units) > 0

  # One planner per scheduled action, both running the same handler; the schedule's input names the action
  # (internal merges the Scheduler context attributes, scheduled_time and schedule_arn, into it). An action
  # whose schedule is null gets no function at all: stop-only and start-only policies.
  schedules = {
    starter = var.start_schedule
    stopper = var.stop_schedule
  }
  functions = {
    starter = {
      handler     = "ops_automation.instance_scheduler.handlers.plan_handler"
      description = "Resolves the instances of instance scheduler policy ${var.name} and enqueues their start in batches."
      # Pages of instances and SendMessageBatch calls must end well within the timeout even when the
      # account's EC2 API throttles.
      timeout    = 300
      statements = local.planner_statements
      schedule = {
        expression = var.start_schedule
        timezone   = var.schedule_timezone
        input      = jsonencode({ action = "start" })
      }
    }
    stopper = {
      handler     = "ops_automation.instance_scheduler.handlers.plan_handler"
      description = "Resolves the instances of instance scheduler policy ${var.name} and enqueues their stop in batches."
      timeout     = 300
      statements  = local.planner_statements
      schedule = {
        expression = var.stop_schedule
        timezone   = var.schedule_timezone
        input      = jsonencode({ action = "stop" })
      }
    }
    worker = {
      handler        = "ops_automation.instance_scheduler.handlers.work_handler"
      description    = "Starts and stops the instances of instance scheduler policy ${var.name} and verifies they reached the desired state."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
  }

  # EC2 emits `EC2 Instance State-change Notification` for every instance of the account and region
  # (EC2 user guide, "Monitor instance state changes"; best effort); the detail is only instance-id and
  # state, so the worker re-reads the instance (DescribeInstances: State and StateReason) and the delayed
  # check covers a lost event. Only the end states of a start and a stop reach the queue. With listed
  # instances only (no target tags), the rule matches only their ids, so the rest of the account's churn
  # costs nothing (review note 14); with tags the worker drops events of instances without a pending record.
  # Every event is a trigger to re-read, never a verdict.
  instance_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Instance State-change Notification"]
    detail = {
      for key, values in { state = ["running", "stopped"], instance-id = var.instance_ids } :
      key => values if key == "state" || length(var.target_tags) == 0
    }
  }

  # Capacity mode: Auto Scaling emits these for every group of the account and region (EC2 Auto Scaling
  # user guide, "Amazon EC2 Auto Scaling event reference"); the worker re-reads the group (instances,
  # desired capacity, newest scaling activity) when one names a group with a pending record.
  auto_scaling_pattern = {
    source        = ["aws.autoscaling"]
    "detail-type" = ["EC2 Instance Launch Successful", "EC2 Instance Terminate Successful", "EC2 Instance Launch Unsuccessful"]
  }

  # RDS events (RDS user guide, "Amazon RDS event categories and event messages",
  # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html, notification category;
  # the same ids and texts in the Neptune user guide, which "uses existing Amazon RDS event definitions and IDs"):
  # - RDS-EVENT-0087 "The DB instance has been stopped."
  # - RDS-EVENT-0088 "The DB instance has been started."
  # - RDS-EVENT-0154 "The DB instance is being started due to it exceeding the maximum allowed time being stopped."
  # - RDS-EVENT-0150 "The DB cluster stopped."
  # - RDS-EVENT-0151 "The DB cluster started."
  # - RDS-EVENT-0153 "The DB cluster is being started due to it exceeding the maximum allowed time being stopped."
  # 0087/0088/0150/0151 trigger the re-read that verifies a stop or start; 0154/0153 (the 7-day auto-start)
  # make the worker stop again a database whose newest action was a stop. RDS emits events on a best effort
  # basis (Aurora user guide, "Monitoring Amazon Aurora events"): the delayed check and the next stop slot
  # cover a lost one.
  rds_pattern = {
    source        = ["aws.rds"]
    "detail-type" = ["RDS DB Instance Event", "RDS DB Cluster Event"]
    detail = {
      EventID = ["RDS-EVENT-0087", "RDS-EVENT-0088", "RDS-EVENT-0150", "RDS-EVENT-0151", "RDS-EVENT-0153", "RDS-EVENT-0154"]
    }
  }

  event_patterns = merge(
    { instance-state = jsonencode(local.instance_state_pattern) },
    var.auto_scaling_groups == "capacity" ? { auto-scaling = jsonencode(local.auto_scaling_pattern) } : {},
    var.schedule_rds ? { rds = jsonencode(local.rds_pattern) } : {},
  )
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  # Every function of local.functions but the planner of an action without a schedule.
  functions = { for key, fn in local.functions : key => fn if key == "worker" || lookup(local.schedules, key, null) != null }

  event_patterns = local.event_patterns

  # The OPS_* contract (docs/DESIGN.md) is encoded by the internal module from these typed groups; there
  # is no retention group: the module creates nothing that would need one.
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
  # The verification deadline, counted from the slot: an instance not in the desired state by then is
  # reported once, with its state reason.
  completion = {
    timeout_minutes = var.verify_deadline_minutes
    ledger_ttl_days = var.ledger_ttl_days
  }
  environment = {
    OPS_SCHEDULE_TIMEZONE = var.schedule_timezone
    OPS_EXCLUDED_DATES    = jsonencode(var.excluded_dates)
    OPS_OPT_OUT_TAG_KEY   = var.opt_out_tag_key == null ? "" : var.opt_out_tag_key
    OPS_ASG_MODE          = var.auto_scaling_groups
    OPS_HIBERNATE         = tostring(var.hibernate)
    OPS_SCHEDULE_RDS      = tostring(var.schedule_rds)
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
