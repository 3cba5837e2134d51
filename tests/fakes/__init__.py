"""Local fake SendGrid and Twilio servers that speak the real HTTP APIs (see README.md)."""
