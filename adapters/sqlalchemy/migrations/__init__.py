"""Alembic migrations of the SQLAlchemy adapter (run through ``AlembicSchemaMigrator``, never an alembic.ini)."""
