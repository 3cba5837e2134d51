"""Partner webhooks: endpoints, consent-filtered messages, signed deliveries with retries."""
