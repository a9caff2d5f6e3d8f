# Plan-level checks of the ami-backup module with a mocked AWS provider: IAM guard rails, wiring of
# inputs into the internal module, and input validation.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "ap-northeast-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }

  # Mocked data sources return random strings; the internal module validates policy_json as JSON.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  name                = "nightly"
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3
}

run "create_image_requires_ownership_request_tags" {
  command = plan

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.worker_ec2.statement :
      tolist(s.actions) == tolist(["ec2:CreateImage"])
      && toset(s.resources) == toset(["arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*"])
      && toset([for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringEquals aws:RequestTag/ops-automation:managed-by=terraform-aws-ops-automation",
        "StringEquals aws:RequestTag/ops-automation:policy=nightly",
      ])
    ])
    error_message = "CreateImage on image/* and snapshot/* must require both ownership request tags."
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.worker_ec2.statement :
      tolist(s.actions) == tolist(["ec2:CreateImage"]) && tolist(s.resources) == tolist(["arn:aws:ec2:*:*:instance/*"])
    ])
    error_message = "CreateImage must be allowed on the source instance."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.worker_ec2.statement :
      toset([for c in s.condition : "${c.variable}=${join(",", c.values)}"]) == toset(["ec2:CreateAction=CreateImage"])
      if contains(s.actions, "ec2:CreateTags")
    ])
    error_message = "CreateTags must only be allowed as part of CreateImage."
  }
}

run "destruction_requires_ownership_resource_tags" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for action in ["ec2:DeregisterImage", "ec2:DeleteSnapshot"] : [
        for s in data.aws_iam_policy_document.worker_ec2.statement :
        toset([for c in s.condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
          "StringEquals aws:ResourceTag/ops-automation:managed-by=terraform-aws-ops-automation",
          "StringEquals aws:ResourceTag/ops-automation:policy=nightly",
        ])
        if contains(s.actions, action)
      ]
    ]))
    error_message = "DeregisterImage and DeleteSnapshot must be conditioned on both ownership resource tags."
  }

  assert {
    condition = length([
      for s in data.aws_iam_policy_document.worker_ec2.statement : s
      if contains(s.actions, "ec2:DeregisterImage") || contains(s.actions, "ec2:DeleteSnapshot")
    ]) == 2
    error_message = "DeregisterImage and DeleteSnapshot must each have exactly one (conditioned) statement."
  }
}

run "no_wildcard_resource_on_mutating_actions" {
  command = plan

  assert {
    condition = alltrue(flatten([
      for doc in [data.aws_iam_policy_document.planner_ec2, data.aws_iam_policy_document.worker_ec2, data.aws_iam_policy_document.assume_target_roles] : [
        for s in doc.statement : alltrue([for a in s.actions : startswith(a, "ec2:Describe")])
        if contains(s.resources, "*")
      ]
    ]))
    error_message = "Only read-only Describe* actions may use a * resource."
  }

  assert {
    condition     = toset(flatten([for s in data.aws_iam_policy_document.planner_ec2.statement : s.actions])) == toset(["ec2:DescribeInstances", "ec2:DescribeImages"])
    error_message = "Without target roles the planner may only describe instances and images."
  }

  assert {
    condition = toset(flatten([for s in data.aws_iam_policy_document.worker_ec2.statement : s.actions])) == toset([
      "ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:CreateImage", "ec2:CreateTags",
      "ec2:DeregisterImage", "ec2:DeleteSnapshot",
    ])
    error_message = "Without target roles the worker's actions are exactly the EC2 calls of the handler (no DescribeInstances: tags come in the message)."
  }
}

run "cross_account_roles_are_assumable_and_passed_on" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:role/ops-automation-target"]
    regions          = ["ap-northeast-1", "us-east-1"]
  }

  assert {
    condition = anytrue([
      for s in data.aws_iam_policy_document.assume_target_roles.statement :
      tolist(s.actions) == tolist(["sts:AssumeRole"]) && tolist(s.resources) == tolist(var.target_role_arns)
    ])
    error_message = "The functions must be able to assume exactly the target roles."
  }

  assert {
    condition = alltrue([
      for doc in [data.aws_iam_policy_document.planner, data.aws_iam_policy_document.worker] :
      contains(doc.source_policy_documents, data.aws_iam_policy_document.assume_target_roles.json)
    ])
    error_message = "Both functions' policies must include the cross-account statement."
  }

  assert {
    condition = alltrue([
      for s in concat(data.aws_iam_policy_document.planner_ec2.statement, data.aws_iam_policy_document.worker_ec2.statement) :
      !contains(s.actions, "sts:AssumeRole")
    ])
    error_message = "The EC2 documents (also the target role's policy) must not allow hopping to further roles."
  }

  assert {
    condition = (
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_ROLE_ARNS"])) == var.target_role_arns &&
      tolist(jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"])) == var.regions
    )
    error_message = "Target roles and regions must reach the functions as JSON lists."
  }
}

run "schedule_queue_and_environment_wiring" {
  command = plan

  assert {
    condition     = output.schedule.timezone == "Asia/Tokyo" && output.schedule.expression == "cron(0 1 * * ? *)"
    error_message = "Schedule expression and timezone must be passed through to EventBridge Scheduler."
  }

  assert {
    condition     = output.function_timeouts["worker"] == 300 && output.work_queue_visibility_timeout_seconds >= 6 * output.function_timeouts["worker"]
    error_message = "The work queue visibility timeout must be at least 6 x the worker timeout (300 s)."
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_GENERATIONS"] == "3" &&
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "" &&
      output.function_environment_variables["OPS_NO_REBOOT"] == "true" &&
      output.function_environment_variables["OPS_COPY_INSTANCE_TAGS"] == "true" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "false" &&
      output.function_environment_variables["OPS_COMPLETION_TIMEOUT_MINUTES"] == "240" &&
      output.function_environment_variables["OPS_LEDGER_TTL_DAYS"] == "400" &&
      jsondecode(output.function_environment_variables["OPS_TARGET_TAGS"]) == { Backup = "daily" } &&
      jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"]) == [] &&
      jsondecode(output.function_environment_variables["OPS_TARGET_REGIONS"]) == [] &&
      output.function_environment_variables["POWERTOOLS_SERVICE_NAME"] == "ami-backup" &&
      output.function_environment_variables["OPS_POLICY_NAME"] == "nightly"
    )
    error_message = "The functions' environment must follow DESIGN.md (JSON lists/maps, true/false, empty max age)."
  }
}

run "max_age_and_flags_reach_the_environment" {
  command = plan

  variables {
    max_age_days       = 30
    dry_run            = true
    no_reboot          = false
    copy_instance_tags = false
    instance_ids       = ["i-0123456789abcdef0", "i-12345678"]
  }

  assert {
    condition = (
      output.function_environment_variables["OPS_MAX_AGE_DAYS"] == "30" &&
      output.function_environment_variables["OPS_DRY_RUN"] == "true" &&
      output.function_environment_variables["OPS_NO_REBOOT"] == "false" &&
      output.function_environment_variables["OPS_COPY_INSTANCE_TAGS"] == "false" &&
      tolist(jsondecode(output.function_environment_variables["OPS_INSTANCE_IDS"])) == var.instance_ids
    )
    error_message = "Optional inputs must reach the functions' environment."
  }
}

run "instance_ids_alone_are_enough" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = ["i-0123456789abcdef0"]
  }
}

run "rejects_malformed_instance_id" {
  command = plan

  variables {
    instance_ids = ["i-0123456789ABCDEF0", "i-123"]
  }

  expect_failures = [var.instance_ids]
}

run "rejects_zero_generations" {
  command = plan

  variables {
    generations = 0
  }

  expect_failures = [var.generations]
}

run "rejects_too_many_generations" {
  command = plan

  variables {
    generations = 1001
  }

  expect_failures = [var.generations]
}

run "rejects_no_targets" {
  command = plan

  variables {
    target_tags  = {}
    instance_ids = []
  }

  expect_failures = [data.aws_partition.current]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "nightly backup!"
  }

  expect_failures = [var.name]
}

run "rejects_bad_schedule_expression" {
  command = plan

  variables {
    schedule_expression = "0 1 * * *"
  }

  expect_failures = [var.schedule_expression]
}

run "rejects_bad_region" {
  command = plan

  variables {
    regions = ["tokyo"]
  }

  expect_failures = [var.regions]
}

run "rejects_non_role_arn" {
  command = plan

  variables {
    target_role_arns = ["arn:aws:iam::444455556666:user/alice"]
  }

  expect_failures = [var.target_role_arns]
}

run "rejects_zero_max_age" {
  command = plan

  variables {
    max_age_days = 0
  }

  expect_failures = [var.max_age_days]
}

run "rejects_short_completion_timeout" {
  command = plan

  variables {
    completion_timeout_minutes = 10
  }

  expect_failures = [var.completion_timeout_minutes]
}

run "rejects_unsupported_log_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "rejects_aws_tag_key" {
  command = plan

  variables {
    target_tags = { "aws:cloudformation:stack-name" = "x" }
  }

  expect_failures = [var.target_tags]
}
