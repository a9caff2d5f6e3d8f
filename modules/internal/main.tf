data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  # `id` is the region name in hashicorp/aws 5.x and 6.x alike; `name` is deprecated in 6.x (use
  # `region` there) and `region` does not exist in 5.x.
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # Pinned so that a plan never changes under the user's feet; bump it deliberately.
  powertools_layer_version = 27
  powertools_layer_arn = coalesce(
    var.powertools_layer_arn,
    "arn:${local.partition}:lambda:${local.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-${replace(var.runtime, ".", "")}-${var.architecture}:${local.powertools_layer_version}",
  )

  # One name for where the handlers publish (EMF, dimension `service` only).
  metrics_namespace = "OpsAutomation"

  queue_consumer = one([for key, fn in var.functions : key if fn.consumes_queue])
  scheduled      = { for key, fn in var.functions : key => fn if fn.schedule != null }

  # IAM role names are global per account (everything else here is regional): the region in the name
  # lets one policy name be deployed in several regions of an account.
  role_names           = { for key, fn in var.functions : key => "${var.name}-${key}-${local.region}" }
  scheduler_role_names = { for key, fn in local.scheduled : key => "${var.name}-${key}-${local.region}-scheduler" }

  # Receives of a work item before the redrive gives it up to the DLQ; the worker knows it too, so the last
  # failing receive sends an alert naming the item.
  max_receive_count = 10

  # Environment contract (docs/DESIGN.md, read by lambda_src/ops_automation/core/config.py): JSON for
  # lists and maps, "true"/"false" for booleans, "" for an absent number; a null group sets nothing.
  scope_environment = var.scope == null ? {} : {
    OPS_TARGET_REGIONS          = jsonencode(var.scope.regions)
    OPS_TARGET_ROLE_ARNS        = jsonencode(var.scope.role_arns)
    OPS_TARGET_ROLE_EXTERNAL_ID = var.scope.external_id == null ? "" : var.scope.external_id
    # Landing-zone targeting: every variable set, empty when unused (JSON lists, "" for no role).
    OPS_TARGET_ACCOUNTS = jsonencode(var.scope.accounts)
    OPS_TARGET_ORGANIZATIONAL_UNITS = jsonencode([
      for unit in var.scope.organizational_units : { id = unit.id, recursive = unit.recursive }
    ])
    OPS_TARGET_ROLE_NAME       = var.scope.role_name == null ? "" : var.scope.role_name
    OPS_ORGANIZATIONS_ROLE_ARN = var.scope.organizations_role_arn == null ? "" : var.scope.organizations_role_arn
    OPS_EXCLUDE_ACCOUNTS       = jsonencode(var.scope.excluded_accounts)
  }
  # Every targets variable is set whenever the group is given, whatever the module uses of it.
  targets_environment = var.targets == null ? {} : {
    OPS_INSTANCE_IDS        = jsonencode(var.targets.instance_ids)
    OPS_TARGET_TAGS         = jsonencode(var.targets.tags)
    OPS_VOLUME_IDS          = jsonencode(var.targets.volume_ids)
    OPS_VOLUME_TAGS         = jsonencode(var.targets.volume_tags)
    OPS_EXCLUDE_VOLUME_TAGS = jsonencode(var.targets.exclude_volume_tags)
    OPS_EXCLUDE_ROOT_VOLUME = tostring(var.targets.exclude_root_volume)
  }
  retention_environment = var.retention == null ? {} : {
    OPS_GENERATIONS  = tostring(var.retention.generations)
    OPS_MAX_AGE_DAYS = var.retention.max_age_days == null ? "" : tostring(var.retention.max_age_days)
    OPS_DRY_RUN      = tostring(var.retention.dry_run)
  }
  completion_environment = var.completion == null ? {} : {
    OPS_COMPLETION_TIMEOUT_MINUTES = tostring(var.completion.timeout_minutes)
    OPS_LEDGER_TTL_DAYS            = tostring(var.completion.ledger_ttl_days)
  }

  # Restore tests (core/restore.py RestoreTestConfig.from_env): one JSON object holding every field (null where
  # unused), "" when the module has restore tests but they are off.
  restore_test_environment = var.restore_test == null ? {} : {
    OPS_RESTORE_TEST = var.restore_test.config == null ? "" : jsonencode(var.restore_test.config)
  }

  function_environment = merge(
    var.environment,
    local.scope_environment,
    local.targets_environment,
    local.retention_environment,
    local.completion_environment,
    local.restore_test_environment,
    {
      POWERTOOLS_SERVICE_NAME      = var.service_name
      POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
      POWERTOOLS_LOG_LEVEL         = var.log_level
      OPS_POLICY_NAME              = var.name
      OPS_WORK_QUEUE_URL           = aws_sqs_queue.work.url
      OPS_LEDGER_TABLE             = aws_dynamodb_table.ledger.name
      OPS_ALERT_TOPIC_ARN          = var.alarm_sns_topic_arn == null ? "" : var.alarm_sns_topic_arn
      OPS_MAX_RECEIVE_COUNT        = tostring(local.max_receive_count)
      # The functions assume roles in other accounts (target roles, the organizations role): a session token from
      # the global STS endpoint is "valid only in AWS Regions that are enabled by default", one from a Regional
      # endpoint "in all AWS Regions" (IAM user guide, "Manage AWS STS in an AWS Region",
      # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_enable-regions.html). botocore reads
      # this setting (older SDKs default to the global endpoint), so opt-in regions of target accounts work
      # whatever SDK version the Lambda runtime ships.
      AWS_STS_REGIONAL_ENDPOINTS = "regional"
    },
  )

  # Scheduler substitutes these placeholders at each invocation, so a handler learns its slot even
  # when a retry delivers it late.
  scheduler_context = {
    scheduled_time = "<aws.scheduler.scheduled-time>"
    schedule_arn   = "<aws.scheduler.schedule-arn>"
    execution_id   = "<aws.scheduler.execution-id>"
  }

  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
}
