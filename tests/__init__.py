"""Tests of the copier-sqs-lambda template: validators, every render, generated projects."""
