"""Local I/O below every layer: the disk cache, credentials and tokens (auth.json), safe archive
extraction. Imports only ``detorm.errors``."""
