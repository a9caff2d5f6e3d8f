locals {
  role_names = { for key, grant in var.grants : key => "${var.role_name_prefix}-${key}" }

  # Every hub function names its session ops-automation-<policy name> (lambda_src/ops_automation/core/runtime.py),
  # which makes each spoke-side CloudTrail event attributable to one policy.
  session_name_pattern = "ops-automation-*"

  # IAM and AWS STS quotas, "IAM and STS character limits": not adjustable (the trust policy's limit is
  # var.trust_policy_max_chars, a quota). IAM does not count white space.
  inline_policy_max_chars = 10240
}

# One statement per role: its conditions are ANDed, so the external id and the organisation (when set) and the
# session name must all match.
data "aws_iam_policy_document" "trust" {
  for_each = var.grants

  statement {
    sid     = "HubFunctions"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    # Role ARNs, not the hub account root: IAM stores a role principal as the role's unique id, so only the
    # function roles that exist when this is applied are trusted.
    principals {
      type        = "AWS"
      identifiers = each.value.principal_arns
    }

    condition {
      test     = "StringLike"
      variable = "sts:RoleSessionName"
      values   = [local.session_name_pattern]
    }

    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]

      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }

    dynamic "condition" {
      for_each = var.organization_id == null ? [] : [var.organization_id]

      content {
        test     = "StringEquals"
        variable = "aws:PrincipalOrgID"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = var.grants

  name                 = local.role_names[each.key]
  description          = "Assumed by the ${each.key} functions of the ops-automation hub to act in this account."
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags

  lifecycle {
    precondition {
      condition     = length(local.role_names[each.key]) <= 64
      error_message = "The role name ${jsonencode(local.role_names[each.key])} (role_name_prefix + \"-\" + grants key) is ${length(local.role_names[each.key])} characters; IAM allows 64."
    }

    precondition {
      condition     = length(replace(data.aws_iam_policy_document.trust[each.key].json, "/\\s+/", "")) <= var.trust_policy_max_chars
      error_message = "The trust policy of role ${local.role_names[each.key]} is ${length(replace(data.aws_iam_policy_document.trust[each.key].json, "/\\s+/", ""))} characters without white space, over trust_policy_max_chars = ${var.trust_policy_max_chars} (grants[\"${each.key}\"].principal_arns: ${length(each.value.principal_arns)}); trust fewer roles, or raise the account's quota \"Role trust policy length\" (Service Quotas) and set trust_policy_max_chars to the new value."
    }
  }
}

# Inline, one per role: the hub modules' documents share Sids, so they are never merged into one policy.
resource "aws_iam_role_policy" "this" {
  for_each = var.grants

  name   = each.key
  role   = aws_iam_role.this[each.key].id
  policy = each.value.policy_json

  lifecycle {
    precondition {
      condition     = length(replace(each.value.policy_json, "/\\s+/", "")) <= local.inline_policy_max_chars
      error_message = "grants[\"${each.key}\"].policy_json is ${length(replace(each.value.policy_json, "/\\s+/", ""))} characters without white space, over the ${local.inline_policy_max_chars} IAM allows for a role's inline policies."
    }
  }
}
