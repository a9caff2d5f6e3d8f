# Plan-level checks of the destination sub-module with a mocked AWS provider in Osaka: the forwarding rules
# and their target (the source region's default bus, through the forwarding role).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      id   = "ap-northeast-3"
      name = "ap-northeast-3"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "111122223333"
    }
  }
}

variables {
  name                     = "dr-copy"
  event_bus_arn            = "arn:aws:events:ap-northeast-1:111122223333:event-bus/default"
  event_forwarder_role_arn = "arn:aws:iam::111122223333:role/dr-copy-events-ap-northeast-1"
}

run "forwards_copy_results_to_the_source_bus" {
  command = plan

  assert {
    condition = (
      keys(aws_cloudwatch_event_rule.forward) == ["copy-result"] &&
      jsondecode(aws_cloudwatch_event_rule.forward["copy-result"].event_pattern) == {
        source        = ["aws.ec2"]
        account       = ["111122223333"]
        "detail-type" = ["EBS Snapshot Notification", "EBS Copy Snapshot Missed Completion Duration"]
        detail        = { event = ["copySnapshot"] }
      }
    )
    error_message = "Only this account's copy results (any result, and missed durations) are forwarded."
  }

  assert {
    condition = (
      aws_cloudwatch_event_target.forward["copy-result"].arn == var.event_bus_arn &&
      aws_cloudwatch_event_target.forward["copy-result"].role_arn == var.event_forwarder_role_arn &&
      output.region == "ap-northeast-3"
    )
    error_message = "The target is the source region's default bus, through the forwarding role."
  }
}

run "forwards_ami_states_when_copying_images" {
  command = plan

  variables {
    copy_images = true
  }

  assert {
    condition     = toset(keys(aws_cloudwatch_event_rule.forward)) == toset(["copy-result", "ami-state"]) && jsondecode(aws_cloudwatch_event_rule.forward["ami-state"].event_pattern).detail == { State = ["available", "failed"] }
    error_message = "With copy_images the copied AMIs' available/failed states are forwarded too."
  }
}

run "rejects_the_source_region_itself" {
  command = plan

  variables {
    event_bus_arn = "arn:aws:events:ap-northeast-3:111122223333:event-bus/default"
  }

  expect_failures = [data.aws_caller_identity.current]
}

run "rejects_a_custom_bus" {
  command = plan

  variables {
    event_bus_arn = "arn:aws:events:ap-northeast-1:111122223333:event-bus/other"
  }

  expect_failures = [var.event_bus_arn]
}
