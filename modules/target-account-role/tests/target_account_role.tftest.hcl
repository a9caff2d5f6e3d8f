# Plan-level checks of the target-account-role module with a mocked AWS provider: the trust statement, one role
# and one inline policy per grant, the IAM size limits and input validation.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

variables {
  grants = {
    ami-backup = {
      policy_json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"WorkerCreateImage\",\"Effect\":\"Allow\",\"Action\":[\"ec2:CreateImage\"],\"Resource\":\"arn:aws:ec2:*:*:instance/*\"},{\"Sid\":\"WorkerNeverAssume\",\"Effect\":\"Deny\",\"Action\":\"sts:AssumeRole\",\"Resource\":\"*\"}]}"
      principal_arns = [
        "arn:aws:iam::123456789012:role/nightly-planner-ap-northeast-1",
        "arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1",
      ]
    }
    ebs-snapshot = {
      policy_json    = "{\"Version\":\"2012-10-17\",\"Statement\":{\"Sid\":\"WorkerCreateSnapshot\",\"Effect\":\"Allow\",\"Action\":\"ec2:CreateSnapshot\",\"Resource\":\"*\"}}"
      principal_arns = ["arn:aws:iam::123456789012:role/hourly-worker-ap-northeast-1"]
    }
  }
}

run "one_role_per_grant_trusting_only_its_functions" {
  command = plan

  assert {
    condition     = { for key, role in aws_iam_role.this : key => role.name } == { ami-backup = "ops-automation-ami-backup", ebs-snapshot = "ops-automation-ebs-snapshot" }
    error_message = "Each grant gets its own role named <role_name_prefix>-<key>."
  }

  assert {
    condition = alltrue([
      for key, grant in var.grants : length(data.aws_iam_policy_document.trust[key].statement) == 1 && alltrue([
        for statement in data.aws_iam_policy_document.trust[key].statement :
        statement.sid == "HubFunctions" && statement.effect == "Allow" && toset(statement.actions) == toset(["sts:AssumeRole"])
        && length(statement.principals) == 1 && alltrue([for p in statement.principals : p.type == "AWS" && toset(p.identifiers) == toset(grant.principal_arns)])
        && try(length(statement.not_actions), 0) == 0 && try(length(statement.not_principals), 0) == 0
      ])
    ])
    error_message = "The trust is one statement HubFunctions allowing exactly sts:AssumeRole to exactly that grant's principal_arns."
  }

  assert {
    condition = alltrue([
      for key in keys(var.grants) : toset([for c in data.aws_iam_policy_document.trust[key].statement[0].condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringLike sts:RoleSessionName=ops-automation-*",
      ])
    ])
    error_message = "Without external_id and organization_id, the only condition is the session name the hub functions use."
  }

  assert {
    condition     = { for key, policy in aws_iam_role_policy.this : key => [policy.name, policy.policy] } == { for key, grant in var.grants : key => [key, grant.policy_json] }
    error_message = "Each role carries its grant's policy_json as one inline policy named after the key."
  }

  assert {
    condition = alltrue([
      for role in values(aws_iam_role.this) : role.max_session_duration == 3600 && role.permissions_boundary == null
    ])
    error_message = "Roles default to one-hour sessions and no permissions boundary."
  }
}

run "external_id_and_organization_are_both_required_when_set" {
  command = plan

  variables {
    external_id              = "hub-7f3a:landing/zone"
    organization_id          = "o-a1b2c3d4e5"
    role_name_prefix         = "spoke"
    max_session_duration     = 7200
    permissions_boundary_arn = "arn:aws:iam::111111111111:policy/ops-boundary"
    tags                     = { Owner = "platform" }
  }

  assert {
    condition = alltrue([
      for key in keys(var.grants) : toset([for c in data.aws_iam_policy_document.trust[key].statement[0].condition : "${c.test} ${c.variable}=${join(",", c.values)}"]) == toset([
        "StringLike sts:RoleSessionName=ops-automation-*",
        "StringEquals sts:ExternalId=hub-7f3a:landing/zone",
        "StringEquals aws:PrincipalOrgID=o-a1b2c3d4e5",
      ])
    ])
    error_message = "external_id and organization_id add their conditions to the one statement (ANDed with the session name)."
  }

  assert {
    condition = alltrue([
      for role in values(aws_iam_role.this) :
      startswith(role.name, "spoke-") && role.max_session_duration == 7200 && role.permissions_boundary == "arn:aws:iam::111111111111:policy/ops-boundary" && role.tags == tomap({ Owner = "platform" })
    ])
    error_message = "role_name_prefix, max_session_duration, permissions_boundary_arn and tags reach every role."
  }
}

run "rejects_a_trust_policy_over_the_default_quota" {
  command = plan

  override_data {
    target = data.aws_iam_policy_document.trust["ami-backup"]
    values = {
      # 2,049 characters once the line breaks and indentation (white space IAM does not count) are removed.
      json = <<-EOT
        {"Statement":[
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxx"
        ]}
      EOT
    }
  }

  expect_failures = [aws_iam_role.this]
}

run "accepts_a_trust_policy_at_the_quota" {
  command = plan

  override_data {
    target = data.aws_iam_policy_document.trust["ami-backup"]
    values = {
      json = <<-EOT
        {"Statement":[
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxx"
        ]}
      EOT
    }
  }

  assert {
    condition     = length(aws_iam_role.this) == 2
    error_message = "A trust policy of exactly 2,048 characters without white space fits."
  }
}

run "rejects_an_inline_policy_over_the_role_quota" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        # 10,241 characters: one over the quota.
        policy_json    = "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ec2:CreateImage\",\"Resource\":\"${join("", [for i in range(1016) : "xxxxxxxxxx"])}xxxxxx\"}]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [aws_iam_role_policy.this]
}

run "rejects_a_role_name_over_64_characters" {
  command = plan

  variables {
    role_name_prefix = "a-prefix-long-enough-to-push-the-role-name-past-iam-limit"
  }

  expect_failures = [aws_iam_role.this]
}

run "rejects_invalid_json" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\": ["
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_an_allowed_sts_action" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ec2:CreateImage\",\"STS:AssumeRole\"],\"Resource\":\"*\"}]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_an_allowed_iam_action_in_a_single_statement" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iam:PassRole\",\"Resource\":\"*\"}}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_an_allowed_star_action" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_a_wildcard_service_prefix" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s*:AssumeRole\",\"Resource\":\"*\"}]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_an_allowed_not_action" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":\"ec2:*\",\"Resource\":\"*\"}]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_a_grant_without_principals" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[]}"
        principal_arns = []
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_principals_that_are_not_roles" {
  command = plan

  variables {
    grants = {
      ami-backup = {
        policy_json    = "{\"Statement\":[]}"
        principal_arns = ["arn:aws:iam::123456789012:root"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_a_key_that_cannot_name_a_role" {
  command = plan

  variables {
    grants = {
      "ami backup" = {
        policy_json    = "{\"Statement\":[]}"
        principal_arns = ["arn:aws:iam::123456789012:role/nightly-worker-ap-northeast-1"]
      }
    }
  }

  expect_failures = [var.grants]
}

run "rejects_a_short_external_id" {
  command = plan

  variables {
    external_id = "x"
  }

  expect_failures = [var.external_id]
}

run "rejects_an_external_id_with_white_space" {
  command = plan

  variables {
    external_id = "hub id"
  }

  expect_failures = [var.external_id]
}

run "rejects_an_external_id_over_1224_characters" {
  command = plan

  variables {
    external_id = join("", [for i in range(612) : "ab"], ["a"])
  }

  expect_failures = [var.external_id]
}

run "accepts_an_external_id_of_1224_characters" {
  command = plan

  variables {
    external_id = join("", [for i in range(612) : "ab"])
  }

  assert {
    condition     = length(aws_iam_role.this) == 2
    error_message = "An external id of 1,224 characters (the IAM maximum) is valid."
  }
}

run "rejects_a_bad_organization_id" {
  command = plan

  variables {
    organization_id = "o-SHORT"
  }

  expect_failures = [var.organization_id]
}

run "rejects_a_session_duration_below_an_hour" {
  command = plan

  variables {
    max_session_duration = 900
  }

  expect_failures = [var.max_session_duration]
}

run "rejects_a_boundary_that_is_not_a_policy" {
  command = plan

  variables {
    permissions_boundary_arn = "arn:aws:iam::111111111111:role/ops-boundary"
  }

  expect_failures = [var.permissions_boundary_arn]
}

run "rejects_a_bad_prefix" {
  command = plan

  variables {
    role_name_prefix = "ops automation"
  }

  expect_failures = [var.role_name_prefix]
}

run "accepts_a_trust_policy_over_the_default_under_a_raised_quota" {
  command = plan

  variables {
    trust_policy_max_chars = 4096
  }

  override_data {
    target = data.aws_iam_policy_document.trust["ami-backup"]
    values = {
      # 2,049 characters without white space: one over the default quota, well under the raised one.
      json = <<-EOT
        {"Statement":[
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxx"
        ]}
      EOT
    }
  }

  assert {
    condition     = length(aws_iam_role.this) == 2
    error_message = "With trust_policy_max_chars = 4096 (a raised quota), a trust policy of 2,049 characters fits."
  }
}

run "rejects_a_trust_policy_over_a_raised_quota" {
  command = plan

  variables {
    trust_policy_max_chars = 2049
  }

  override_data {
    target = data.aws_iam_policy_document.trust["ami-backup"]
    values = {
      # 2,050 characters without white space: one over the raised limit.
      json = <<-EOT
        {"Statement":[
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "xxxxxxxxxxxx"
        ]}
      EOT
    }
  }

  expect_failures = [aws_iam_role.this]
}

run "rejects_a_trust_policy_limit_beyond_the_quota_maximum" {
  command = plan

  variables {
    trust_policy_max_chars = 4097
  }

  expect_failures = [var.trust_policy_max_chars]
}

run "rejects_a_trust_policy_limit_below_the_default" {
  command = plan

  variables {
    trust_policy_max_chars = 2047
  }

  expect_failures = [var.trust_policy_max_chars]
}

run "rejects_a_fractional_trust_policy_limit" {
  command = plan

  variables {
    trust_policy_max_chars = 3000.5
  }

  expect_failures = [var.trust_policy_max_chars]
}
