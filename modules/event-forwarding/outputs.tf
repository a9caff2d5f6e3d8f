output "rule_arn" {
  description = "ARN of the forwarding rule on this account's default bus."
  value       = aws_cloudwatch_event_rule.this.arn
}

output "rule_name" {
  description = "Name of the forwarding rule (its FailedInvocations metric shows events EventBridge could not deliver)."
  value       = aws_cloudwatch_event_rule.this.name
}

output "role_arn" {
  description = "ARN of the role EventBridge assumes to put the events on the hub bus (created, or role_arn)."
  value       = local.role_arn
}

output "role_policy_json" {
  description = "The policy the role needs: events:PutEvents on hub_event_bus_arn only (attached to the created role; for a role_arn of your own)."
  value       = data.aws_iam_policy_document.put_events.json
}

output "event_pattern" {
  description = "Event pattern of the rule (JSON): the chosen detail types of this account."
  value       = aws_cloudwatch_event_rule.this.event_pattern
}
