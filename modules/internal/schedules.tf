locals {
  # jsonencode escapes "<" and ">" as \u003c and \u003e, but Scheduler substitutes only the literal
  # <aws.scheduler.*> placeholders: un-escape them (both forms are the same JSON string).
  schedule_inputs = {
    for key, fn in local.scheduled : key => replace(replace(
      jsonencode(merge(jsondecode(fn.schedule.input), local.scheduler_context)),
    "\\u003c", "<"), "\\u003e", ">")
  }
}

resource "aws_scheduler_schedule" "this" {
  #checkov:skip=CKV_AWS_297:Encrypted with the caller's kms_key_arn when one is given; otherwise with an AWS owned key, as every other resource of the module.
  for_each = local.scheduled

  name                         = "${var.name}-${each.key}"
  group_name                   = "default"
  description                  = each.value.description
  schedule_expression          = each.value.schedule.expression
  schedule_expression_timezone = each.value.schedule.timezone
  kms_key_arn                  = var.kms_key_arn

  # A backup slot is a point in time: spreading invocations would blur which slot a run belongs to.
  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this[each.key].arn
    role_arn = aws_iam_role.scheduler[each.key].arn
    input    = local.schedule_inputs[each.key]

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.scheduler]
}
