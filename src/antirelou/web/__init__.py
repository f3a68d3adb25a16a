"""The web application: webhooks now, the dashboard later."""
