################################################################################
# Function roles
################################################################################

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = var.functions

  name               = "${var.name}-${each.key}"
  description        = "Execution role of ${var.name}-${each.key} (${var.service_name})."
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

resource "aws_iam_role_policy" "business" {
  for_each = var.functions

  name   = "business"
  role   = aws_iam_role.this[each.key].id
  policy = each.value.policy_json
}

# What every function needs to run inside this module, whatever its business: its own logs, the
# module's queue and tables, the key, and X-Ray. Scoped to the module's own resources.
data "aws_iam_policy_document" "plumbing" {
  for_each = var.functions

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  statement {
    sid = "WorkQueue"
    actions = [
      "sqs:SendMessage",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.work.arn]
  }

  # Lambda sends failed asynchronous (scheduled) invocations to the on-failure destination with the
  # function's own role.
  dynamic "statement" {
    for_each = each.value.schedule == null ? [] : [aws_sqs_queue.dlq.arn]

    content {
      sid       = "AsyncFailureDestination"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  statement {
    sid = "Tables"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
    ]
    resources = [aws_dynamodb_table.ledger.arn, aws_dynamodb_table.idempotency.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  # X-Ray trace submission has no resource-level permissions.
  dynamic "statement" {
    for_each = var.tracing_enabled ? ["*"] : []

    content {
      sid       = "XRay"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "plumbing" {
  for_each = var.functions

  name   = "plumbing"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.plumbing[each.key].json
}

################################################################################
# Scheduler roles
################################################################################

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    sid     = "SchedulerAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    # Confused-deputy guard: only schedules of this account may use the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  for_each = local.scheduled

  name               = "${var.name}-${each.key}-scheduler"
  description        = "Lets EventBridge Scheduler invoke ${var.name}-${each.key}."
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = merge(var.tags, { Name = "${var.name}-${each.key}-scheduler" })
}

data "aws_iam_policy_document" "scheduler" {
  for_each = local.scheduled

  statement {
    sid       = "InvokeTarget"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this[each.key].arn]
  }

  # Scheduler delivers undeliverable invocations to the schedule's DLQ with the execution role.
  statement {
    sid       = "DeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  for_each = local.scheduled

  name   = "invoke"
  role   = aws_iam_role.scheduler[each.key].id
  policy = data.aws_iam_policy_document.scheduler[each.key].json
}
