#!/bin/sh
# Runs once, when the primary's data directory is created (docker-entrypoint-initdb.d).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE namma LOGIN PASSWORD '${NAMMA_DB_PASSWORD}';
CREATE DATABASE namma OWNER namma;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '${REPLICATION_PASSWORD}';
-- What the application cannot send through pgBouncer (D-218): on its role, in its database.
ALTER ROLE namma IN DATABASE namma SET jit = off;
ALTER ROLE namma IN DATABASE namma SET random_page_cost = 1.1;
ALTER ROLE namma IN DATABASE namma SET work_mem = '16MB';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
