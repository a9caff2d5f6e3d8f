provider "aws" {
  region = var.region
}

# Unencrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed
# aws/sns key; use a customer managed key whose policy allows cloudwatch.amazonaws.com instead.
resource "aws_sns_topic" "alarms" {
  name = "${var.name}-alarms"
}

module "ami_backup" {
  source = "../../modules/ami-backup"

  name                = var.name
  schedule_expression = "cron(0 1 * * ? *)"
  schedule_timezone   = "Asia/Tokyo"
  target_tags         = { Backup = "daily" }
  generations         = 3

  alarm_sns_topic_arn  = aws_sns_topic.alarms.arn
  powertools_layer_arn = var.powertools_layer_arn

  tags = {
    Example = "ami-backup"
  }
}
