"""The ad event: one type from the HTTP route to the database."""
