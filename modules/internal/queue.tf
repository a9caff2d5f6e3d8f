################################################################################
# Queues
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-dlq"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = merge(var.tags, { Name = "${var.name}-dlq" })
}

resource "aws_sqs_queue" "work" {
  name = "${var.name}-work"
  # AWS guidance for SQS-triggered functions: at least 6 x the function timeout, so a message is not
  # redelivered while a slow (throttled, retrying) invocation still works on it.
  visibility_timeout_seconds        = 6 * var.functions[local.queue_consumer].timeout
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300

  # The worker backs off throttled records by changing their visibility, and every back-off is a
  # receive: 10 receives leave room for those before a record is given up to the DLQ.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.max_receive_count
  })

  tags = merge(var.tags, { Name = "${var.name}-work" })
}

################################################################################
# Queue policies: only EventBridge (a service principal) needs one. Lambda destinations and the
# Scheduler DLQ send with same-account roles whose identity policies already allow it (iam.tf).
################################################################################

locals {
  queues = {
    work = aws_sqs_queue.work
    dlq  = aws_sqs_queue.dlq
  }
}

data "aws_iam_policy_document" "queue" {
  for_each = length(var.event_patterns) == 0 ? toset([]) : toset(keys(local.queues))

  statement {
    sid       = "EventBridgeRules"
    actions   = ["sqs:SendMessage"]
    resources = [local.queues[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.this : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = data.aws_iam_policy_document.queue

  queue_url = local.queues[each.key].id
  policy    = each.value.json
}
