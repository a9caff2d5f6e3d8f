provider "aws" {
  region = var.region
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic under the AWS managed aws/sns key; a customer managed key is the user's own (see the comment above).
  name = "${var.name}-alarms"
}

module "deregister_cleanup" {
  source = "../../modules/deregister-cleanup"

  name                      = var.name
  scope                     = var.scope
  sweep_schedule_expression = "cron(30 3 * * ? *)"
  sweep_schedule_timezone   = "Asia/Tokyo"
  orphan_grace_hours        = 24

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "deregister-cleanup"
  }
}
