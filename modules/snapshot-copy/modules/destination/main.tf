# One destination region of a snapshot-copy policy: the copy results happen here ("If you are copying the
# snapshot across Regions, then the event is emitted in the destination Region", EBS user guide, "Amazon
# EventBridge events for Amazon EBS"), and the policy's queue is in the source region. A rule on this
# region's default bus sends them to the source region's default bus, where the policy's copy-result rule
# puts them on the work queue (EventBridge user guide, "Sending and receiving events between AWS Regions";
# the delivered event is the original, `region` included).
#
# No provider block: the caller passes the provider of this region (providers = { aws = aws.osaka }). The
# rule and its target must be created through the provider of the rule's region, or EventBridge answers
# "Cross-region api call is not allowed".

data "aws_region" "current" {}

data "aws_caller_identity" "current" {
  lifecycle {
    postcondition {
      condition     = split(":", var.event_bus_arn)[3] != data.aws_region.current.id
      error_message = "event_bus_arn ${jsonencode(var.event_bus_arn)} is in this sub-module's own region ${data.aws_region.current.id}: pass the provider of a destination region (providers = { aws = aws.<alias> }), not the source region's."
    }
  }
}

locals {
  region = data.aws_region.current.id

  # Only this account's own events (a copy made in another account is not forwarded from here).
  copy_result_pattern = {
    source        = ["aws.ec2"]
    account       = [data.aws_caller_identity.current.account_id]
    "detail-type" = ["EBS Snapshot Notification", "EBS Copy Snapshot Missed Completion Duration"]
    detail = {
      event = ["copySnapshot"]
    }
  }
  # A copied AMI's completion (best effort; the delayed check covers a lost one).
  ami_state_pattern = {
    source        = ["aws.ec2"]
    account       = [data.aws_caller_identity.current.account_id]
    "detail-type" = ["EC2 AMI State Change"]
    detail = {
      State = ["available", "failed"]
    }
  }
  event_patterns = merge(
    { copy-result = jsonencode(local.copy_result_pattern) },
    var.copy_images ? { ami-state = jsonencode(local.ami_state_pattern) } : {},
  )
}

resource "aws_cloudwatch_event_rule" "forward" {
  for_each = local.event_patterns

  name          = "${var.name}-${each.key}-forward"
  description   = "Forwards ${each.key} events of ${local.region} to the ${var.name} snapshot-copy policy's region."
  event_pattern = each.value
  tags          = merge(var.tags, { Name = "${var.name}-${each.key}-forward" })
}

resource "aws_cloudwatch_event_target" "forward" {
  for_each = local.event_patterns

  rule      = aws_cloudwatch_event_rule.forward[each.key].name
  target_id = "source-region-bus"
  arn       = var.event_bus_arn
  role_arn  = var.event_forwarder_role_arn
}
