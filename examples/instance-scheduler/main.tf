provider "aws" {
  region = var.region
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key; a customer managed key is the user's own (see the comment above).
  name = "${var.name}-alarms"
}

# Office hours in Tokyo: start at 08:00 and stop at 20:00 on weekdays, not on the listed holidays.
# Asia/Tokyo observes no daylight saving time, so every slot happens exactly once.
module "instance_scheduler" {
  source = "../../modules/instance-scheduler"

  name              = var.name
  start_schedule    = "cron(0 8 ? * MON-FRI *)"
  stop_schedule     = "cron(0 20 ? * MON-FRI *)"
  schedule_timezone = "Asia/Tokyo"
  excluded_dates    = var.excluded_dates
  target_tags       = { Schedule = "office-hours" }

  # Stop normally (hibernate only what was enabled for it at launch, when set to true); leave the members of
  # Auto Scaling groups alone (capacity would set tagged groups to 0/0/0 and restore their sizes instead).
  hibernate           = false
  auto_scaling_groups = "skip"

  # Keys of customer-managed-key encrypted EBS volumes: without kms:CreateGrant on them an instance goes from
  # pending back to stopped. Empty by default (volumes under aws/ebs need nothing).
  volume_kms_key_arns = var.volume_kms_key_arns

  # Friday's runs to Monday's are 72 hours apart: one hour of grace over that.
  missed_run_alarm_hours = 73

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "instance-scheduler"
  }
}
