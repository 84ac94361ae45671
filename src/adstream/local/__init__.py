"""The local MSK-equivalent: a real Kafka broker assembled from Maven Central."""
