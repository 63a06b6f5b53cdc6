# outputs.tf — what other stacks and operators need to find the deployment.

output "function_arn" {
  description = "The s3torrent-lambda function (target it from S3 Batch Operations jobs)."
  value       = aws_lambda_function.s3torrent.arn
}

output "table_name" {
  description = "The DynamoDB status table."
  value       = aws_dynamodb_table.status.name
}

output "queue_url" {
  description = "The SQS queue between S3 and the function (empty without use_sqs)."
  value       = var.use_sqs ? aws_sqs_queue.events[0].url : ""
}

output "dead_letter_queue_url" {
  description = "Where messages that kept failing end up (empty without use_sqs)."
  value       = var.use_sqs ? aws_sqs_queue.dlq[0].url : ""
}

output "role_arn" {
  description = "The function's execution role."
  value       = aws_iam_role.lambda.arn
}

output "runs_queue_url" {
  description = "The fan-out's runs queue (FANOUT_QUEUE_URL; empty without fanout)."
  value       = var.fanout ? aws_sqs_queue.runs[0].url : ""
}
