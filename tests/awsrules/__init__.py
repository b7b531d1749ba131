"""A stand-in for AWS that follows AWS's *documented* delivery rules, for tests.

The local runtime (``local/``) and moto are kinder than AWS: one batch at a time, no
duplicate deliveries, no request-size limit. This package plays the rules the AWS
documentation states, deterministically (seeded), so scenario tests can drive the app's
own handlers the way Lambda, DynamoDB Streams and EventBridge would:

* :mod:`tests.awsrules.lambda_streams` – the DynamoDB stream event source mapping
  (BatchSize, partial batch responses, BisectBatchOnFunctionError, MaximumRetryAttempts,
  MaximumRecordAgeInSeconds, ParallelizationFactor, the on-failure destination record);
* :mod:`tests.awsrules.eventbridge` – PutEvents limits (10 entries, < 256 KB with AWS's
  entry-size rule, ``ValidationException`` for the whole call) and at-least-once,
  duplicated, out-of-order delivery to rule targets;
* :mod:`tests.awsrules.lambda_async` – asynchronous invocation: retries of function
  errors (MaximumRetryAttempts 0–2, default 2) and the on-failure destination record;
* :mod:`tests.awsrules.sqs` – an SQS event source mapping (batches, partial batch
  responses with ``batchItemFailures``);
* :mod:`tests.awsrules.scheduler` – a seeded lockstep scheduler: handlers that AWS would
  run concurrently run in threads that take turns at every AWS call, in an order drawn
  from a seed, so every interleaving is repeatable.

Nothing here imports the app (``app``/``chalicelib``): handlers are plain callables.
"""
