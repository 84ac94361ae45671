"""Lambda code of the deploy-time `adstream kafka apply` (see `adstream.infra.kafka_apply`)."""
