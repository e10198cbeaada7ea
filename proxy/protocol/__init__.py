"""Sans-I/O codec for the MySQL/MariaDB client/server protocol.

Nothing here does I/O: the relay and the backend client feed bytes in and get packets,
positions or byte strings back.
"""
