# Plan-level checks of the deregister-cleanup module with a mocked AWS provider: IAM per scope (the
# ownership of DeleteSnapshot, the exclusion Deny in both), the event rules (CloudTrail only when enabled),
# wiring of inputs into the internal module, and input validation.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      id   = "ap-northeast-1"
      name = "ap-northeast-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  name = "ami-orphans"
}

run "managed_scope_iam" {
  command = plan

  assert {
    condition = toset(flatten([for s in local.sweeper_statements : s.actions])) == toset([
      "ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:ListImagesInRecycleBin",
    ]) && alltrue([for s in local.sweeper_statements : tolist(s.resources) == tolist(["*"]) && s.ownership == "none"])
    error_message = "The sweeper only reads snapshots, images and the Recycle Bin, on * (no resource type)."
  }

  assert {
    condition = toset(flatten([for s in local.worker_statements : s.actions])) == toset([
      "ec2:DescribeSnapshots", "ec2:DescribeImages", "ec2:ListImagesInRecycleBin",
      "ec2:DescribeLockedSnapshots", "ec2:DescribeSnapshotTierStatus", "ec2:DeleteSnapshot",
    ])
    error_message = "The worker reads like the sweeper, plus locks and tier status, and deletes snapshots, nothing else."
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "ec2:DeleteSnapshot")]) == 1 &&
      alltrue([
        for s in local.worker_statements : s.sid == "DeleteManagedSnapshots" && s.ownership == "resource" && length(s.conditions) == 0 && tolist(s.actions) == tolist(["ec2:DeleteSnapshot"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*::snapshot/*"])
        if contains(s.actions, "ec2:DeleteSnapshot")
      ])
    )
    error_message = "Scope managed: DeleteSnapshot on snapshots only, bound to the ownership resource tags (internal adds the managed-by condition)."
  }

  assert {
    condition = (
      length(local.worker_denials) == 1 &&
      local.worker_denials[0].sid == "NeverDeleteExcludedSnapshots" &&
      tolist(local.worker_denials[0].actions) == tolist(["ec2:DeleteSnapshot"]) &&
      tolist(local.worker_denials[0].resources) == tolist(["arn:aws:ec2:*::snapshot/*"]) &&
      [for c in local.worker_denials[0].conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["Null aws:ResourceTag/ops-automation:keep=false"]
    )
    error_message = "Scope managed: DeleteSnapshot is denied on every snapshot carrying the exclusion tag key, whatever its value."
  }
}

run "any_scope_iam" {
  command = plan

  variables {
    scope             = "any"
    exclusion_tag_key = "Retain"
  }

  assert {
    condition = (
      length([for s in local.worker_statements : s if contains(s.actions, "ec2:DeleteSnapshot")]) == 1 &&
      alltrue([
        for s in local.worker_statements : s.sid == "DeleteAnySnapshot" && s.ownership == "unowned" && length(s.conditions) == 0 && tolist(s.resources) == tolist(["arn:aws:ec2:*::snapshot/*"])
        if contains(s.actions, "ec2:DeleteSnapshot")
      ])
    )
    error_message = "Scope any: DeleteSnapshot on the account's snapshots without a tag condition, declared unowned."
  }

  assert {
    condition = (
      length(local.worker_denials) == 1 &&
      [for c in local.worker_denials[0].conditions : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["Null aws:ResourceTag/Retain=false"]
    )
    error_message = "Scope any: the exclusion Deny still applies, on the configured key."
  }

  assert {
    condition     = output.function_environment_variables["OPS_CLEANUP_SCOPE"] == "any" && output.function_environment_variables["OPS_CLEANUP_EXCLUSION_TAG_KEY"] == "Retain"
    error_message = "Scope and exclusion tag key must reach the functions."
  }
}

run "ami_state_rule_only_by_default" {
  command = plan

  assert {
    condition = (
      keys(local.event_patterns) == ["ami-deregistered"] &&
      jsondecode(local.event_patterns["ami-deregistered"]) == {
        source        = ["aws.ec2"]
        account       = ["111122223333"]
        "detail-type" = ["EC2 AMI State Change"]
        detail        = { State = ["deregistered"] }
      }
    )
    error_message = "Without cloudtrail_events only the EC2 AMI State Change rule (state deregistered, this account's events) exists."
  }

  assert {
    condition     = output.cloudtrail_event_rule_arn == null
    error_message = "Without cloudtrail_events there is no CloudTrail rule ARN."
  }
}

run "cloudtrail_rule_when_enabled" {
  command = plan

  variables {
    cloudtrail_events = true
  }

  assert {
    condition = (
      toset(keys(local.event_patterns)) == toset(["ami-deregistered", "deregister-image-call"]) &&
      jsondecode(local.event_patterns["deregister-image-call"]) == {
        source        = ["aws.ec2"]
        account       = ["111122223333"]
        "detail-type" = ["AWS API Call via CloudTrail"]
        detail = {
          eventSource  = ["ec2.amazonaws.com"]
          eventName    = ["DeregisterImage"]
          errorCode    = [{ exists = false }]
          errorMessage = [{ exists = false }]
        }
      }
    )
    error_message = "cloudtrail_events adds the DeregisterImage rule, which never matches a failed call (errorCode or errorMessage) nor another account's event."
  }
}

run "functions_schedule_and_environment" {
  command = plan

  assert {
    condition     = output.sweeper_handler == "ops_automation.deregister_cleanup.handlers.sweep_handler" && output.worker_handler == "ops_automation.deregister_cleanup.handlers.work_handler"
    error_message = "The handler strings must follow the ops_automation/<module>/handlers.py layout."
  }

  assert {
    condition     = output.function_timeouts["sweeper"] == 900 && output.function_timeouts["worker"] == 300 && output.work_queue_visibility_timeout_seconds >= 6 * output.function_timeouts["worker"]
    error_message = "Sweeper 900 s, worker 300 s; the work queue visibility timeout must be at least 6 x the worker timeout."
  }

  assert {
    condition     = output.schedule.expression == "cron(30 3 * * ? *)" && output.schedule.timezone == "UTC" && output.missed_run_alarm_hours == 25
    error_message = "The default sweep runs daily at 03:30 UTC and alarms after 25 hours without a run."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_CLEANUP_SCOPE"] == "managed" &&
      output.function_environment_variables["OPS_CLEANUP_EXCLUSION_TAG_KEY"] == "ops-automation:keep" &&
      output.function_environment_variables["OPS_CLEANUP_GRACE_HOURS"] == "24" &&
      output.function_environment_variables["OPS_CLEANUP_DELETE_ARCHIVED_EARLY"] == "false" &&
      output.function_environment_variables["OPS_CLEANUP_DRY_RUN"] == "false" &&
      jsondecode(output.function_environment_variables["OPS_CLEANUP_PRICES"]) == { standard = 0.05, archive = 0.0125 } &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == [] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"]) == [] &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "deregister-cleanup" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "ami-orphans"
    )
    error_message = "The functions' environment must follow the contract's table and defaults."
  }

  assert {
    condition = length(setintersection(keys(output.function_environment_variables), [
      "OPS_GENERATIONS", "OPS_MAX_AGE_DAYS", "OPS_DRY_RUN", "OPS_INSTANCE_IDS", "OPS_TARGET_TAGS",
      "OPS_VOLUME_IDS", "OPS_COMPLETION_TIMEOUT_MINUTES", "OPS_LEDGER_TTL_DAYS",
    ])) == 0
    error_message = "The targets, retention and completion groups of internal are not used by this module."
  }
}

run "inputs_reach_the_environment" {
  command = plan

  variables {
    orphan_grace_hours             = 72
    delete_archived_before_minimum = true
    dry_run                        = true
    snapshot_price_per_gb_month    = { standard = 0.06 }
    regions                        = ["ap-northeast-1", "us-east-1"]
    target_role_arns               = ["arn:aws:iam::444455556666:role/ops-automation-target"]
    sweep_schedule_expression      = "rate(12 hours)"
    sweep_schedule_timezone        = "Asia/Tokyo"
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_CLEANUP_GRACE_HOURS"] == "72" &&
      output.function_environment_variables["OPS_CLEANUP_DELETE_ARCHIVED_EARLY"] == "true" &&
      output.function_environment_variables["OPS_CLEANUP_DRY_RUN"] == "true" &&
      jsondecode(output.function_environment_variables["OPS_CLEANUP_PRICES"]) == { standard = 0.06, archive = 0.0125 } &&
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"])) == var.regions &&
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"])) == var.target_role_arns
    )
    error_message = "Optional inputs must reach the functions' environment (a price left out keeps its default)."
  }

  assert {
    condition     = output.schedule.expression == "rate(12 hours)" && output.schedule.timezone == "Asia/Tokyo" && output.missed_run_alarm_hours == 13
    error_message = "The sweep schedule and its timezone are passed through; the missed-run alarm follows the interval."
  }
}

run "rejects_unknown_scope" {
  command = plan

  variables {
    scope = "all"
  }

  expect_failures = [var.scope]
}

run "rejects_aws_exclusion_tag_key" {
  command = plan

  variables {
    exclusion_tag_key = "aws:backup:source-resource"
  }

  expect_failures = [var.exclusion_tag_key]
}

run "rejects_overlong_exclusion_tag_key" {
  command = plan

  variables {
    exclusion_tag_key = "k${join("", [for i in range(128) : "x"])}"
  }

  expect_failures = [var.exclusion_tag_key]
}

run "rejects_ownership_tag_as_exclusion_tag_key" {
  command = plan

  variables {
    exclusion_tag_key = "ops-automation:managed-by"
  }

  expect_failures = [var.exclusion_tag_key]
}

run "rejects_zero_grace_hours" {
  command = plan

  variables {
    orphan_grace_hours = 0
  }

  expect_failures = [var.orphan_grace_hours]
}

run "rejects_grace_over_a_year" {
  command = plan

  variables {
    orphan_grace_hours = 8761
  }

  expect_failures = [var.orphan_grace_hours]
}

run "rejects_negative_price" {
  command = plan

  variables {
    snapshot_price_per_gb_month = { standard = -0.05 }
  }

  expect_failures = [var.snapshot_price_per_gb_month]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "1-orphans"
  }

  expect_failures = [var.name]
}

run "rejects_bad_sweep_schedule_expression" {
  command = plan

  variables {
    sweep_schedule_expression = "30 3 * * *"
  }

  expect_failures = [var.sweep_schedule_expression]
}

run "rejects_bad_region" {
  command = plan

  variables {
    regions = ["tokyo"]
  }

  expect_failures = [var.regions]
}

run "rejects_non_role_arn" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:user/someone"]
  }

  expect_failures = [var.target_role_arns]
}

run "rejects_worker_concurrency_below_two" {
  command = plan

  variables {
    worker_max_concurrency = 1
  }

  expect_failures = [var.worker_max_concurrency]
}

run "rejects_unsupported_log_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "target_role_external_id_reaches_the_functions" {
  command = plan

  variables {
    target_role_external_id = "hub-7f3a:landing/zone"
  }

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == "hub-7f3a:landing/zone"
    error_message = "target_role_external_id reaches the functions as OPS_TARGET_ROLE_EXTERNAL_ID."
  }
}

run "no_target_role_external_id_is_an_empty_variable" {
  command = plan

  assert {
    condition     = output.function_environment_variables["OPS_TARGET_ROLE_EXTERNAL_ID"] == ""
    error_message = "Without target_role_external_id, OPS_TARGET_ROLE_EXTERNAL_ID is empty (no ExternalId is sent)."
  }
}

run "rejects_a_target_role_external_id_with_white_space" {
  command = plan

  variables {
    target_role_external_id = "hub id"
  }

  expect_failures = [var.target_role_external_id]
}
