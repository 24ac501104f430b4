"""Moving artifacts between a stage's local folder and S3."""
