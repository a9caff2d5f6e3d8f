data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rules; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = length(var.source_policies) > 0 || length(var.source_ids) > 0 || length(var.source_tags) > 0
      error_message = "At least one of source_policies, source_ids or source_tags must be non-empty: the policy needs something to copy."
    }

    precondition {
      condition     = alltrue([for id in var.source_ids : startswith(id, var.copy_images ? "ami-" : "snap-")])
      error_message = "source_ids must be ${var.copy_images ? "AMI ids (ami-...) with copy_images = true" : "snapshot ids (snap-...) with copy_images = false"}; invalid: ${jsonencode([for id in var.source_ids : id if !startswith(id, var.copy_images ? "ami-" : "snap-")])}."
    }

    precondition {
      condition     = var.encrypted || alltrue([for d in values(var.destinations) : d.kms_key_arn == null])
      error_message = "encrypted = false cannot be combined with a destination kms_key_arn (CopySnapshot: \"If KmsKeyId is specified, the encrypted state must be true.\"); destinations with a key: ${jsonencode(sort([for r, d in var.destinations : r if d.kms_key_arn != null]))}."
    }

    precondition {
      condition     = !var.copy_images || alltrue([for d in values(var.destinations) : d.role_arn == null])
      error_message = "copy_images = true cannot be combined with a destination role_arn: cross-account AMI copies (sharing the AMI, each backing snapshot and its key) are not built yet; destinations with a role: ${jsonencode(sort([for r, d in var.destinations : r if d.role_arn != null]))}."
    }

    precondition {
      condition     = alltrue([for d in values(var.destinations) : d.completion_duration_minutes == null || var.completion_timeout_minutes >= coalesce(d.completion_duration_minutes, 0) + 60])
      error_message = "completion_timeout_minutes (${var.completion_timeout_minutes}) must be at least an hour longer than every destination's completion_duration_minutes: a copy that misses its duration still completes (a warning, not a failure) and must not be reported as timed out first; got ${jsonencode({ for r, d in var.destinations : r => d.completion_duration_minutes if d.completion_duration_minutes != null })}."
    }
  }
}

data "aws_region" "current" {
  lifecycle {
    # The source is the deployment region (the default provider's): a destination there would copy every
    # source onto itself.
    postcondition {
      condition     = !contains(keys(var.destinations), self.id)
      error_message = "destinations must not include the source region ${self.id} (the region this module is deployed in, where the sources are); got ${jsonencode(keys(var.destinations))}."
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  service_name = "snapshot-copy"

  # Events of the source region (EBS user guide, "Amazon EventBridge events for Amazon EBS"; EC2 user
  # guide, "Amazon EventBridge events for AMIs"): a completed source is a copy to start. Sources are the
  # snapshots of CreateSnapshot (`EBS Snapshot Notification` createSnapshot succeeded) and of CreateSnapshots
  # (`EBS Multi-Volume Snapshots Completion Status`, one event per set), or AMIs (`EC2 AMI State Change`).
  snapshot_created_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EBS Snapshot Notification"]
    detail = {
      event  = ["createSnapshot"]
      result = ["succeeded"]
    }
  }
  snapshot_set_created_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EBS Multi-Volume Snapshots Completion Status"]
    detail = {
      event = ["createSnapshots"]
    }
  }
  # AMIs: available in the source region is a source to copy; available/failed forwarded from a destination
  # region is a copy's completion (the event comes from the region where the AMI is).
  ami_state_pattern = {
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 AMI State Change"]
    detail = {
      State = ["available", "failed"]
    }
  }
  # Copy results, emitted in the destination region ("If you are copying the snapshot across Regions, then
  # the event is emitted in the destination Region") and forwarded to this region's default bus by the
  # destination sub-module: `copySnapshot` with any result, and the missed completion duration of a
  # time-based copy (its detail has no result). Only from the destination regions.
  copy_result_pattern = {
    source        = ["aws.ec2"]
    region        = sort(keys(var.destinations))
    "detail-type" = ["EBS Snapshot Notification", "EBS Copy Snapshot Missed Completion Duration"]
    detail = {
      event = ["copySnapshot"]
    }
  }
  event_patterns = merge(
    var.copy_images ? { ami-state = jsonencode(local.ami_state_pattern) } : {
      snapshot-created            = jsonencode(local.snapshot_created_pattern)
      snapshot-set-created        = jsonencode(local.snapshot_set_created_pattern)
    },
    { copy-result = jsonencode(local.copy_result_pattern) },
  )

  # The OPS_COPY_DESTINATIONS contract: every key of every destination, null when not set.
  copy_destinations = {
    for region, d in var.destinations : region => {
      kms_key_arn                 = d.kms_key_arn
      role_arn                    = d.role_arn
      completion_duration_minutes = d.completion_duration_minutes
    }
  }
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  functions = {
    planner = {
      handler     = "ops_automation.snapshot_copy.handlers.plan_handler"
      description = "Finds the sources of snapshot copy policy ${var.name} that lack a copy in a destination region and enqueues them."
      # Pages of sources and of copies in every destination region, even when the EC2 API throttles.
      timeout    = 300
      statements = local.planner_statements
      schedule = {
        expression = var.schedule_expression
        timezone   = var.schedule_timezone
      }
    }
    worker = {
      handler        = "ops_automation.snapshot_copy.handlers.work_handler"
      description    = "Copies, checks and retires the cross-region copies of policy ${var.name}."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
  }

  event_patterns = local.event_patterns

  # The OPS_* contract (docs/DESIGN.md): the source is the deployment account and region (an empty scope, whose
  # external id goes with the destination roles' AssumeRole); no targets group (the sources are OPS_SOURCE_*).
  scope = {
    regions     = []
    role_arns   = []
    external_id = var.target_role_external_id
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
    OPS_COPY_DESTINATIONS = jsonencode(local.copy_destinations)
    OPS_COPY_IMAGES       = tostring(var.copy_images)
    OPS_ENCRYPTED         = tostring(var.encrypted)
    OPS_SOURCE_POLICIES   = jsonencode(var.source_policies)
    OPS_SOURCE_IDS        = jsonencode(var.source_ids)
    OPS_SOURCE_TAGS       = jsonencode(var.source_tags)
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
