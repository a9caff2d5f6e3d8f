output "region" {
  description = "Region of this destination (the provider's)."
  value       = local.region
}

output "event_rule_arns" {
  description = "ARNs of the forwarding rules, keyed copy-result and (with copy_images) ami-state."
  value       = { for key, rule in aws_cloudwatch_event_rule.forward : key => rule.arn }
}
