################################################################################
# The role EventBridge assumes to put the events on the hub bus (unless role_arn is given)
################################################################################

# Only this account's rules may use it (aws:SourceAccount, the account of the rule sending the event: EventBridge
# user guide, "Using IAM policy conditions in Amazon EventBridge"), and it may only put events on the hub bus.
data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "EventBridgeAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  count = var.role_arn == null ? 1 : 0

  name                 = local.role_name
  description          = "Lets the ${var.name} rule of ${local.region} put this account's state events on the ops-automation hub's bus."
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = merge(var.tags, { Name = local.role_name })

  lifecycle {
    precondition {
      condition     = length(local.role_name) <= 64
      error_message = "IAM role name ${jsonencode(local.role_name)} (name ${jsonencode(var.name)} + region ${jsonencode(local.region)}) is ${length(local.role_name)} characters; IAM allows 64: shorten name."
    }
  }
}

data "aws_iam_policy_document" "put_events" {
  statement {
    sid       = "PutEventsOnTheHubBus"
    actions   = ["events:PutEvents"]
    resources = [var.hub_event_bus_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  count = var.role_arn == null ? 1 : 0

  name   = "forward"
  role   = aws_iam_role.this[0].id
  policy = data.aws_iam_policy_document.put_events.json
}
