# Plan-level checks of the event-forwarding module with a mocked AWS provider: the rule's pattern, its target and
# role, and input validation. The spoke is account 444455556666 in ap-northeast-1.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_data "aws_region" {
    defaults = {
      id   = "ap-northeast-1"
      name = "ap-northeast-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "444455556666"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::444455556666:role/ops-automation-forward-ap-northeast-1"
    }
  }

  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:ap-northeast-1:444455556666:rule/ops-automation-forward"
    }
  }
}

variables {
  hub_event_bus_arn = "arn:aws:events:us-east-1:111122223333:event-bus/default"
}

run "forwards_the_state_events_of_this_account_to_the_hub_bus" {
  # apply (mocked): the target's role ARN is only known once the role exists.
  command = apply

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.this.event_pattern) == {
      source  = ["aws.ec2", "aws.ssm"]
      account = ["444455556666"]
      "detail-type" = [
        "EBS Multi-Volume Snapshots Completion Status", "EBS Snapshot Notification", "EC2 AMI State Change",
        "EC2 Command Invocation Status-change Notification", "EC2 Command Status-change Notification",
        "EC2 Instance State-change Notification",
      ]
    }
    error_message = "By default the rule matches this account's AMI, snapshot, instance state and Run Command events, nothing forwarded from elsewhere."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.this.name == "ops-automation-forward" && aws_cloudwatch_event_rule.this.event_bus_name == "default"
    error_message = "The rule is on the default bus, where AWS services emit their events."
  }

  assert {
    condition     = aws_cloudwatch_event_target.this.arn == var.hub_event_bus_arn && aws_cloudwatch_event_target.this.role_arn == aws_iam_role.this[0].arn
    error_message = "The target is the hub's bus, through the created role."
  }

  assert {
    condition     = aws_iam_role.this[0].name == "ops-automation-forward-ap-northeast-1"
    error_message = "The created role's name carries the region: IAM names are global to the account, the module is applied per region."
  }

  assert {
    condition = (
      length(data.aws_iam_policy_document.put_events.statement) == 1 &&
      tolist(data.aws_iam_policy_document.put_events.statement[0].actions) == tolist(["events:PutEvents"]) &&
      tolist(data.aws_iam_policy_document.put_events.statement[0].resources) == tolist([var.hub_event_bus_arn])
    )
    error_message = "The role may only put events on the hub's bus."
  }

  assert {
    condition = (
      tolist(data.aws_iam_policy_document.assume.statement[0].principals)[0].identifiers == toset(["events.amazonaws.com"]) &&
      [for c in data.aws_iam_policy_document.assume.statement[0].condition : "${c.test} ${c.variable}=${join(",", c.values)}"] == ["StringEquals aws:SourceAccount=444455556666"]
    )
    error_message = "Only EventBridge, for rules of this account, may assume the role."
  }
}

run "chosen_detail_types_choose_their_sources" {
  command = plan

  variables {
    detail_types = ["EC2 Instance State-change Notification", "RDS DB Instance Event", "EC2 Instance Launch Successful"]
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this.event_pattern).source == ["aws.autoscaling", "aws.ec2", "aws.rds"]
    error_message = "Each detail type brings its own source."
  }
}

run "a_given_role_is_used_and_none_created" {
  command = plan

  variables {
    role_arn = "arn:aws:iam::444455556666:role/landing-zone/event-forwarder"
  }

  assert {
    condition     = length(aws_iam_role.this) == 0 && length(aws_iam_role_policy.this) == 0
    error_message = "With role_arn no role is created."
  }

  assert {
    condition     = aws_cloudwatch_event_target.this.role_arn == var.role_arn && output.role_arn == var.role_arn
    error_message = "The target uses the given role."
  }
}

run "permissions_boundary_is_set" {
  command = plan

  variables {
    permissions_boundary_arn = "arn:aws:iam::444455556666:policy/landing-zone-boundary"
  }

  assert {
    condition     = aws_iam_role.this[0].permissions_boundary == var.permissions_boundary_arn
    error_message = "The created role carries the permissions boundary."
  }
}

run "a_hub_bus_in_the_same_region_of_another_account" {
  command = plan

  variables {
    hub_event_bus_arn = "arn:aws:events:ap-northeast-1:111122223333:event-bus/default"
  }

  assert {
    condition     = aws_cloudwatch_event_target.this.arn == var.hub_event_bus_arn
    error_message = "Cross-account in one region is forwarded too."
  }
}

run "rejects_the_own_bus" {
  command = plan

  variables {
    hub_event_bus_arn = "arn:aws:events:ap-northeast-1:444455556666:event-bus/default"
  }

  expect_failures = [data.aws_caller_identity.current]
}

run "rejects_another_partition" {
  command = plan

  variables {
    hub_event_bus_arn = "arn:aws-cn:events:cn-north-1:111122223333:event-bus/default"
  }

  expect_failures = [data.aws_caller_identity.current]
}

run "rejects_a_custom_bus" {
  command = plan

  variables {
    hub_event_bus_arn = "arn:aws:events:us-east-1:111122223333:event-bus/ops"
  }

  expect_failures = [var.hub_event_bus_arn]
}

run "rejects_unknown_detail_types" {
  command = plan

  variables {
    detail_types = ["EC2 Spot Instance Interruption Warning"]
  }

  expect_failures = [var.detail_types]
}

run "rejects_no_detail_types" {
  command = plan

  variables {
    detail_types = []
  }

  expect_failures = [var.detail_types]
}

run "rejects_bad_name_and_role" {
  command = plan

  variables {
    name                     = "forward events!"
    role_arn                 = "arn:aws:iam::444455556666:user/alice"
    permissions_boundary_arn = "boundary"
  }

  expect_failures = [var.name, var.role_arn, var.permissions_boundary_arn]
}
