################################################################################
# Key policy statements for var.kms_key_arn
################################################################################

# The service principals that use kms_key_arn on the module's behalf. Built from names, not from the
# resources, so a caller can put it on the key before the module creates anything. Everything else
# that uses the key does so as an IAM principal of the account (the function and scheduler roles'
# kms:Decrypt/GenerateDataKey, DynamoDB and Lambda environment encryption through grants and
# kms:ViaService), which needs the key policy statement that enables IAM policies; that statement is
# the caller's, with the key administrators.
locals {
  event_rule_arns = [for key in sort(keys(var.event_patterns)) : "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${var.name}-${key}"]
  log_group_arns = concat(
    [for key in sort(keys(var.functions)) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name}-${key}"],
    [for name in var.encrypted_log_group_names : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}"],
  )
}

data "aws_iam_policy_document" "kms_key" {
  # EventBridge encrypts with the key when it delivers a rule's events to the SQS-KMS queues (target
  # and DLQ); without this, delivery fails silently except for the rule's FailedInvocations metric.
  # Amazon EventBridge user guide, "Authorizing EventBridge to use a customer managed key". No
  # aws:SourceArn/aws:SourceAccount condition: AWS recommends them for event-bus encryption, but documents
  # no request context carrying them when EventBridge delivers to an encrypted target, and a condition the
  # request lacks denies every event, silently. The key is still confined to what uses it: the queue
  # policies admit only this module's rules.
  dynamic "statement" {
    for_each = length(local.event_rule_arns) == 0 ? [] : [local.event_rule_arns]

    content {
      sid       = "EventBridgeRulesToEncryptedQueues"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
    }
  }

  # An alert topic encrypted with this key: CloudWatch alarms publish to it as cloudwatch.amazonaws.com
  # (the functions publish as their roles, which already hold the key). Amazon SNS developer guide,
  # "Configuring AWS KMS permissions" / CloudWatch alarm actions to encrypted topics.
  dynamic "statement" {
    for_each = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

    content {
      sid       = "CloudWatchAlarmsToEncryptedTopic"
      actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["cloudwatch.amazonaws.com"]
      }
    }
  }

  # CloudWatch Logs uses the regional service principal, bound to the log groups by encryption context.
  # Amazon CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS". Its example also
  # lists kms:Describe*, which this condition can never allow: DescribeKey takes no encryption context (KMS API
  # reference, GrantConstraints; the Service Authorization Reference lists kms:EncryptionContext:${Key} for the
  # cryptographic operations only), so the key is absent and the condition fails. The key is typed String in
  # the reference, and the values are exact ARNs: StringEquals decides as ArnEquals would (make security,
  # parliament UNKNOWN_CONDITION_FOR_ACTION / MISMATCHED_TYPE).
  statement {
    sid = "CloudWatchLogsLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.log_group_arns
    }
  }
}
