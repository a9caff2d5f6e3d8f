resource "aws_cloudwatch_event_rule" "this" {
  for_each = var.event_patterns

  name          = "${var.name}-${each.key}"
  description   = "Forwards ${each.key} events to the ${var.name} work queue."
  event_pattern = each.value
  tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = var.event_patterns

  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "work-queue"
  arn       = aws_sqs_queue.work.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }

  # An event EventBridge cannot deliver is kept (and alarmed on) instead of silently dropped.
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}
