"""HTTP ingestion: verify each sender, identify each delivery, publish it with a broker confirm."""
