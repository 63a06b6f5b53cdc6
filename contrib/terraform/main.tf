# main.tf — s3torrent-lambda on AWS: the function (provided.al2023, the zip of
# contrib/lambda/package.sh), its status table, least-privilege IAM, and S3 -> SQS (+ DLQ) -> Lambda
# or, with use_sqs = false, S3 notifications straight to the function; with fanout = true (the
# default), the function's own runs queue (+ DLQ) for objects too big for one invocation.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  # SQS wants a visibility timeout of at least the function timeout (AWS advises six times)
  visibility_timeout = min(43200, var.timeout_s * 6)
  environment = {
    for k, v in {
      S3_BUCKET        = var.bucket_name
      DDB_TABLE        = aws_dynamodb_table.status.name
      DDB_KEY_ATTR     = var.table_key_attr
      TRACKERS         = join(",", var.trackers)
      WEBSEED_BASE     = var.webseed_base
      META_VERSION     = var.meta_version
      PIECE_LENGTH     = var.piece_length
      EXCLUDE_PREFIXES = join(",", var.exclude_prefixes)
      FANOUT_QUEUE_URL = var.fanout ? aws_sqs_queue.runs[0].url : ""
      RUN_BYTES        = var.fanout ? var.run_bytes : ""
    } : k => v if v != ""
  }
}

# ---- status table (docs/DESIGN.md §6) ----

resource "aws_dynamodb_table" "status" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = var.table_key_attr

  attribute {
    name = var.table_key_attr
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  # the fan-out's run items (s3torrent-run/...) carry expires_at: gone a week after their run
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  tags = var.tags
}

# ---- logs ----

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

# ---- IAM: exactly what sync_object does, nothing more ----

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.function_name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "ReadObjects"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/*"]
  }

  # Without ListBucket, S3 answers HEAD of a missing KEY.torrent with 403 instead of 404, and
  # "no torrent yet" could not be told from "access denied".
  statement {
    sid       = "TellMissingFromDenied"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
  }

  statement {
    sid       = "WriteTorrentsOnly"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/*.torrent"]
  }

  statement {
    sid       = "StatusItems"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.status.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.use_sqs ? [1] : []
    content {
      sid       = "ConsumeQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [aws_sqs_queue.events[0].arn]
    }
  }

  # the fan-out: it sends runs to its own queue alone, and consumes them
  dynamic "statement" {
    for_each = var.fanout ? [1] : []
    content {
      sid       = "SendRuns"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.runs[0].arn]
    }
  }

  dynamic "statement" {
    for_each = var.fanout ? [1] : []
    content {
      sid       = "ConsumeRuns"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [aws_sqs_queue.runs[0].arn]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${var.function_name}-lambda"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# ---- the function ----

resource "aws_lambda_function" "s3torrent" {
  function_name                  = var.function_name
  role                           = aws_iam_role.lambda.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  architectures                  = [var.architecture]
  filename                       = var.package_zip
  source_code_hash               = filebase64sha256(var.package_zip)
  memory_size                    = var.memory_mb
  timeout                        = var.timeout_s
  reserved_concurrent_executions = var.reserved_concurrency

  # X-Ray trace ids reach S3 and DynamoDB as X-Amzn-Trace-Id (and Lambda's recursion detection)
  tracing_config {
    mode = "PassThrough"
  }

  environment {
    variables = local.environment
  }

  depends_on = [aws_iam_role_policy.lambda, aws_cloudwatch_log_group.lambda]
  tags       = var.tags
}

# ---- variant 1 (use_sqs = true): S3 -> SQS -> Lambda, with a dead-letter queue ----

resource "aws_sqs_queue" "dlq" {
  count                     = var.use_sqs ? 1 : 0
  name                      = "${var.function_name}-events-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "events" {
  count                      = var.use_sqs ? 1 : 0
  name                       = "${var.function_name}-events"
  visibility_timeout_seconds = local.visibility_timeout
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[0].arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
  tags = var.tags
}

data "aws_iam_policy_document" "queue" {
  count = var.use_sqs ? 1 : 0
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events[0].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  count     = var.use_sqs ? 1 : 0
  queue_url = aws_sqs_queue.events[0].id
  policy    = data.aws_iam_policy_document.queue[0].json
}

resource "aws_lambda_event_source_mapping" "sqs" {
  count            = var.use_sqs ? 1 : 0
  event_source_arn = aws_sqs_queue.events[0].arn
  function_name    = aws_lambda_function.s3torrent.arn
  batch_size       = var.sqs_batch_size
  # the runtime answers {"batchItemFailures": [...]}: only those messages come back
  function_response_types = ["ReportBatchItemFailures"]
}

# ---- the fan-out (docs/DESIGN.md §10): runs of a large object, sent by the function itself ----

resource "aws_sqs_queue" "runs_dlq" {
  count                     = var.fanout ? 1 : 0
  name                      = "${var.function_name}-runs-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "runs" {
  count = var.fanout ? 1 : 0
  name  = "${var.function_name}-runs"
  # a run whose invocation dies or times out comes back once this is over: at least the
  # function timeout, so a live run is never given twice
  visibility_timeout_seconds = local.visibility_timeout
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.runs_dlq[0].arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "runs" {
  count            = var.fanout ? 1 : 0
  event_source_arn = aws_sqs_queue.runs[0].arn
  function_name    = aws_lambda_function.s3torrent.arn
  # one run per invocation: each is up to RUN_BYTES of hashing
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = var.fanout_concurrency
  }
}

# ---- variant 2 (use_sqs = false): S3 invokes the function directly ----

resource "aws_lambda_permission" "s3" {
  count          = var.use_sqs ? 0 : 1
  statement_id   = "AllowS3Invoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.s3torrent.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = local.bucket_arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_lambda_function_event_invoke_config" "direct" {
  count                  = var.use_sqs ? 0 : 1
  function_name          = aws_lambda_function.s3torrent.function_name
  maximum_retry_attempts = 2
}

# ---- the bucket's notifications (one resource owns them all; .torrent uploads trigger it too,
# and the runtime skips them: S3 filters cannot exclude a suffix) ----

resource "aws_s3_bucket_notification" "objects" {
  bucket = var.bucket_name

  dynamic "queue" {
    for_each = var.use_sqs ? [1] : []
    content {
      queue_arn     = aws_sqs_queue.events[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.filter_prefix
    }
  }

  dynamic "lambda_function" {
    for_each = var.use_sqs ? [] : [1]
    content {
      lambda_function_arn = aws_lambda_function.s3torrent.arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = var.filter_prefix
    }
  }

  depends_on = [aws_sqs_queue_policy.events, aws_lambda_permission.s3]
}
