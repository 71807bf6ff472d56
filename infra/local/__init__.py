"""The local stack: a moto server as the AWS endpoint, tables from template.yaml, an API Gateway front."""
