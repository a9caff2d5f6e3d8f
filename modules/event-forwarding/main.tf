# The spoke side of landing-zone events: AWS emits the state events the hub modules complete their work on in the
# account and region of the resource, so a backup made in a workload account would otherwise be seen only by the
# hub's delayed check. One rule on this account's default bus sends them to the hub's default bus, where each hub
# module's own rule puts those it wants on its work queue; the delivered event is the original, `account` and
# `region` included (EventBridge user guide, "Sending and receiving Amazon EventBridge events between AWS
# accounts", https://docs.aws.amazon.com/eventbridge/latest/userguide/eventbridge-cross-account-event-delivery.html,
# and "Sending and receiving events between AWS Regions",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html).
#
# No provider block: the caller passes the provider of this account and region. Apply it once per workload account
# and region whose resources the hub works on.

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {
  lifecycle {
    # The hub's own bus: its events are already there, and a rule sending them back to the bus they came from
    # would match them again (an event loop).
    postcondition {
      condition     = !(local.hub_account == self.account_id && local.hub_region == data.aws_region.current.id)
      error_message = "hub_event_bus_arn ${jsonencode(var.hub_event_bus_arn)} is the default bus of this account and region (${self.account_id}, ${data.aws_region.current.id}), where the hub's rules already see the events: apply this module only in the other accounts and regions."
    }

    postcondition {
      condition     = local.hub_partition == data.aws_partition.current.partition
      error_message = "hub_event_bus_arn ${jsonencode(var.hub_event_bus_arn)} is in partition ${local.hub_partition}, this account in ${data.aws_partition.current.partition}: EventBridge does not send events across partitions."
    }

    # Expanding cross-Region event routing with Amazon EventBridge (AWS Compute Blog,
    # https://aws.amazon.com/blogs/compute/expanding-cross-region-event-routing-with-amazon-eventbridge/): "you
    # can now route events between any AWS Regions, except AWS GovCloud (US) and China".
    postcondition {
      condition     = local.hub_region == data.aws_region.current.id || data.aws_partition.current.partition == "aws"
      error_message = "hub_event_bus_arn ${jsonencode(var.hub_event_bus_arn)} is in region ${local.hub_region}, this rule in ${data.aws_region.current.id}: EventBridge routes events across Regions only in the aws partition (not AWS GovCloud (US) or China); forward to a hub in this region."
    }
  }
}

locals {
  hub_partition = split(":", var.hub_event_bus_arn)[1]
  hub_region    = split(":", var.hub_event_bus_arn)[3]
  hub_account   = split(":", var.hub_event_bus_arn)[4]
  region        = data.aws_region.current.id
  account_id    = data.aws_caller_identity.current.account_id

  # The source of each detail type (EventBridge events reference: EC2 and EBS events come from aws.ec2, Run Command
  # status from aws.ssm, Auto Scaling lifecycle from aws.autoscaling, RDS events from aws.rds); one pattern lists
  # both, and no service emits another's detail type, so none is matched by accident.
  detail_type_sources = {
    "EC2 AMI State Change"                              = "aws.ec2"
    "EBS Snapshot Notification"                         = "aws.ec2"
    "EBS Multi-Volume Snapshots Completion Status"      = "aws.ec2"
    "EC2 Instance State-change Notification"            = "aws.ec2"
    "EBS Volume Notification"                           = "aws.ec2"
    "EC2 Command Status-change Notification"            = "aws.ssm"
    "EC2 Command Invocation Status-change Notification" = "aws.ssm"
    "EC2 Instance Launch Successful"                    = "aws.autoscaling"
    "EC2 Instance Terminate Successful"                 = "aws.autoscaling"
    "EC2 Instance Launch Unsuccessful"                  = "aws.autoscaling"
    "RDS DB Instance Event"                             = "aws.rds"
    "RDS DB Cluster Event"                              = "aws.rds"
  }

  # Only this account's own events: an event that arrived on this bus from elsewhere is never sent on again. No
  # detail filter: each hub module's rule filters what it wants (states, results, event ids).
  event_pattern = {
    source        = sort(distinct([for type in var.detail_types : local.detail_type_sources[type]]))
    account       = [local.account_id]
    "detail-type" = sort(distinct(var.detail_types))
  }

  role_name = "${var.name}-${local.region}"
  role_arn  = var.role_arn != null ? var.role_arn : aws_iam_role.this[0].arn
}

resource "aws_cloudwatch_event_rule" "this" {
  name           = var.name
  event_bus_name = "default"
  description    = "Forwards the ops-automation state events of this account and region to the hub's event bus."
  event_pattern  = jsonencode(local.event_pattern)
  tags           = merge(var.tags, { Name = var.name })
}

# An event bus target in another account needs a role: "If you grant permissions using an organization, then
# accounts in that organization must specify a RoleArn with proper permissions when they use PutTarget to add your
# account's event bus as a target" (EventBridge API reference, PutPermission,
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutPermission.html); a target in another region
# needs one too. EventBridge retries a failed delivery for 24 hours (its default retry policy); what still fails
# shows in the rule's FailedInvocations metric, and the hub's delayed check completes the work.
resource "aws_cloudwatch_event_target" "this" {
  rule      = aws_cloudwatch_event_rule.this.name
  target_id = "hub-event-bus"
  arn       = var.hub_event_bus_arn
  role_arn  = local.role_arn
}
