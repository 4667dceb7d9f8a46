"""Mail: templates per kind and language, the transactional outbox, and the SMTP sender."""
