output "role_arns" {
  description = "ARN of each role, by grants key (the value for that hub module's target_role_arns)."
  value       = { for key, role in aws_iam_role.this : key => role.arn }

  # A hub function handed this ARN must find the role's permissions attached, not only the role.
  depends_on = [aws_iam_role_policy.this]
}

output "role_names" {
  description = "Name of each role, by grants key."
  value       = { for key, role in aws_iam_role.this : key => role.name }

  depends_on = [aws_iam_role_policy.this]
}
