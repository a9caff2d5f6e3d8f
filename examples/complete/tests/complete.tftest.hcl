# Plan-level checks of the complete example with mocked AWS providers: the longest name the variable admits
# still fits every name built from it, and the next longer one is refused by the variable, not later.

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
      account_id = "111122223333"
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
}

mock_provider "aws" {
  alias = "osaka"

  mock_data "aws_region" {
    defaults = {
      id   = "ap-northeast-3"
      name = "ap-northeast-3"
    }
  }
}

run "the_longest_name_fits_every_role_and_the_bucket" {
  command = plan

  variables {
    name = "abcdefghijkl"
  }

  assert {
    condition     = length(local.output_bucket_name) == 62
    error_message = "The output bucket name of a 12-character name is ${length(local.output_bucket_name)} characters, expected 62."
  }

  assert {
    condition     = length(distinct(values(local.policy_names))) == length(local.policy_names)
    error_message = "Every module must get its own policy name: ${jsonencode(local.policy_names)}."
  }
}

run "a_longer_name_is_refused_by_the_variable" {
  command = plan

  variables {
    name = "abcdefghijklm"
  }

  expect_failures = [var.name]
}
