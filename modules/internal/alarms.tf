################################################################################
# Alarms: every final failure ends in the DLQ; a schedule that stops running is an alarm too.
# Individual failures are published to alarm_sns_topic_arn by the handlers themselves.
################################################################################

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

locals {
  # Hours between two runs of a schedule: rate(N unit) -> N unit (minutes rounded up to an hour), a
  # cron that fires every day -> 24, anything else (weekly or monthly crons, at()) -> 168 or more.
  schedule_interval_hours = {
    for key, fn in local.scheduled : key => (
      can(regex("^rate\\(\\s*[0-9]+\\s+minutes?\\s*\\)$", fn.schedule.expression)) ? ceil(tonumber(regex("[0-9]+", fn.schedule.expression)) / 60) :
      can(regex("^rate\\(\\s*[0-9]+\\s+hours?\\s*\\)$", fn.schedule.expression)) ? tonumber(regex("[0-9]+", fn.schedule.expression)) :
      can(regex("^rate\\(\\s*[0-9]+\\s+days?\\s*\\)$", fn.schedule.expression)) ? 24 * tonumber(regex("[0-9]+", fn.schedule.expression)) :
      can(regex("^cron\\(\\s*\\S+\\s+\\S+\\s+[*?]\\s+\\*\\s+[*?]\\s+\\S+\\s*\\)$", fn.schedule.expression)) ? 24 :
      168
    )
  }

  # One hour of grace over the interval (Scheduler retries and late deliveries), within CloudWatch's
  # limit of 7 days for Period x EvaluationPeriods (604,800 s, PutMetricAlarm). A schedule that runs less
  # often than that (weekly with no grace left, monthly, at()) cannot be watched this way: it gets no
  # missed-run alarm unless missed_run_alarm_hours says otherwise, rather than one that is in ALARM for
  # most of its interval.
  # A schedule with own_missed_run_alarm (a second rhythm next to the main one) ignores missed_run_alarm_hours.
  missed_run_hours = {
    for key, hours in local.schedule_interval_hours : key => (
      local.scheduled[key].schedule.own_missed_run_alarm ? hours + 1 : coalesce(var.missed_run_alarm_hours, hours + 1)
    )
    if(var.missed_run_alarm_hours != null && !local.scheduled[key].schedule.own_missed_run_alarm) || hours + 1 <= 168
  }
}

resource "aws_cloudwatch_metric_alarm" "missed_run" {
  for_each = local.missed_run_hours

  alarm_name          = "${var.name}-${each.key}-missed-run"
  alarm_description   = "${var.name}-${each.key} was not invoked for ${local.missed_run_hours[each.key]} hours: its schedule stopped, was disabled or cannot invoke it."
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = local.missed_run_hours[each.key]
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  # No invocation means no data point at all: missing data is the failure this alarm is for.
  treat_missing_data = "breaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
  tags               = merge(var.tags, { Name = "${var.name}-${each.key}-missed-run" })
}

# With a customer managed key, EventBridge needs the key to deliver to the encrypted queues; a key
# policy without it drops events with no error anywhere but this metric.
resource "aws_cloudwatch_metric_alarm" "event_rule_failed_invocations" {
  for_each = var.kms_key_arn == null ? {} : var.event_patterns

  alarm_name          = "${var.name}-${each.key}-failed-invocations"
  alarm_description   = "EventBridge rule ${var.name}-${each.key} could not deliver events to the work queue (check the KMS key policy: kms_key_policy_json)."
  namespace           = "AWS/Events"
  metric_name         = "FailedInvocations"
  dimensions          = { RuleName = aws_cloudwatch_event_rule.this[each.key].name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Name = "${var.name}-${each.key}-failed-invocations" })
}
