"""A minimal SQS consumer for the tools' tests: orders into a table, poison to the DLQ."""
