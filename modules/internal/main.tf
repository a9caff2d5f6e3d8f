data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Pinned so that a plan never changes under the user's feet; bump it deliberately.
  powertools_layer_version = 27
  powertools_layer_arn = coalesce(
    var.powertools_layer_arn,
    "arn:${local.partition}:lambda:${local.region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-${replace(var.runtime, ".", "")}-${var.architecture}:${local.powertools_layer_version}",
  )

  # One name for where the handlers publish (EMF) and where the failure alarms look.
  metrics_namespace = "OpsAutomation"

  queue_consumer = one([for key, fn in var.functions : key if fn.consumes_queue])
  scheduled      = { for key, fn in var.functions : key => fn if fn.schedule != null }

  function_environment = merge(var.environment, {
    POWERTOOLS_SERVICE_NAME      = var.service_name
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = var.log_level
    OPS_POLICY_NAME              = var.name
    OPS_WORK_QUEUE_URL           = aws_sqs_queue.work.url
    OPS_LEDGER_TABLE             = aws_dynamodb_table.ledger.name
    OPS_IDEMPOTENCY_TABLE        = aws_dynamodb_table.idempotency.name
  })

  # Scheduler substitutes these placeholders at each invocation, so a handler learns its slot even
  # when a retry delivers it late.
  scheduler_context = {
    scheduled_time = "<aws.scheduler.scheduled-time>"
    schedule_arn   = "<aws.scheduler.schedule-arn>"
    execution_id   = "<aws.scheduler.execution-id>"
  }

  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
}
