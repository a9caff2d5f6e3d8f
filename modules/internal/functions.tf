################################################################################
# Log groups (created before the functions, so Lambda never auto-creates one without retention)
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (log_retention_days); a year of operational logs is not a sane default for every estate.
  for_each = var.functions

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = merge(var.tags, { Name = "/aws/lambda/${var.name}-${each.key}" })
}

################################################################################
# Functions
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Failures are caught without dead_letter_config: scheduled functions have an on-failure destination (the DLQ), the queue consumer has the work queue's redrive policy.
  #checkov:skip=CKV_AWS_117:The functions only call AWS APIs; a VPC would add NAT or endpoint costs and no protection.
  #checkov:skip=CKV_AWS_272:The package is built by the caller's own Terraform from this repository's source; code signing needs a signing profile the caller owns.
  for_each = var.functions

  function_name                  = "${var.name}-${each.key}"
  description                    = each.value.description
  role                           = aws_iam_role.this[each.key].arn
  handler                        = each.value.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  filename                       = local.package_file
  source_code_hash               = local.package_hash
  layers                         = [local.powertools_layer_arn]
  timeout                        = each.value.timeout
  memory_size                    = each.value.memory_size
  reserved_concurrent_executions = each.value.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.function_environment
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })

  lifecycle {
    precondition {
      condition     = var.powertools_layer_arn != null || local.partition == "aws"
      error_message = "powertools_layer_arn must be set outside the aws partition: the default public Powertools layer (account 017000801446) exists only in commercial regions."
    }
  }

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.business,
    aws_iam_role_policy.plumbing,
  ]
}

################################################################################
# Asynchronous (scheduled) invocations: bounded retries, failures to the DLQ
################################################################################

resource "aws_lambda_function_event_invoke_config" "this" {
  for_each = local.scheduled

  function_name          = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }

  # Lambda checks the role can send to the destination when the config is saved.
  depends_on = [aws_iam_role_policy.plumbing]
}

################################################################################
# Work queue consumer
################################################################################

resource "aws_lambda_event_source_mapping" "work" {
  event_source_arn        = aws_sqs_queue.work.arn
  function_name           = aws_lambda_function.this[local.queue_consumer].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  # One slot must not starve the account's EC2 API (shared token buckets): cap the consumers.
  scaling_config {
    maximum_concurrency = var.queue_consumer_max_concurrency
  }

  # Lambda checks the role can receive from the queue when the mapping is created.
  depends_on = [aws_iam_role_policy.plumbing]
}
