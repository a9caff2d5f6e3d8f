resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.functions

  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "${var.name}-${each.key} raised an unhandled error."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}-errors" })
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  alarm_name          = "${var.name}-dlq-messages"
  alarm_description   = "Work items, events or scheduled invocations of ${var.name} ended in the dead-letter queue."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Name = "${var.name}-dlq-messages" })
}

resource "aws_cloudwatch_metric_alarm" "failure_metrics" {
  for_each = toset(var.failure_metrics)

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${var.service_name} policy ${var.name} reported ${each.key}."
  namespace           = local.metrics_namespace
  metric_name         = each.key
  dimensions          = { service = var.service_name, policy = var.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}" })
}
