################################################################################
# Business policies: the central ownership rule (docs/DESIGN.md)
################################################################################

locals {
  ownership_tags = {
    "ops-automation:managed-by" = "terraform-aws-ops-automation"
    "ops-automation:policy"     = var.name
  }

  # ownership = "request": the call must apply both ownership tags (creation); "resource": the resource
  # must already carry both (acting on existing resources), or only the managed-by tag with
  # resource_ownership = "project" (a module acting on what any policy of this project created);
  # "none": reads and non-owned inputs; "unowned": the explicit opt-out for destroying what this project
  # did not create (validated: ec2:Delete*/Deregister* only); "source": the sources of a copy, which the
  # statement itself limits by their tags or ids (validated: copy/share actions only, with an
  # aws:ResourceTag condition or no * resource), so nothing is added.
  resource_ownership_tags = var.resource_ownership == "policy" ? local.ownership_tags : {
    for key, value in local.ownership_tags : key => value if key == "ops-automation:managed-by"
  }
  ownership_conditions = {
    none    = []
    unowned = []
    source  = []
    request = [for key, value in local.ownership_tags : {
      test     = "StringEquals"
      variable = "aws:RequestTag/${key}"
      values   = [value]
    }]
    resource = [for key, value in local.resource_ownership_tags : {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${key}"
      values   = [value]
    }]
  }

  # Every function's statements with the ownership conditions added; sids prefixed with the function
  # key so the union below stays unique.
  business_statements = {
    for key, fn in var.functions : key => [
      for s in fn.statements : {
        sid        = s.sid
        union_sid  = "${join("", [for part in split("-", key) : title(part)])}${s.sid}"
        actions    = s.actions
        resources  = s.resources
        conditions = concat(s.conditions, local.ownership_conditions[s.ownership])
      }
    ]
  }

  # Explicit Deny statements of every function, sids prefixed like the business statements.
  denial_statements = {
    for key, fn in var.functions : key => [
      for s in fn.denials : {
        sid        = s.sid
        union_sid  = "${join("", [for part in split("-", key) : title(part)])}${s.sid}"
        actions    = s.actions
        resources  = s.resources
        conditions = s.conditions
      }
    ]
  }

  target_role_arns = var.scope == null ? [] : var.scope.role_arns

  # Landing-zone targeting (scope.accounts / scope.organizational_units with one role_name in every account).
  scope_accounts = var.scope == null ? [] : var.scope.accounts
  scope_units    = var.scope == null ? [] : var.scope.organizational_units
  # "" rather than null: the public modules refuse accounts/OUs without a role name, and OUs without an organization
  # id, in preconditions of their own; "" keeps this module from adding an evaluation error to theirs (and never
  # matches on AWS).
  scope_role_name        = try(coalesce(var.scope.role_name, ""), "")
  organization_id        = try(coalesce(var.scope.organization_id, ""), "")
  organizations_role_arn = var.scope == null ? null : var.scope.organizations_role_arn
  all_enabled_regions    = var.scope == null ? false : contains(var.scope.regions, "all-enabled")

  # The cross-account hop, for every function (the planners in dry runs, the worker per account x region scope):
  # the explicit role ARNs and the role of each listed account; for OUs the role name in any account, bound to the
  # organization with aws:ResourceOrgID, the organization of the account that owns the role (the resource of
  # sts:AssumeRole). IAM: "you can now easily prevent your IAM principals from assuming any IAM roles outside of your
  # own AWS account ... deny access to AWS STS assume role actions unless aws:ResourceAccount matches"
  # (https://aws.amazon.com/about-aws/whats-new/2022/04/iam-access-resource-organization/); the key is global and
  # present only when the owning account is in an organization
  # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceorgid),
  # so an account outside it never matches.
  assume_role_statements = concat(
    length(local.target_role_arns) + length(local.scope_accounts) == 0 ? [] : [{
      sid        = "AssumeTargetRoles"
      actions    = ["sts:AssumeRole"]
      resources  = concat(local.target_role_arns, [for account in local.scope_accounts : "arn:${local.partition}:iam::${account}:role/${local.scope_role_name}"])
      conditions = []
    }],
    length(local.scope_units) == 0 ? [] : [{
      sid       = "AssumeOrganizationTargetRoles"
      actions   = ["sts:AssumeRole"]
      resources = ["arn:${local.partition}:iam::*:role/${local.scope_role_name}"]
      conditions = [{
        test     = "StringEquals"
        variable = "aws:ResourceOrgID"
        values   = [local.organization_id]
      }]
    }],
  )

  # The Organizations reads of core/organization.py (resolve_accounts: ListAccountsForParent and
  # ListOrganizationalUnitsForParent, from each OU down), made by the planners (the scheduled functions) only. Both
  # actions take the parent (an OU or a root) as their resource (Service Authorization Reference, AWS Organizations:
  # resource types organizationalunit `arn:<p>:organizations::<management account>:ou/o-<id>/ou-<id>` and root
  # `...:root/o-<id>/r-<id>`), so they are bound to this organization's OUs and root. "This operation can be called
  # only from the organization's management account or by a member account that is a delegated administrator"
  # (Organizations API reference, ListAccountsForParent): with organizations_role_arn the planners assume that role
  # (in the management or delegated-administrator account) instead, and it holds these statements
  # (organizations_policy_json).
  organization_read_statements = length(local.scope_units) == 0 ? [] : [{
    sid     = "ReadOrganizationUnits"
    actions = ["organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"]
    resources = [
      "arn:${local.partition}:organizations::*:ou/${local.organization_id}/ou-*",
      "arn:${local.partition}:organizations::*:root/${local.organization_id}/r-*",
    ]
    conditions = []
  }]
  planner_scope_statements = local.organizations_role_arn == null ? local.organization_read_statements : [{
    sid        = "AssumeOrganizationsRole"
    actions    = ["sts:AssumeRole"]
    resources  = [local.organizations_role_arn]
    conditions = []
  }]

  # regions = ["all-enabled"]: each scope's enabled regions come from EC2 DescribeRegions in that account, through the
  # target role (core/organization.py enabled_regions). List access level, no resource type: "*".
  region_read_statements = local.all_enabled_regions ? [{
    sid        = "DescribeEnabledRegions"
    actions    = ["ec2:DescribeRegions"]
    resources  = ["*"]
    conditions = []
  }] : []

  # What internal adds to each function's business policy: the hop for all, the Organizations side for the planners.
  scope_statements = {
    for key, fn in var.functions : key => concat(local.assume_role_statements, fn.schedule == null ? [] : local.planner_scope_statements)
  }

  # IAM rejects a policy without statements: a function with none gets no business policy.
  business_functions = {
    for key, fn in var.functions : key => fn if length(fn.statements) > 0 || length(fn.denials) > 0 || length(local.scope_statements[key]) > 0
  }
}

data "aws_iam_policy_document" "business" {
  for_each = local.business_functions

  dynamic "statement" {
    for_each = local.business_statements[each.key]

    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  dynamic "statement" {
    for_each = local.denial_statements[each.key]

    content {
      sid       = statement.value.sid
      effect    = "Deny"
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  # The cross-account hop (scope.role_arns, accounts, OUs) and, for the planners, the Organizations side.
  dynamic "statement" {
    for_each = local.scope_statements[each.key]

    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

# What the role of organizations_role_arn (management or delegated-administrator account) needs: the planners'
# Organizations reads; empty without OUs.
data "aws_iam_policy_document" "organizations" {
  dynamic "statement" {
    for_each = local.organization_read_statements

    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

# What each role of scope.role_arns (spoke accounts) needs: the business statements of every function,
# with the same ownership conditions, their Deny statements, and no sts:AssumeRole (a target role cannot
# hop further); with regions = ["all-enabled"], DescribeRegions (the account's enabled regions).
data "aws_iam_policy_document" "target_role" {
  dynamic "statement" {
    for_each = local.region_read_statements

    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  dynamic "statement" {
    for_each = flatten([for key in sort(keys(var.functions)) : local.denial_statements[key]])

    content {
      sid       = statement.value.union_sid
      effect    = "Deny"
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  dynamic "statement" {
    for_each = flatten([for key in sort(keys(var.functions)) : local.business_statements[key]])

    content {
      sid       = statement.value.union_sid
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

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

  name               = local.role_names[each.key]
  description        = "Execution role of ${var.name}-${each.key} (${var.service_name}) in ${local.region}."
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = merge(var.tags, { Name = local.role_names[each.key] })

  lifecycle {
    precondition {
      condition     = length(local.role_names[each.key]) <= 64
      error_message = "IAM role name ${jsonencode(local.role_names[each.key])} (name ${jsonencode(var.name)} + function ${jsonencode(each.key)} + region ${jsonencode(local.region)}) is ${length(local.role_names[each.key])} characters; IAM allows 64: shorten name."
    }
  }
}

resource "aws_iam_role_policy" "business" {
  for_each = local.business_functions

  name   = "business"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.business[each.key].json
}

# What every function needs to run inside this module, whatever its business, scoped to the module's
# own resources and to what each function does: only the queue consumer receives from the queue and
# touches the ledger.
data "aws_iam_policy_document" "plumbing" {
  for_each = var.functions

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  statement {
    sid       = "WorkQueueSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.work.arn]
  }

  # The event source mapping polls and deletes with the consumer's role; the consumer's code changes
  # the visibility of throttled records to back off through SQS.
  dynamic "statement" {
    for_each = each.value.consumes_queue ? [aws_sqs_queue.work.arn] : []

    content {
      sid = "WorkQueueConsume"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
      ]
      resources = [statement.value]
    }
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

  # Conditional writes (UpdateItem) and reads of the ledger; no PutItem/DeleteItem.
  dynamic "statement" {
    for_each = each.value.consumes_queue ? [aws_dynamodb_table.ledger.arn] : []

    content {
      sid       = "Ledger"
      actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
      resources = [statement.value]
    }
  }

  # Read-only ledger access for a scheduled function that plans from what the worker recorded (ebs-snapshot's restore
  # planner: an instance-mode set is what its claim recorded).
  dynamic "statement" {
    for_each = each.value.reads_ledger && !each.value.consumes_queue ? [aws_dynamodb_table.ledger.arn] : []

    content {
      sid       = "LedgerRead"
      actions   = ["dynamodb:GetItem"]
      resources = [statement.value]
    }
  }

  # The handlers publish one message per failure themselves.
  dynamic "statement" {
    for_each = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

    content {
      sid       = "AlertTopic"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
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

  name               = local.scheduler_role_names[each.key]
  description        = "Lets EventBridge Scheduler invoke ${var.name}-${each.key} in ${local.region}."
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
  tags               = merge(var.tags, { Name = local.scheduler_role_names[each.key] })

  lifecycle {
    precondition {
      condition     = length(local.scheduler_role_names[each.key]) <= 64
      error_message = "IAM role name ${jsonencode(local.scheduler_role_names[each.key])} (name ${jsonencode(var.name)} + function ${jsonencode(each.key)} + region ${jsonencode(local.region)} + -scheduler) is ${length(local.scheduler_role_names[each.key])} characters; IAM allows 64: shorten name."
    }
  }
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
