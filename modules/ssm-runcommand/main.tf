data "aws_partition" "current" {
  lifecycle {
    # Cross-variable input rules; kept here because validation blocks may only refer to other
    # variables from Terraform 1.9 on, and this module supports 1.5.
    precondition {
      condition     = length(var.instance_ids) > 0 || length(var.target_tags) > 0
      error_message = "At least one of instance_ids and target_tags must be non-empty: the command needs instances to run on."
    }

    # SendCommand NotificationConfig needs ServiceRoleArn ("The ARN of the IAM service role to use to publish
    # Amazon SNS notifications"), and a role without a topic has nothing to publish to.
    precondition {
      condition     = (var.notification_topic_arn == null) == (var.notification_role_arn == null)
      error_message = "notification_topic_arn and notification_role_arn must be set together or not at all (SSM publishes to the topic with the role); got topic ${jsonencode(var.notification_topic_arn)} and role ${jsonencode(var.notification_role_arn)}."
    }

    # The worker's iam:PassRole on the notification role would be copied into target_role_policy_json, which
    # modules/target-account-role refuses (no iam: action in a spoke role); and SSM in each target account would
    # need a role of that account, which one ARN cannot name for several accounts.
    precondition {
      condition     = var.notification_role_arn == null || length(var.target_role_arns) == 0
      error_message = "notification_role_arn (and notification_topic_arn) cannot be used with target_role_arns: SSM in each target account would need a notification role of that account, and the iam:PassRole it takes would have to be granted to the spoke roles; got notification_role_arn ${jsonencode(var.notification_role_arn)} and target_role_arns ${jsonencode(var.target_role_arns)}. Leave both notification inputs null for cross-account targets: the module's own alerts cover failed invocations."
    }

    precondition {
      condition     = var.output_s3_key_prefix == null || var.output_s3_bucket_name != null
      error_message = "output_s3_key_prefix needs output_s3_bucket_name: a prefix without a bucket writes nothing; got prefix ${jsonencode(var.output_s3_key_prefix)}."
    }

    # Before the delivery and execution timeouts have passed, Pending, In Progress and Delayed are not failures
    # (an instance may still run the command); the Python refuses a shorter deadline too.
    precondition {
      condition     = local.verify_deadline_minutes * 60 >= var.timeout_seconds + coalesce(var.execution_timeout_seconds, local.default_execution_timeout) + 600
      error_message = "verify_deadline_minutes (${local.verify_deadline_minutes}) must cover timeout_seconds (${var.timeout_seconds}) plus the execution timeout (${coalesce(var.execution_timeout_seconds, local.default_execution_timeout)} s) plus 10 minutes: until the command expires an instance may still be running it, and AWS does not say how soon after that its invocations end."
    }

    # SSM keeps the command history for 30 days: a later check would find no invocation at all.
    precondition {
      condition     = local.verify_deadline_minutes <= 43200
      error_message = "The verification deadline (${local.verify_deadline_minutes} minutes, from timeout_seconds and execution_timeout_seconds) must be at most 43200 minutes (30 days, how long SSM keeps the command history): lower timeout_seconds."
    }
  }
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  service_name = "ssm-runcommand"

  # AWS-RunShellScript's (and AWS-RunPowerShellScript's) executionTimeout default: "3600". When the module does
  # not pass one, the deadline assumes it.
  default_execution_timeout = 3600
  verify_deadline_minutes = coalesce(
    var.verify_deadline_minutes,
    ceil((var.timeout_seconds + coalesce(var.execution_timeout_seconds, local.default_execution_timeout)) / 60) + 15,
  )

  # The command output log group: named by the user, or /aws/ssm/<name> when the module creates it (the prefix
  # the Systems Manager user guide's instance policy for CloudWatch output covers: log-group:/aws/ssm/*).
  output_log_group_name = var.create_output_log_group ? coalesce(var.output_log_group_name, "/aws/ssm/${var.name}") : var.output_log_group_name

  functions = {
    planner = {
      handler     = "ops_automation.ssm_runcommand.handlers.plan_handler"
      description = "Enqueues one send item per target of run command policy ${var.name} for each schedule slot."
      # Only SendMessageBatch calls: a handful per slot.
      timeout    = 60
      statements = []
      schedule = {
        expression = var.schedule_expression
        timezone   = var.schedule_timezone
        input      = jsonencode({})
      }
    }
    worker = {
      handler        = "ops_automation.ssm_runcommand.handlers.work_handler"
      description    = "Sends the command of run command policy ${var.name} once per slot and records each instance's final status."
      timeout        = 300
      statements     = local.worker_statements
      consumes_queue = true
    }
  }

  # SSM emits both for every command of the account and region ("SSM sends service events directly to
  # EventBridge", EventBridge events reference, events-ref-ssm; best effort, Systems Manager user guide,
  # reference-eventbridge-events). Filtered on the document, not on status: which status values are emitted
  # beyond Success/Failed/TimedOut/Cancelled is not documented. The events carry no exit code and no
  # StatusDetails: each is a trigger for the worker to re-read the invocation, never a verdict, and the
  # delayed check covers a lost one. Which document-name an event carries for a document run by its ARN is
  # not documented: both the ARN and its name part match.
  document_event_names = distinct([var.document_name, element(split("/", var.document_name), length(split("/", var.document_name)) - 1)])
  command_status_pattern = {
    source        = ["aws.ssm"]
    "detail-type" = ["EC2 Command Status-change Notification", "EC2 Command Invocation Status-change Notification"]
    detail = {
      "document-name" = local.document_event_names
      # Not an end: the worker would re-read for nothing. Every other status, documented or not, is forwarded.
      # Both spellings of in progress: the API's StatusDetails writes "In Progress", its Status "InProgress", and
      # which one the events carry is not documented (the worker treats both as not final).
      status = [{ "anything-but" = ["Pending", "InProgress", "In Progress", "Delayed"] }]
    }
  }

  event_patterns = {
    command-status = jsonencode(local.command_status_pattern)
  }

  # Lambda: "Function environment variables — 4 KB, for all environment variables associated with the function,
  # in aggregate" (Lambda quotas). How it counts is not documented, so the names and values are counted in UTF-8
  # bytes (length() counts characters), from the environment the internal module renders. The values a plan
  # may not know yet, because they are created in the same apply, count at their longest instead:
  # - OPS_WORK_QUEUE_URL: https://sqs.<region>.<DNS suffix>/<account>/<name>-work, 128;
  # - OPS_LEDGER_TABLE: <name>-ledger, 48;
  # - OPS_ALERT_TOPIC_ARN: an SNS topic ARN (a name of up to 256 characters), 320;
  # - OPS_OUTPUT_S3_BUCKET: a bucket name, 63.
  # parameters, instance_ids and target_tags are what grows; the precondition on the output
  # function_environment_variables names them.
  environment_limit_bytes = 4096
  environment_reserved_bytes = {
    OPS_WORK_QUEUE_URL   = 128
    OPS_LEDGER_TABLE     = 48
    OPS_ALERT_TOPIC_ARN  = 320
    OPS_OUTPUT_S3_BUCKET = 63
  }
  environment_known = {
    for key, value in module.this.function_environment_variables : key => value
    if !contains(keys(local.environment_reserved_bytes), key)
  }
  environment_bytes = sum(concat(
    [for key, value in local.environment_known : length(key) + length(base64encode(value)) / 4 * 3 - length(regexall("=", base64encode(value)))],
    [for key, bytes in local.environment_reserved_bytes : length(key) + bytes],
  ))
}

module "this" {
  source = "../internal"

  name         = var.name
  service_name = local.service_name

  functions = local.functions

  # The command output group is encrypted with kms_key_arn too: its key policy statement for CloudWatch Logs
  # covers it.
  encrypted_log_group_names = var.create_output_log_group ? [local.output_log_group_name] : []

  event_patterns = local.event_patterns

  # The OPS_* contract (docs/DESIGN.md) is encoded by the internal module from these typed groups; there
  # is no retention group: the module creates nothing that would need one.
  scope = {
    regions     = var.regions
    role_arns   = var.target_role_arns
    external_id = var.target_role_external_id
  }
  targets = {
    instance_ids = var.instance_ids
    tags         = var.target_tags
  }
  # The verification deadline, counted from the send: an instance without a final status by then is reported
  # once (TimedOut, or NoInvocation when SSM never listed one for it).
  completion = {
    timeout_minutes = local.verify_deadline_minutes
    ledger_ttl_days = var.ledger_ttl_days
  }
  # Empty strings for what is not set (docs/DESIGN.md): the worker leaves the SendCommand field out.
  environment = {
    OPS_DOCUMENT_NAME             = var.document_name
    OPS_DOCUMENT_VERSION          = var.document_version == null ? "" : var.document_version
    OPS_DOCUMENT_PARAMETERS       = jsonencode(var.parameters)
    OPS_EXECUTION_TIMEOUT_SECONDS = var.execution_timeout_seconds == null ? "" : tostring(var.execution_timeout_seconds)
    OPS_DELIVERY_TIMEOUT_SECONDS  = tostring(var.timeout_seconds)
    OPS_MAX_CONCURRENCY           = var.max_concurrency
    OPS_MAX_ERRORS                = var.max_errors
    OPS_OUTPUT_S3_BUCKET          = var.output_s3_bucket_name == null ? "" : var.output_s3_bucket_name
    OPS_OUTPUT_S3_PREFIX          = var.output_s3_key_prefix == null ? "" : var.output_s3_key_prefix
    OPS_OUTPUT_LOG_GROUP          = local.output_log_group_name == null ? "" : local.output_log_group_name
    OPS_NOTIFICATION_TOPIC_ARN    = var.notification_topic_arn == null ? "" : var.notification_topic_arn
    OPS_NOTIFICATION_ROLE_ARN     = var.notification_role_arn == null ? "" : var.notification_role_arn
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

################################################################################
# Command output log group (optional)
################################################################################

# Created before the first command so that SSM Agent never auto-creates it without retention ("If you don't
# specify a group name, ... automatically creates a log group", SendCommand CloudWatchOutputConfig). Only in the
# deployment region and account: instances elsewhere write to (or create) a group of that name in their own.
resource "aws_cloudwatch_log_group" "output" {
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (output_log_retention_days); a year of command output is not a sane default for every estate.
  count = var.create_output_log_group ? 1 : 0

  name              = local.output_log_group_name
  retention_in_days = var.output_log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = merge(var.tags, { Name = local.output_log_group_name })
}
