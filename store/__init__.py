"""The app database: SQLAlchemy 2 models, Alembic migrations, and the queries the
activities and the web app need."""
